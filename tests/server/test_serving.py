"""serving.py without a server: the rate-limited log filter, the descriptor arithmetic, the
uvicorn options. (The protocol itself is tested over a real process in test_http_limits.)"""

import logging
import subprocess
import sys

import pytest
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
