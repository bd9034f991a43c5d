"""The distribution as a user gets it: ``python -m build``, installed in a fresh venv,
runs the README's example with nothing from the checkout on its path, and a real
browser connects to it."""

import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.request
import zipfile

import djreconnect
import pytest
from djreconnect_server import npm
from selectolax.lexbor import LexborHTMLParser
from support import CHECKOUT, free_port, new_page, wait_connected

pytestmark = pytest.mark.browser

WHEEL = "djreconnect-%s-py3-none-any.whl" % djreconnect.__version__


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist and the wheel, built as a release would be."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(CHECKOUT)], check=True, capture_output=True
    )
    [sdist] = out.glob("djreconnect_server-*.tar.gz")
    [wheel] = out.glob("djreconnect_server-*-py3-none-any.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def venv(tmp_path_factory, dist):
    """A fresh venv with the built wheel installed offline. Its dependencies are the ones
    this environment already has, seen through a path entry to its site-packages (whose
    own .pth files, the checkout's editable install among them, are not read)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    python = root / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with open(os.path.join(site, "dependencies.pth"), "w") as pth:
        pth.write(sysconfig.get_paths()["purelib"] + "\n")
    # --no-deps: the editable install of this checkout is visible there too, and pip
    # would take it for this distribution; the dependencies are all there.
    install = [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(dist[1])]
    subprocess.run(install, check=True, env=clean_env())
    return python


def clean_env(**extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "DJRECONNECT_"))}
    env.update(extra)
    return env


def readme_example(directory):
    """The README's example app and template, written out as a user would."""
    text = (CHECKOUT / "README.md").read_text(encoding="utf-8")
    [app] = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if block.startswith("# app.py")]
    [page] = [block for block in re.findall(r"```html\n(.*?)```", text, re.S) if "templates/editor.html" in block]
    (directory / "templates").mkdir()
    (directory / "app.py").write_text(app, encoding="utf-8")
    (directory / "templates" / "editor.html").write_text(page, encoding="utf-8")


class Uvicorn:
    def __init__(self, python, directory, env):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        command = [python, "-I", "-m", "uvicorn", "--app-dir", str(directory), "--port", str(self.port), "app:app"]
        self.process = subprocess.Popen(command, cwd=directory, env=env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("the example exited: %s" % self.process.stderr.read().decode())
            try:
                self.html = urllib.request.urlopen(self.url + "/", timeout=1).read().decode()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def stop(self):
        self.process.kill()
        self.process.wait()


def test_the_sdist_and_the_wheel_carry_what_an_install_needs(dist):
    sdist, wheel = dist
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"browser/pyproject.toml", "hatch_build.py", "package.json", "server/djreconnect_server/boot.js"} <= names
    assert "server/djreconnect_server/_assets.json" in names  # an sdist builds without npm
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("djreconnect_server/_assets.json"))
        bundled = archive.read("djreconnect_server/wheels/" + WHEEL)
    assert {"djreconnect/browser.py", "djreconnect_server/app.py", "djreconnect_server/boot.js"} <= names
    pinned = npm.pinned_versions(CHECKOUT)
    assert {p["npm"]: p["version"] for p in manifest["packages"].values()} == pinned
    core = CHECKOUT / "node_modules" / "@pyscript" / "core" / "dist" / "core.js"
    assert manifest["packages"]["pyscript"]["integrity"]["core.js"] == npm.integrity(core.read_bytes())
    with zipfile.ZipFile(__import__("io").BytesIO(bundled)) as browser_wheel:
        packed = {name for name in browser_wheel.namelist() if name.startswith("djreconnect/")}
    assert packed == {"djreconnect/" + path.name for path in (CHECKOUT / "browser" / "djreconnect").glob("*.py")}


def test_the_installed_package_is_not_the_checkout(venv):
    probe = (
        "import json, sys, djreconnect, djreconnect_server;"
        "print(json.dumps([djreconnect.__file__, djreconnect_server.__file__, sys.path]))"
    )
    found = subprocess.run([venv, "-I", "-c", probe], check=True, capture_output=True, text=True, env=clean_env())
    client, server, path = json.loads(found.stdout)
    installed = str(venv.parent.parent)
    assert client.startswith(installed) and server.startswith(installed)
    # Only the dependencies' folder (this environment's site-packages) is shared.
    sources = [str(CHECKOUT / "browser"), str(CHECKOUT / "server"), str(CHECKOUT / "tests")]
    assert not [entry for entry in path if entry == str(CHECKOUT) or entry.startswith(tuple(sources))]


def test_the_readme_example_installed_serves_a_page_that_connects(browser, guard, venv, tmp_path):
    readme_example(tmp_path)
    # Local assets for the test (no CDN): npm's packages from the checkout's node_modules.
    env = clean_env(DJRECONNECT_ASSETS="local", DJRECONNECT_NODE_MODULES=str(CHECKOUT / "node_modules"))
    app = Uvicorn(venv, tmp_path, env)
    try:
        wheel = urllib.request.urlopen(app.url + "/djreconnect/wheels/" + WHEEL).read()
        assert zipfile.ZipFile(__import__("io").BytesIO(wheel)).read("djreconnect/__init__.py")
        context, page = new_page(browser, guard)
        page.goto(app.url + "/")
        wait_connected(page)
        page.fill("input[name=title]", "installed")
        page.press("input[name=title]", "Tab")  # dj-change
        page.wait_for_function("() => document.body.innerText.includes('Server has: installed')")
        context.close()
    finally:
        app.stop()


def test_installed_without_npm_the_pages_load_pinned_assets_from_the_cdn(venv, tmp_path):
    readme_example(tmp_path)
    app = Uvicorn(venv, tmp_path, clean_env())
    try:
        tree = LexborHTMLParser(app.html)
    finally:
        app.stop()
    pinned = npm.pinned_versions(CHECKOUT)
    cdn = "https://cdn.jsdelivr.net/npm/"
    core = tree.css_first('script[type="module"]').attributes
    assert core["src"] == cdn + "@pyscript/core@%s/dist/core.js" % pinned["@pyscript/core"]
    dist_core = CHECKOUT / "node_modules" / "@pyscript" / "core" / "dist" / "core.js"
    assert core["integrity"] == npm.integrity(dist_core.read_bytes())
    config = json.loads(tree.css_first('script[type="py"]').attributes["config"])
    assert config["interpreter"] == cdn + "pyodide@%s/pyodide.mjs" % pinned["pyodide"]
    assert config["files"] == {"/djreconnect/wheels/" + WHEEL: "./*"}
