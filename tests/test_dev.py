"""./dev's setup: steps that are up to date are skipped, a failed npm install leaves the
working node_modules alone, and the demo installs no test tools.

The script runs for real in a copy of the files it reads; npm and the venv's Python are
stand-ins that log what they are asked and make what a real run would."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]

FAKE_NPM = """#!/bin/sh
echo "npm $*" >> "$DEV_LOG"
[ -n "$NPM_FAILS" ] && exit 1
mkdir -p node_modules/pyodide && echo installed > node_modules/pyodide/pyodide.mjs
"""
FAKE_PYTHON = """#!/bin/sh
echo "python $*" >> "$DEV_LOG"
if [ "$2" = pip ] && [ "$3" = wheel ]; then
    while [ $# -gt 0 ]; do [ "$1" = -w ] && touch "$2/djreconnect-0.1.0-py3-none-any.whl"; shift; done
fi
"""
FAKE_DJRECONNECT = """#!/bin/sh
echo "djreconnect $*" >> "$DEV_LOG"
"""


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "checkout"
    for name in ("dev", "pyproject.toml", "package.json", "package-lock.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CHECKOUT / name, root / name)
    shutil.copytree(CHECKOUT / "browser", root / "browser", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "wheels").mkdir()
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    executable(bin_dir / "python", FAKE_PYTHON)
    executable(bin_dir / "djreconnect", FAKE_DJRECONNECT)
    tools = tmp_path / "tools"
    tools.mkdir()
    executable(tools / "npm", FAKE_NPM)
    return root


def run(checkout, *args, **env):
    log = checkout.parent / "log"
    log.write_text("")
    environ = dict(os.environ, DEV_LOG=str(log), PATH="%s:%s" % (checkout.parent / "tools", os.environ["PATH"]))
    environ.update(env)
    done = subprocess.run([str(checkout / "dev"), *args], env=environ, capture_output=True, text=True)
    return done, log.read_text().splitlines()


def test_a_second_setup_skips_every_step(checkout):
    done, calls = run(checkout, "setup")
    assert done.returncode == 0, done.stderr
    assert "python -m pip install --quiet -e .[test]" in calls
    assert "npm ci --no-audit --no-fund --loglevel=error" in calls
    assert [call for call in calls if call.startswith("python -m pip wheel")]
    assert (checkout / "node_modules" / "pyodide" / "pyodide.mjs").is_file()
    assert (checkout / "wheels" / "djreconnect-0.1.0-py3-none-any.whl").is_file()
    done, calls = run(checkout, "setup")
    assert done.returncode == 0 and calls == []


def test_a_changed_source_rebuilds_the_wheel_only(checkout):
    run(checkout, "setup")
    with open(checkout / "browser" / "djreconnect" / "constants.py", "a") as source:
        source.write("# changed\n")
    done, calls = run(checkout, "setup")
    assert done.returncode == 0
    assert len(calls) == 1 and calls[0].startswith("python -m pip wheel")


def test_a_failed_npm_install_leaves_the_working_one(checkout):
    run(checkout, "setup")
    with open(checkout / "package-lock.json", "a") as lock:
        lock.write("\n")  # a new lock: npm must run again
    done, calls = run(checkout, "setup", NPM_FAILS="1")
    assert done.returncode == 1 and "node_modules is left as it was" in done.stderr
    assert calls == ["npm ci --no-audit --no-fund --loglevel=error"]
    assert (checkout / "node_modules" / "pyodide" / "pyodide.mjs").read_text() == "installed\n"
    assert not list(checkout.glob(".npm-install.*"))
    done, calls = run(checkout, "setup")  # the registry is back: now it installs
    assert done.returncode == 0 and calls == ["npm ci --no-audit --no-fund --loglevel=error"]


def test_the_demo_installs_no_test_tools_and_reuses_a_test_setup(checkout):
    done, calls = run(checkout, "demo", "--port", "9")
    assert done.returncode == 0, done.stderr
    assert "python -m pip install --quiet -e ." in calls
    assert not [call for call in calls if ".[test]" in call]
    assert calls[-1] == "djreconnect demo --port 9"
    run(checkout, "setup")  # the test tools on top
    done, calls = run(checkout, "demo")
    assert calls == ["djreconnect demo"]
