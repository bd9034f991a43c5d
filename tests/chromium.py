"""How the tests and the benchmarks launch Chromium: Playwright's own when it is
installed, the system's otherwise, with flags that keep it off the network."""

import os
import shutil

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


def launch_options(playwright, extra_args=()):
    """Keyword arguments for ``playwright.chromium.launch``; RuntimeError with no Chromium."""
    options = {"args": OFFLINE_CHROMIUM_ARGS + list(extra_args)}
    if not os.path.exists(playwright.chromium.executable_path):
        system = shutil.which("chromium") or shutil.which("chromium-browser")
        if system is None:
            raise RuntimeError("no Chromium: install one (the test command does on Debian)")
        options["executable_path"] = system
    return options
