"""Shared plumbing of the benchmarks: paths, ports, server processes, Chromium, tables.

Nothing here contacts anything but 127.0.0.1. Servers are real processes started
with the venv's Python; each one is killed (by its own pid) when the benchmark ends.
"""

import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CHECKOUT = BENCH.parent
RESULTS = BENCH / "results"
PYTHON = sys.executable

# Chromium is launched as the browser suites launch it (tests/chromium.py).
sys.path.insert(0, str(CHECKOUT / "tests"))
from chromium import launch_options  # noqa: E402

BOOT_TIMEOUT_MS = 90_000


def _terminated(signum, frame):
    # SIGTERM (bench/run's time limit) unwinds like Ctrl-C, so every finally block runs
    # and the servers started here (in their own sessions) are killed, not orphaned.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _terminated)


def results_dir():
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS


# Never a proxy, whatever the environment says: every request goes to 127.0.0.1 directly.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url, timeout=5):
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("benchmarks only talk to 127.0.0.1: %r" % (url,))
    with _DIRECT.open(url, timeout=timeout) as response:
        return response.read()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_fd_limit():
    """Let this process (and children started after) hold many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the browser wheel ------------------------------------------------------------


def _wheel_matches_source(wheel):
    package = CHECKOUT / "browser" / "djreconnect"
    with zipfile.ZipFile(wheel) as archive:
        packed = {name: archive.read(name) for name in archive.namelist() if name.startswith("djreconnect/")}
    current = {"djreconnect/" + path.name: path.read_bytes() for path in package.glob("*.py")}
    return packed == current


def wheel_env():
    """Environment for server processes: a browser wheel built from the current source.

    The checkout's ``wheels/`` is used when it holds the current source; otherwise a
    wheel is built into bench/results/wheels (the checkout's ``wheels/`` is left alone)
    and the servers are pointed at it with DJRECONNECT_WHEELS.
    """
    env = dict(os.environ)
    env.pop("http_proxy", None)
    env.pop("https_proxy", None)
    env.pop("HTTP_PROXY", None)
    env.pop("HTTPS_PROXY", None)
    env["PYTHONUNBUFFERED"] = "1"
    wheels = sorted((CHECKOUT / "wheels").glob("djreconnect-*-py3-none-any.whl"))
    if wheels and _wheel_matches_source(wheels[-1]):
        return env
    own = results_dir() / "wheels"
    built = sorted(own.glob("djreconnect-*-py3-none-any.whl"))
    if not (built and _wheel_matches_source(built[-1])):
        shutil.rmtree(own, ignore_errors=True)
        own.mkdir(parents=True)
        subprocess.run(
            [PYTHON, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(own), str(CHECKOUT / "browser")],
            check=True,
        )
    env["DJRECONNECT_WHEELS"] = str(own)
    return env


# --- server processes ---------------------------------------------------------------


def _child_setup():
    raise_fd_limit()
    os.setsid()  # its own process group: killing it never reaches us


class ServerProcess:
    """A backend as a real process on 127.0.0.1:``port`` (a free one unless given).

    Its stderr (uvicorn's and the app's log) goes to bench/results/logs/, never to a
    pipe nobody reads: a server that logs a lot must not block on a full pipe.
    """

    def __init__(self, command, port=None, env=None, probe="/"):
        self.port = port or free_port()
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.env = env or wheel_env()
        self.url = "http://127.0.0.1:%d" % self.port
        self.probe = probe
        self.process = None
        self.boot_seconds = None
        logs = results_dir() / "logs"
        logs.mkdir(exist_ok=True)
        name = Path(sys.argv[0]).stem or "bench"
        self.log_path = logs / ("%s-%d.log" % (name, self.port))
        self._log = None

    def start(self, timeout=60):
        started = time.monotonic()
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=CHECKOUT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            preexec_fn=_child_setup,
        )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited: %s" % self.log_tail())
            try:
                http_get(self.url + self.probe, timeout=2)
                self.boot_seconds = time.monotonic() - started
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("server did not answer on %s within %ds" % (self.url, timeout))

    def log_tail(self, size=2000):
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def log_errors(self):
        """The tracebacks' last lines in the server's log (what it failed on), counted."""
        counts = {}
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return counts
        for index, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = index + 1
                while end < len(lines) and (lines[end].startswith(" ") or not lines[end].strip()):
                    end += 1
                if end < len(lines):
                    counts[lines[end].strip()[:200]] = counts.get(lines[end].strip()[:200], 0) + 1
        return counts

    @property
    def pid(self):
        return self.process.pid

    def kill(self):
        """SIGKILL: its sockets die without a close frame."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self):
        self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


def demo_server(*flags, port=None, env=None):
    command = [PYTHON, "-m", "djreconnect_server.cli", "demo", "--port", "{port}", *flags]
    return ServerProcess(command, port=port, env=env)


def bench_app(kind, *flags, port=None, env=None):
    """One of bench/apps.py's backends (a view defined for a benchmark)."""
    command = [PYTHON, str(BENCH / "apps.py"), kind, "--port", "{port}", *flags]
    return ServerProcess(command, port=port, env=env)


def cpu_seconds(pid):
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# --- Chromium -------------------------------------------------------------------------


def launch_chromium(playwright):
    """Playwright's own Chromium when installed, the system's otherwise; offline flags."""
    return playwright.chromium.launch(**launch_options(playwright, ["--no-proxy-server"]))


class OffHostGuard:
    """Blocks (and records) any request a page makes off 127.0.0.1."""

    def __init__(self, context):
        self.off_host = []
        context.route(lambda url: not self._local(url), self._refuse)

    @staticmethod
    def _local(url):
        return url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:"))

    def _refuse(self, route):
        self.off_host.append(route.request.url)
        route.abort()


# Times the runtime's handling of every WebSocket frame: the listener is the runtime's
# proxy; the wrapper only brackets it with performance.now() and notes the frame's size
# and message type.
FRAME_TIMER = """
(() => {
  window.benchFrames = [];
  const add = WebSocket.prototype.addEventListener;
  const remove = WebSocket.prototype.removeEventListener;
  const wrappers = new WeakMap();
  WebSocket.prototype.addEventListener = function (type, listener, options) {
    if (type !== 'message' || typeof listener !== 'function') return add.call(this, type, listener, options);
    const wrapped = function (event) {
      const t0 = performance.now();
      try { return listener.call(this, event); }
      finally {
        const text = typeof event.data === 'string' ? event.data : '';
        const kind = (text.slice(0, 24).match(/"t": ?"([a-z]+)"/) || [null, '?'])[1];
        window.benchFrames.push({t0, t1: performance.now(), size: text.length, kind});
      }
    };
    wrappers.set(listener, wrapped);
    return add.call(this, type, wrapped, options);
  };
  WebSocket.prototype.removeEventListener = function (type, listener, options) {
    return remove.call(this, type, (type === 'message' && wrappers.get(listener)) || listener, options);
  };
})();
"""


def wait_connected(page, timeout=BOOT_TIMEOUT_MS):
    page.wait_for_function(
        "() => window.djreconnect && window.djreconnect.state === 'connected'", timeout=timeout, polling=20
    )


# --- numbers and tables -------------------------------------------------------------------


def percentile(values, fraction):
    """Nearest-rank percentile (fraction in [0, 1])."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def median(values):
    return statistics.median(values) if values else float("nan")


def fmt(value, digits=None):
    """A number with thousands separators; ``digits`` decimals (none given: ints as is, floats 1)."""
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "n/a"
    if digits is None:
        if isinstance(value, int):
            return "{:,}".format(value)
        digits = 1
    return "{:,.{}f}".format(value, digits)


def kib(n):
    return "%s KiB" % fmt(n / 1024, 1)


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def verdict(ok):
    return "met" if ok else "**missed**"


def report(name, title, body):
    """Print a benchmark's markdown section and keep it in bench/results/NAME.md."""
    text = "## %s\n\n%s\n" % (title, body.strip())
    print(text, flush=True)
    (results_dir() / ("%s.md" % name)).write_text(text)
    return text


def machine():
    cores = os.cpu_count()
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return "%d cores (%s), Python %s, load average %.1f when it ended" % (
        cores,
        model or "unknown CPU",
        sys.version.split()[0],
        load,
    )
