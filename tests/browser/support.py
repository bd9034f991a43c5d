"""Browser-suite helpers: the demo server as a real process, the request guard, waits."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT_MS = 60_000


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoServer:
    """``djreconnect demo`` as a real process on a fixed port: it can be killed,
    stopped, and started again on the same port."""

    def __init__(self, *flags, port=None):
        self.port = port or free_port()
        self.flags = list(flags)
        self.process = None
        self.url = "http://127.0.0.1:%d" % self.port

    def start(self):
        command = [
            sys.executable, "-m", "djreconnect_server.cli", "demo", "--port", str(self.port), *self.flags,
        ]
        self.process = subprocess.Popen(command, cwd=CHECKOUT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("demo server exited: %s" % self.process.stderr.read().decode())
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("demo server did not answer on %s" % self.url)

    def signal(self, signum):
        self.process.send_signal(signum)

    def kill(self):
        """SIGKILL: sockets die without a close frame."""
        self.process.kill()
        self.process.wait()

    def terminate(self):
        """SIGTERM: uvicorn's graceful shutdown."""
        self.process.terminate()
        self.process.wait(timeout=15)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL ends a SIGSTOPped process too
            self.process.wait()


class Guard:
    """Records what a page does that a test must fail on."""

    def __init__(self):
        self.off_host = []
        self.errors = []

    def attach(self, page):
        page.on("request", self._request)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _request(self, request):
        url = request.url
        if not (url.startswith("http://127.0.0.1:") or url.startswith("ws://127.0.0.1:") or url.startswith("data:")):
            self.off_host.append(url)

    def check(self):
        off_host, self.off_host = self.off_host, []
        errors, self.errors = self.errors, []
        assert not off_host, "the page reached off 127.0.0.1: %s" % off_host
        assert not errors, "uncaught page errors: %s" % errors


def wait_connected(page, timeout=BOOT_TIMEOUT_MS):
    page.wait_for_function("() => window.djreconnect && window.djreconnect.state === 'connected'", timeout=timeout)


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
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(CHECKOUT / "wheels"), str(CHECKOUT / "browser")],
        check=True,
    )
