"""Browser-suite helpers: the demo server as a real process, the request guard, waits."""

import json
import subprocess
import sys
import time

from demo_server import CHECKOUT, DemoServer, free_port  # noqa: F401  (re-exported for the suites)

BOOT_TIMEOUT_MS = 60_000


class Guard:
    """Records what a page does that a test must fail on."""

    def __init__(self):
        self.off_host = []
        self.errors = []
        self.console = []  # shown when a test fails (see conftest)

    def attach(self, page):
        page.on("console", lambda message: self.console.append("%s: %s" % (message.type, message.text)))
        page.on("request", self._request)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _request(self, request):
        url = request.url
        local = ("http://127.0.0.1:", "ws://127.0.0.1:", "blob:http://127.0.0.1:", "data:")
        if not url.startswith(local):
            self.off_host.append(url)

    def check(self):
        off_host, self.off_host = self.off_host, []
        errors, self.errors = self.errors, []
        assert not off_host, "the page reached off 127.0.0.1: %s" % off_host
        assert not errors, "uncaught page errors: %s" % errors


def new_page(browser, guard):
    """A page in a fresh context (its own cache and storage), watched by ``guard``.
    Returns (context, page); close the context when done."""
    context = browser.new_context()
    page = context.new_page()
    guard.attach(page)
    return context, page


def wait_connected(page, timeout=BOOT_TIMEOUT_MS):
    """Wait until the page is connected and its views are mounted (recovery sent)."""
    page.wait_for_function(
        "() => window.djreconnect && window.djreconnect.state === 'connected' && window.djreconnect.mounted",
        timeout=timeout,
    )


def server_state(page):
    """What the server knows, as its #server-state shows it."""
    return json.loads(page.inner_text("#server-state"))


def wait_server_state(page, predicate, timeout=10.0):
    """Wait until ``predicate(state)`` holds for #server-state; return that state."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = server_state(page)
        if predicate(state):
            return state
        page.wait_for_timeout(25)
    raise AssertionError("server state never matched; last seen: %r" % (state,))


def ensure_fresh_wheel():
    """Rebuild the browser wheel when it does not hold the package's current source,
    so the suite never tests yesterday's runtime."""
    import zipfile

    package = CHECKOUT / "browser" / "djreconnect"
    wheels = sorted((CHECKOUT / "wheels").glob("djreconnect-*-py3-none-any.whl"))
    if wheels:
        with zipfile.ZipFile(wheels[-1]) as wheel:
            packed = {name: wheel.read(name) for name in wheel.namelist() if name.startswith("djreconnect/")}
        current = {"djreconnect/" + path.name: path.read_bytes() for path in package.glob("*.py")}
        if packed == current:
            return
    for stale in wheels:
        stale.unlink()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(CHECKOUT / "wheels"),
            str(CHECKOUT / "browser"),
        ],
        check=True,
    )
