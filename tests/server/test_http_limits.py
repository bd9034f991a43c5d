"""HTTP-level limits of a real demo process: slow bodies, slow or silent request heads, too
many connections for the open-file limit, oversized heads, and bad WebSocket frames in the log.

Each attack runs 300 connections while a bystander (WebSocket or SSE) keeps making event round trips (and,
where it matters, page loads); the figures are printed (run with ``-s`` to see them).
"""

import base64
import http.client
import json
import os
import resource
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import pytest
from demo_server import DemoServer
from djreconnect import constants

from .built import asset_path
from .test_safety import CLIENTS, Editor

ATTACKERS = 300
WS_PATH = constants.DEFAULT_PREFIX + constants.PATH_WEBSOCKET
SSE_PATH = constants.DEFAULT_PREFIX + constants.PATH_SSE
POST_PATH = constants.DEFAULT_PREFIX + constants.PATH_POST

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")


# --- helpers -------------------------------------------------------------------------


def open_fds(server):
    return len(os.listdir("/proc/%d/fd" % server.process.pid))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Bystander:
    """A client minding its own business: a mounted editor whose ``increment`` events make
    round trips one after another (each a render and a patch), over ``transport``, on a
    connection opened before the attack. It measures for a second before the attack
    starts (the baseline of the same run), then during it."""

    BASELINE_S = 1.0

    def __init__(self, server, transport):
        self.server = server
        self.transport = transport
        self.baseline = []
        self.times = self.baseline
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.client = CLIENTS[self.transport](self.server)
        self.editor = Editor(self.client).join()
        self._thread.start()
        time.sleep(self.BASELINE_S)
        self.times = []  # the attack starts now
        return self

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.editor.call("increment", amount="1")
            except Exception as error:  # recorded, and the test fails on it
                self.failures.append(repr(error))
                return
            self.times.append(time.monotonic() - started)
            self._stop.wait(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(15)
        self.client.close()

    def report(self, what):
        ms = [t * 1000 for t in self.times]
        idle = [t * 1000 for t in self.baseline]
        print(
            "\n%s: bystander (%s) event round trips %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms "
            "(before the attack: p50 %.1f ms, p99 %.1f ms)"
            % (
                what,
                self.transport,
                len(ms),
                percentile(ms, 0.5),
                percentile(ms, 0.99),
                max(ms),
                percentile(idle, 0.5),
                percentile(idle, 0.99),
            )
        )
        assert not self.failures, self.failures
        assert len(ms) >= 10 and idle
        assert self.editor.state["clicks"] == len(ms) + len(idle)  # every event applied, once
        assert max(ms) < 2000  # a sanity bound, not a benchmark


def status_of(sock, timeout):
    """The status code the server answers on ``sock`` (None: closed without one; "open":
    neither within ``timeout``)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return "open"
    except OSError:
        return None
    if not data:
        return None
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else data[:40]


def wait_all(sockets, deadline):
    """Each socket's status_of, waiting until ``deadline`` (monotonic) at most in all."""
    return [status_of(sock, max(0.01, deadline - time.monotonic())) for sock in sockets]


def page_load(server, headers=None):
    """(status, seconds) of GET /, never raising."""
    started = time.monotonic()
    try:
        request = urllib.request.Request(server.url + "/", headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        status = repr(error)
    return status, time.monotonic() - started


def settle(server, baseline, within=3.0):
    """How many descriptors above ``baseline`` the server still holds once they stop
    dropping (a connection answered 408 is read for another second before it closes)."""
    deadline = time.monotonic() + within
    while open_fds(server) - baseline > 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    return open_fds(server) - baseline


def sse_channel(server):
    """(channel, csrf, the open stream's socket) of a new SSE stream."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (SSE_PATH.encode(), server.port))
    data = b""
    while True:
        chunk = sock.recv(4096)
        assert chunk, "the stream ended: %r" % data
        data += chunk
        rest = data.partition(b"event: channel")[2]
        if b"\n" in rest.partition(b"data:")[2]:
            break
    grant = json.loads(rest.partition(b"data:")[2].split(b"\n", 1)[0])
    return grant["channel"], grant["csrf"], sock


def dribble(sockets, payload, stop, interval):
    """Send ``payload`` on every socket each ``interval`` s until ``stop`` is set."""
    while not stop.wait(interval):
        for sock in sockets:
            try:
                sock.send(payload)
            except OSError:
                pass


def close_all(sockets):
    for sock in sockets:
        sock.close()


# --- slow bodies ---------------------------------------------------------------------


@pytest.fixture(params=["ws", "sse"])
def bystander(request):
    """The bystander's transport: every attack is watched over both."""
    return request.param


@needs_proc
def test_slow_body_posts_are_timed_out_with_408(bystander):
    server = DemoServer("--transport", "sse", "--body-timeout-s", "1").start()
    attackers = []
    try:
        session, csrf, stream = sse_channel(server)
        baseline = open_fds(server)
        stop = threading.Event()
        with Bystander(server, bystander) as watcher:
            started = time.monotonic()
            for _ in range(ATTACKERS):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall(
                    b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 1000\r\n"
                    b"X-DJ-Channel: %s\r\nX-DJ-CSRF: %s\r\n\r\n{"
                    % (POST_PATH.encode(), server.port, session.encode(), csrf.encode())
                )
                attackers.append(sock)
            held = open_fds(server) - baseline
            threading.Thread(target=dribble, args=(attackers, b" ", stop, 0.2), daemon=True).start()
            statuses = wait_all(attackers, started + 6)
            elapsed = time.monotonic() - started
            stop.set()
            left = settle(server, baseline)
        print(
            "\nslow bodies: %d POSTs held %d descriptors; all answered %s after %.1f s; %d left open"
            % (ATTACKERS, held, sorted(set(map(str, statuses))), elapsed, left)
        )
        assert statuses == [408] * ATTACKERS
        assert left <= 5
        watcher.report("slow bodies")
        stream.close()
    finally:
        close_all(attackers)
        server.stop()


# --- slow and silent heads -------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_heads():
    """A demo that gives a request head 1 s."""
    server = DemoServer("--header-timeout-s", "1").start()
    yield server
    server.stop()


@needs_proc
@pytest.mark.parametrize("kind", ["slow", "silent"])
def test_slow_and_silent_heads_are_closed_after_the_header_timeout(quick_heads, kind, bystander):
    server = quick_heads
    baseline = open_fds(server)
    attackers = []
    stop = threading.Event()
    try:
        with Bystander(server, bystander) as watcher:
            started = time.monotonic()
            for _ in range(ATTACKERS):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                if kind == "slow":
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % server.port)
                attackers.append(sock)
            held = open_fds(server) - baseline
            if kind == "slow":
                threading.Thread(target=dribble, args=(attackers, b"X-A: b\r\n", stop, 0.2), daemon=True).start()
            loads = [page_load(server) for _ in range(5)]
            statuses = wait_all(attackers, started + 5)
            elapsed = time.monotonic() - started
            stop.set()
            left = settle(server, baseline)
        print(
            "\n%s heads: %d connections held %d descriptors; all ended %s after %.1f s; %d left; page loads %s"
            % (kind, ATTACKERS, held, sorted(set(map(str, statuses))), elapsed, left, loads)
        )
        # A head that had started is told why; a socket that said nothing is just closed.
        assert statuses == [408 if kind == "slow" else None] * ATTACKERS
        assert left <= 5
        assert all(status == 200 for status, _ in loads)
        watcher.report("%s heads" % kind)
    finally:
        stop.set()
        close_all(attackers)


def test_a_request_head_over_64_kib_is_431(quick_heads):
    with socket.create_connection(("127.0.0.1", quick_heads.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % quick_heads.port)
        try:
            for _ in range(100):
                sock.sendall(b"X-Padding: " + b"p" * 1000 + b"\r\n")
        except OSError:
            pass  # closed while still sending: the answer is already there
        assert status_of(sock, 5) == 431
    assert page_load(quick_heads)[0] == 200


def test_a_keep_alive_connection_is_served_again_within_the_header_timeout(quick_heads):
    """The deadline starts again after each response: four requests 0.6 s apart (2.4 s in
    all, past the 1 s timeout) share one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", quick_heads.port, timeout=10)
    try:
        sockets = set()
        for _ in range(4):
            connection.request("GET", asset_path("pyscript", "core.css"))
            response = connection.getresponse()
            assert response.status == 200 and response.read()
            sockets.add(connection.sock.getsockname())
            time.sleep(0.6)
        assert len(sockets) == 1
    finally:
        connection.close()


# --- descriptors ---------------------------------------------------------------------


FD_LIMIT = 256


def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@needs_proc
def test_more_silent_sockets_than_descriptors_do_not_lock_a_bystander_out(bystander):
    """With the default 10 s header timeout, 300 silent sockets against a process allowed
    256 descriptors: the oldest idle ones make room, so new clients are served at once."""
    server = DemoServer(preexec_fn=low_fd_limit).start()
    attackers = []
    try:
        with Bystander(server, bystander) as watcher:
            for _ in range(ATTACKERS):
                attackers.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
            time.sleep(0.5)
            peak = open_fds(server)
            loads = [page_load(server) for _ in range(20)]
            peak = max(peak, open_fds(server))
        times = [seconds * 1000 for _, seconds in loads]
        print(
            "\n%d silent sockets, descriptor limit %d: server holds %d descriptors; page loads %s, "
            "p50 %.1f ms, max %.1f ms"
            % (ATTACKERS, FD_LIMIT, peak, set(s for s, _ in loads), percentile(times, 0.5), max(times))
        )
        assert [status for status, _ in loads] == [200] * len(loads)
        assert peak < FD_LIMIT - 32
        watcher.report("silent sockets past the descriptor limit")
        assert server.process.poll() is None
    finally:
        close_all(attackers)
        server.stop()


@needs_proc
def test_when_every_connection_is_busy_newcomers_are_refused_with_503_and_bounded():
    """Open streams and WebSockets are not idle. At the cap a newcomer is answered 503
    once it has sent its head (a clean refusal, not a reset); silent newcomers are held
    one second at most, 32 at a time, and the rest are answered at once. Once a stream
    ends, newcomers are served again."""
    server = DemoServer("--limit-concurrency", "12", "--transport", "sse").start()
    busy, silent = [], []
    try:
        baseline = open_fds(server)
        for n in range(11):
            busy.append(sse_channel(server)[2] if n % 2 else open_websocket(server.port))
        status, _ = page_load(server)
        assert status == 503
        started = time.monotonic()
        for _ in range(40):
            silent.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        time.sleep(0.3)
        held = open_fds(server) - baseline
        statuses = wait_all(silent, started + 3)
        print("\nat the cap: 11 busy, 40 silent newcomers: %d descriptors held; answers %s" % (held, statuses))
        assert statuses == [503] * 40
        assert held <= 11 + 32 + 2
        close_all(busy)
        busy = []
        deadline = time.monotonic() + 10
        while page_load(server)[0] != 200:
            assert time.monotonic() < deadline, "never served again"
            time.sleep(0.2)
    finally:
        close_all(busy + silent)
        server.stop()


def open_websocket(port):
    """A raw socket that has completed a WebSocket handshake (an open, busy connection)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (WS_PATH.encode(), port, key)
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 101"), data
    return sock


# --- bad WebSocket frames in the log ---------------------------------------------------------


def masked_frame(payload, opcode=0x1):
    mask = os.urandom(4)
    length = len(payload)
    head = bytes([0x80 | opcode]) + (
        bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + struct.pack("!H", length)
    )
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def send_invalid_utf8(port):
    """One WebSocket whose single text frame is not UTF-8; the close code it gets."""
    with open_websocket(port) as sock:
        sock.sendall(masked_frame(b'{"t": "ping", "ref": "\xff\xfe"}'))
        frame = sock.recv(4096)
        assert frame[0] == 0x88, frame  # a close frame
        return struct.unpack("!H", frame[2:4])[0]


def test_invalid_utf8_frames_are_logged_as_one_line_not_a_traceback_each():
    server = DemoServer().start()
    try:
        codes = {send_invalid_utf8(server.port) for _ in range(50)}
        assert page_load(server)[0] == 200
    finally:
        server.stop()
    log = server.process.stderr.read().decode()
    assert codes == {1007}
    lines = [line for line in log.splitlines() if "Invalid UTF-8" in line]
    print("\n50 invalid frames, log:\n" + log)
    assert "Traceback" not in log
    assert len(lines) == 1 and "can't decode byte 0xff" in lines[0]
