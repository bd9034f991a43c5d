"""Shared test setup: which Chromium Playwright launches."""

import os
import shutil

import pytest

# Flags for a Chromium that must not reach the network on its own.
OFFLINE_CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def _system_chromium():
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, playwright):
    """Playwright's own Chromium when it is installed; the system's otherwise."""
    args = dict(browser_type_launch_args)
    args["args"] = list(args.get("args", [])) + OFFLINE_CHROMIUM_ARGS
    if not os.path.exists(playwright.chromium.executable_path):
        system = _system_chromium()
        if system is None:
            pytest.fail("no Chromium: install one (the test command does on Debian)")
        args["executable_path"] = system
    return args
