"""serving.py: the rate-limited log filter, the descriptor arithmetic, the uvicorn options,
and the guard on both of uvicorn's HTTP protocols in a real server (the demo, on
httptools, is attacked in test_http_limits)."""

import logging
import socket
import subprocess
import sys
import time
import types

import pytest
from demo_server import free_port
from djreconnect_server import Settings, serving
from uvicorn.protocols.http.h11_impl import H11Protocol

KEY = "a-test-secret-key-of-some-length"
UTF8 = "Invalid UTF-8 sequence received from client."


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def record(message, args=(), error=None):
    exc_info = (type(error), error, None) if error is not None else None
    return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, message, args, exc_info)


def test_a_noisy_message_is_one_line_at_most_once_per_interval():
    clock = Clock()
    limit = serving.RateLimitFilter(serving.NOISY_MESSAGES, interval=10, clock=clock)
    error = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    first = record(UTF8, error=error)
    assert limit.filter(first)
    assert first.exc_info is None and first.exc_text is None
    assert first.getMessage() == UTF8 + " ('utf-8' codec can't decode byte 0xff in position 0: invalid start byte)"
    clock.now += 5
    assert not any(limit.filter(record(UTF8, error=error)) for _ in range(99))
    clock.now += 6
    later = record(UTF8, error=error)
    assert limit.filter(later)
    assert later.getMessage().endswith("[99 more in the last 11 s]")
    assert not limit.filter(record(UTF8, error=error))


def test_other_messages_of_the_logger_pass_untouched():
    limit = serving.RateLimitFilter(serving.NOISY_MESSAGES, clock=Clock())
    error = RuntimeError("application bug")
    for _ in range(3):
        other = record("Exception in ASGI application", error=error)
        assert limit.filter(other)
        assert other.exc_info is not None  # a real bug keeps its traceback


def test_noisy_messages_that_are_not_tracebacks_are_only_rate_limited():
    limit = serving.RateLimitFilter(serving.NOISY_MESSAGES, clock=Clock())
    assert limit.filter(record("Invalid HTTP request received."))
    assert not limit.filter(record("Invalid HTTP request received."))
    assert limit.filter(record("Exceeded concurrency limit."))


def test_a_percent_sign_in_the_error_does_not_break_the_line():
    limit = serving.RateLimitFilter(serving.NOISY_MESSAGES, clock=Clock())
    line = record(UTF8, error=ValueError("100% bad"))
    assert limit.filter(line)
    assert line.getMessage() == UTF8 + " (100% bad)"


def test_the_filter_remembers_a_bounded_number_of_messages():
    limit = serving.RateLimitFilter(None, clock=Clock())
    for n in range(5000):
        assert limit.filter(record("message %d" % n))
    assert len(limit.last) <= 1001


def test_install_log_filter_is_idempotent():
    serving.install_log_filter()
    serving.install_log_filter()
    for name in ("uvicorn.error", "djreconnect.http"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, serving.RateLimitFilter) for f in filters) == 1


@pytest.mark.parametrize("fd_limit, limit", [(256, 112), (1024, 688), (65536, 49072), (10, 8)])
def test_connection_limit_leaves_room_below_the_descriptor_limit(fd_limit, limit):
    assert serving.connection_limit(fd_limit) == limit
    if fd_limit > 100:
        assert limit + serving.OVERFLOW + serving.FD_RESERVED < fd_limit


def run_child(code, soft, hard):
    def limits():
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.run(
        [sys.executable, "-c", code], preexec_fn=limits, capture_output=True, text=True, check=True
    ).stdout.split()


def test_raise_open_file_limit_goes_toward_the_hard_limit():
    code = (
        "import resource; from djreconnect_server import serving; "
        "print(serving.raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], "
        "serving.raise_open_file_limit(300))"
    )
    assert run_child(code, 128, 512) == ["512", "512", "512"]  # up to the hard limit, never down
    assert run_child(code.replace("raise_open_file_limit()", "raise_open_file_limit(200)"), 128, 512)[:2] == [
        "200",
        "200",
    ]


def test_guarded_protocol_keeps_uvicorns_protocol_and_its_settings():
    guarded = serving.guarded_protocol(H11Protocol, header_timeout_s=3, max_header_bytes=1000)
    assert issubclass(guarded, H11Protocol)
    assert (guarded.header_timeout_s, guarded.max_header_bytes) == (3, 1000)
    assert guarded.waiting is not serving.GuardedHTTPProtocol.waiting
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError):
            serving.guarded_protocol(header_timeout_s=bad)


