"""The demo backend as a real process, for suites that test it over the network."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoServer:
    """``djreconnect demo`` as a real process on a fixed port: it can be killed,
    stopped, and started again on the same port."""

    program = ["-m", "djreconnect_server.cli", "demo"]  # what runs, after the Python executable

    def __init__(self, *flags, port=None, preexec_fn=None):
        self.port = port or free_port()
        self.flags = list(flags)
        self.preexec_fn = preexec_fn  # run in the child before it starts (e.g. setrlimit)
        self.process = None
        self.url = "http://127.0.0.1:%d" % self.port

    def command(self):
        """The command line that serves the app on ``self.port`` (a subclass serves another app)."""
        return [sys.executable, *self.program, "--port", str(self.port), *self.flags]

    def start(self):
        command = self.command()
        self.process = subprocess.Popen(
            command, cwd=CHECKOUT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=self.preexec_fn
        )
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