def test_uvicorn_options_bound_what_a_connection_may_hold():
    options = serving.uvicorn_options(Settings(KEY), limit_concurrency=100, header_timeout_s=4)
    assert options["limit_concurrency"] == 100
    assert options["timeout_keep_alive"] == serving.DEFAULT_KEEP_ALIVE_S
    assert options["http"].header_timeout_s == 4
    assert options["ws_max_size"] == 2 * Settings(KEY).max_frame_bytes
    assert options["h11_max_incomplete_event_size"] == serving.DEFAULT_MAX_HEADER_BYTES


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), "5", True])
def test_body_timeout_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="body_timeout_s"):
        Settings(KEY, body_timeout_s=bad)


def test_a_percent_sign_in_the_error_of_a_message_with_args_does_not_break_it():
    limit = serving.RateLimitFilter(None, clock=Clock())
    line = record("closed %d", args=(3,), error=ValueError("100% bad"))
    assert limit.filter(line)
    assert line.getMessage() == "closed 3 (100% bad)"


# --- the guard on each of uvicorn's HTTP protocols, in a real server ------------------------

SERVER = """
import sys
import uvicorn
from djreconnect_server import serving
from uvicorn.protocols.http.{module} import {base}

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}})
    await send({{"type": "http.response.body", "body": b"ok"}})

protocol = serving.guarded_protocol({base}, header_timeout_s=0.5)
uvicorn.run(app, host="127.0.0.1", port={port}, http=protocol, limit_concurrency=50, log_level="warning")
"""


@pytest.fixture(params=[("h11_impl", "H11Protocol"), ("httptools_impl", "HttpToolsProtocol")], ids=["h11", "httptools"])
def guarded_server(request):
    module, base = request.param
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(module=module, base=base, port=port)], stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
    yield types.SimpleNamespace(port=port, base=base)
    process.kill()
    process.wait()


def answer(sock, timeout=3.0):
    """What the server sends before closing or going quiet for ``timeout`` s."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return data, "closed"
            data += chunk
    except socket.timeout:
        return data, "open"
    except ConnectionResetError:
        return data, "reset"


def test_each_protocol_closes_a_silent_socket_at_the_deadline(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server.port)) as sock:
        started = time.monotonic()
        assert answer(sock) == (b"", "closed")
        assert 0.4 < time.monotonic() - started < 2


def test_each_protocol_answers_a_slow_head_408(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        data, state = answer(sock)
        assert data.startswith(b"HTTP/1.1 408 ") and state == "closed"


def test_each_protocol_serves_keep_alive_requests_past_the_deadline(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server.port)) as sock:
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data, state = answer(sock, timeout=0.35)
            assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"ok") and state == "open"


def test_each_protocol_refuses_a_head_over_the_limit(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(80):
                sock.sendall(b"X-Padding: " + b"p" * 1000 + b"\r\n")
        except OSError:
            pass
        data, state = answer(sock)
        if guarded_server.base == "HttpToolsProtocol":
            assert data.split(b" ", 2)[1] == b"431" and state == "closed"
        else:  # h11 enforces its own limit (h11_max_incomplete_event_size): 400, and a reset
            assert state in ("closed", "reset") and data[:12] in (b"", b"HTTP/1.1 400")


def test_each_protocol_makes_room_by_closing_the_longest_idle(guarded_server):
    idle = [socket.create_connection(("127.0.0.1", guarded_server.port)) for _ in range(60)]
    try:
        with socket.create_connection(("127.0.0.1", guarded_server.port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data, _ = answer(sock)
            assert data.startswith(b"HTTP/1.1 200 ")
        assert answer(idle[0], timeout=0.2) == (b"", "closed")  # the oldest made room
    finally:
        for sock in idle:
            sock.close()


def send_early_answered_body(sock):
    """A POST the app answers before reading its 100 kB body; then the body itself."""
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    data, state = answer(sock, timeout=0.3)
    assert data.startswith(b"HTTP/1.1 200 ") and state == "open"
    sock.sendall(b"b" * 100000)


def test_the_rest_of_a_body_answered_early_is_not_taken_for_a_head(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server.port)) as sock:
        send_early_answered_body(sock)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data, state = answer(sock, timeout=0.3)
        assert data.startswith(b"HTTP/1.1 200 ") and state == "open"


def test_after_a_body_answered_early_an_endless_head_is_still_refused(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server.port)) as sock:
        send_early_answered_body(sock)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(80):
                sock.sendall(b"X-Padding: " + b"p" * 1000 + b"\r\n")
        except OSError:
            pass
        data, state = answer(sock)
        if guarded_server.base == "HttpToolsProtocol":
            assert data.split(b" ", 2)[1] == b"431" and state == "closed"
        else:
            assert state in ("closed", "reset") and data[:12] in (b"", b"HTTP/1.1 400")
