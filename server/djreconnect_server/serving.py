"""Running a backend under uvicorn with bounded connections: a deadline for request heads,
a cap on connections below the open-file limit, and one-line, rate-limited logs of bad input.

uvicorn (0.29 and later) bounds an idle keep-alive connection (``timeout_keep_alive``), the
size of a WebSocket message (``ws_max_size``), a half-open WebSocket (``ws_ping_interval``
and ``ws_ping_timeout``) and, with h11 only, the size of a request head
(``h11_max_incomplete_event_size``). It does not bound the time a client takes to send
a request head, so a socket that never sends one, or sends a byte a second, stays open
for ever, and enough of them exhaust the process's descriptors: then nobody gets in.
``GuardedHTTPProtocol`` (uvicorn's own HTTP protocol plus what is missing) gives every
connection ``header_timeout_s`` to deliver a complete head (from its opening or its
previous response), refuses heads over ``max_header_bytes`` with 431, and keeps the
number of connections under ``limit_concurrency``: at the cap, a new connection closes
the one that has waited longest without a request in progress (as nginx reuses idle
connections); when none is idle (open streams, requests in flight), the newcomer is
answered 503 once its request head is in, and past ``OVERFLOW`` such refusals at a time,
at once. So the process never holds more than ``limit_concurrency + OVERFLOW``
connections. Request bodies are bounded by the application (``Settings.body_timeout_s``).

    uvicorn app:app --http djreconnect_server.serving:GuardedHTTPProtocol --limit-concurrency 900

or ``djreconnect_server.serving.run(app, host, port)``, which also raises the open-file
limit and derives ``limit_concurrency`` from it.
"""

import asyncio
import collections
import logging
import resource
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.auto import AutoHTTPProtocol

if TYPE_CHECKING:
    # What the guard is mixed into: uvicorn's httptools protocol (or its h11 one, which
    # has the same attributes and no parser callbacks).
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Protocol

    from djreconnect_server.settings import Settings
else:
    _Protocol = object

log = logging.getLogger("djreconnect.http")

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_KEEP_ALIVE_S = 5
# The open-file limit run() asks for (the soft limit, raised toward the hard limit).
FD_TARGET = 65536
# Descriptors kept for the process itself (listening socket, event loop, logs, stores).
FD_RESERVED = 64
# Connections refused at a time while their request head is read (to answer 503 cleanly),
# and how long one is given to send it.
OVERFLOW = 32
REFUSAL_WAIT_S = 1.0
# How long a connection answered 408/431 is still read (and dropped) before it closes.
LINGER_S = 1.0
# At most one line per message per this many seconds for noisy, client-caused messages.
LOG_INTERVAL_S = 10.0


def raise_open_file_limit(target: int = FD_TARGET) -> int:
    """Raise the soft RLIMIT_NOFILE toward the hard limit (up to ``target``); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, want, error)
    return target if soft == resource.RLIM_INFINITY else soft


def connection_limit(fd_limit: int) -> int:
    """``limit_concurrency`` for an open-file limit: what is left after the reserve, less a
    quarter for files opened while answering (assets) and the overflow."""
    return max(8, (fd_limit - FD_RESERVED) * 3 // 4 - OVERFLOW)


class _HeadGuard(_Protocol):
    """Mixed into a uvicorn HTTP protocol (httptools or h11): see the module docstring."""

    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S
    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    overflow = OVERFLOW
    # Connections that may be waiting for a request head, oldest first (entries that
    # have since started a request are skipped and dropped when met).
    waiting: "collections.OrderedDict[_HeadGuard, None]" = None  # type: ignore[assignment]  # each class made by guarded_protocol has its own
    refusing = 0  # connections being refused now (at most ``overflow``)
    _fd_limit: int | None = None
    limit_concurrency: int  # uvicorn's may be None; __init__ sets it then

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.limit_concurrency is None:  # uvicorn's own 503 check then uses ours too
            self.limit_concurrency = self._limit_from_descriptors()
        self._refused: Literal[False, "refused", "counted", "done"] = False
        self._upgraded = False
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._lingering = False
        self._in_head: bool | None = None

    # --- uvicorn's protocol interface -------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        # uvicorn answers 503 once len(connections) reaches the limit: keep them below it.
        if len(self.connections) + 1 >= self.limit_concurrency and not self._evict_one():
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused:
            if self._refused == "counted":
                type(self).refusing -= 1
            self._refused = "done"
            return
        self.waiting.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # answered and closing: what else the client sends is dropped
        if self._refused:
            self._head_bytes += len(data)
            if b"\r\n\r\n" in data or self._head_bytes > 8192:
                self._answer_refusal()
            return
        super().data_received(data)
        if self._reading_head() and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                log.warning("closed a connection: request head over %d bytes", self.max_header_bytes)
                self._close_with(431, "Request Header Fields Too Large", b"request head too large")
        else:
            self._head_bytes = 0

    def pause_writing(self) -> None:
        if not self._refused:
            super().pause_writing()

    def resume_writing(self) -> None:
        if not self._refused:
            super().resume_writing()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._head_bytes = 0
            self._arm()

    # httptools' parser callbacks (h11 has none: _in_head stays None).

    def on_message_begin(self) -> None:
        self._in_head = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self._upgraded = True
        self._disarm()
        self.waiting.pop(self, None)
        super().handle_websocket_upgrade(*args)

    # --- the guard ----------------------------------------------------------------------

    @classmethod
    def _limit_from_descriptors(cls) -> int:
        if _HeadGuard._fd_limit is None:
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            _HeadGuard._fd_limit = FD_TARGET if soft == resource.RLIM_INFINITY else soft
        return connection_limit(_HeadGuard._fd_limit)

    def _waiting_for_head(self) -> bool:
        """No request in progress (the deadline runs, the connection may be evicted)."""
        return not self._upgraded and (self.cycle is None or self.cycle.response_complete)

    def _reading_head(self) -> bool:
        """Whether the bytes just parsed were (part of) a request head. httptools says so
        exactly (between a message's start and its headers' end); with h11, which bounds
        heads itself, it is a head when no request is in progress and the last one's body
        is all in (a body still arriving after an early answer, e.g. 413, is not a head)."""
        if self._in_head is not None:
            return self._in_head
        return self._waiting_for_head() and (self.cycle is None or not self.cycle.more_body)

    def _arm(self) -> None:
        """Give the connection ``header_timeout_s`` from now to deliver a request head."""
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._head_timeout)
        self.waiting[self] = None
        self.waiting.move_to_end(self)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timeout(self) -> None:
        self._deadline = None
        if self._waiting_for_head() and not self.transport.is_closing():
            if self._head_bytes:
                self._close_with(408, "Request Timeout", b"request head not received in time")
            else:
                self.waiting.pop(self, None)
                self.transport.close()

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest for a request head; False if none."""
        while self.waiting:
            victim, _ = self.waiting.popitem(last=False)
            if victim._waiting_for_head() and not victim.transport.is_closing():
                victim._disarm()
                victim.transport.close()
                self.connections.discard(victim)
                log.warning("at %d connections: closed the one idle longest", self.limit_concurrency)
                return True
        return False

    def _refuse(self, transport: asyncio.Transport) -> None:
        """Every connection is busy: answer 503 once the request head is in (or after
        REFUSAL_WAIT_S), so the client reads it rather than a reset; past ``overflow``
        refusals at a time, at once. The connection is never handed to uvicorn."""
        log.warning("refused a connection: %d busy, the limit is %d", len(self.connections), self.limit_concurrency)
        self._refused = "refused"
        self.transport = transport
        cls = type(self)
        if cls.refusing >= self.overflow:
            self._answer_refusal()
            return
        cls.refusing += 1
        self._refused = "counted"
        self._deadline = self.loop.call_later(REFUSAL_WAIT_S, self._answer_refusal)

    def _answer_refusal(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_response(503, "Service Unavailable", b"too many connections", retry_after=5))
            self.transport.close()

    def _close_with(self, status: int, phrase: str, body: bytes) -> None:
        """Answer and close, reading (and dropping) for LINGER_S what the client is still
        sending: closing with unread data would reset the connection, and the client
        could lose the answer. (It stays evictable meanwhile.)"""
        self._disarm()
        self._lingering = True
        self.transport.write(_response(status, phrase, body))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._deadline = self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()


def _response(status: int, phrase: str, body: bytes, retry_after: int | None = None) -> bytes:
    head = "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % (
        status,
        phrase,
        len(body),
    )
    if retry_after is not None:
        head += "retry-after: %d\r\n" % retry_after
    return head.encode("ascii") + b"connection: close\r\n\r\n" + body


def guarded_protocol(
    base: type[asyncio.Protocol] = AutoHTTPProtocol,
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    max_header_bytes: int | None = None,
) -> type[asyncio.Protocol]:
    """A uvicorn HTTP protocol class: ``base`` (httptools when installed, else h11) with
    the head deadline, the head size limit and the connection cap. Pass it as ``http=``."""
    if not header_timeout_s > 0:
        raise ValueError("header_timeout_s must be > 0, not %r" % (header_timeout_s,))
    return type(
        "Guarded" + base.__name__,
        (_HeadGuard, base),
        {
            "header_timeout_s": header_timeout_s,
            "max_header_bytes": max_header_bytes or DEFAULT_MAX_HEADER_BYTES,
            "waiting": collections.OrderedDict(),
            "refusing": 0,
        },
    )


GuardedHTTPProtocol = guarded_protocol()


def uvicorn_options(
    settings: "Settings | None" = None,
    limit_concurrency: int | None = None,
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    keep_alive_s: int = DEFAULT_KEEP_ALIVE_S,
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` that bound what one
    connection may hold. ``limit_concurrency`` None: derived from the open-file limit."""
    if limit_concurrency is None:
        limit_concurrency = connection_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    options: dict[str, Any] = {
        "http": guarded_protocol(header_timeout_s=header_timeout_s),
        "limit_concurrency": limit_concurrency,
        "timeout_keep_alive": keep_alive_s,
        "h11_max_incomplete_event_size": DEFAULT_MAX_HEADER_BYTES,
    }
    if settings is not None:
        # A frame up to twice the limit reaches the application, which refuses it with a
        # clear error (too_big); beyond that the WebSocket layer closes with 1009.
        options["ws_max_size"] = 2 * settings.max_frame_bytes
    return options


def run(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: "Settings | None" = None,
    fd_target: int = FD_TARGET,
    **overrides: Any,
) -> None:
    """uvicorn with the open-file limit raised and the limits above, and the drain of a
    deploy (``app.RestartingServer``: on SIGTERM, sessions to the store, then every
    connection closed with 1012 and the restart hint)."""
    from djreconnect_server.app import RestartingServer

    fd_limit = raise_open_file_limit(fd_target)
    limit = overrides.pop("limit_concurrency", None) or connection_limit(fd_limit)
    options = uvicorn_options(settings, limit_concurrency=limit, **_pick(overrides, "header_timeout_s", "keep_alive_s"))
    options.update(overrides)
    RestartingServer(uvicorn.Config(app, host=host, port=port, **options)).run()


def _pick(mapping: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: mapping.pop(name) for name in names if name in mapping}


# --- logs -----------------------------------------------------------------------------

# uvicorn's messages that any client can cause at will, and whether to drop their traceback.
NOISY_MESSAGES = {
    # uvicorn's websockets protocol decodes text frames itself and logs a failure with
    # logger.exception: a traceback per bad frame, before the application sees anything.
    "Invalid UTF-8 sequence received from client.": True,
    "Invalid HTTP request received.": False,
    "Exceeded concurrency limit.": False,
}


class RateLimitFilter(logging.Filter):
    """One line per message at most every ``interval`` seconds, saying how many were
    dropped since; for ``messages`` only (all when None), without their tracebacks."""

    def __init__(
        self,
        messages: dict[str, bool] | None = None,
        interval: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.messages = messages
        self.interval = interval
        self.clock = clock
        self.last: dict[str, tuple[float | None, int]] = {}  # message -> (time of the last line, lines dropped since)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        if self.messages is not None and message not in self.messages:
            return True
        if self.messages is None or self.messages[message]:
            if record.exc_info and record.exc_info[1] is not None:
                error = str(record.exc_info[1])
                record.msg = "%s (%s)" % (message, error.replace("%", "%%") if record.args else error)
            record.exc_info = None
            record.exc_text = None
        now = self.clock()
        last, dropped = self.last.get(message, (None, 0))
        if last is not None and now - last < self.interval:
            self.last[message] = (last, dropped + 1)
            return False
        if dropped and last is not None:
            record.msg = "%s [%d more in the last %.0f s]" % (record.msg, dropped, now - last)
        self.last[message] = (now, 0)
        if len(self.last) > 1000:  # many distinct messages: forget the oldest
            self.last.pop(next(iter(self.last)))
        return True


def install_log_filter() -> None:
    """Rate-limit (and make one line of) the client-caused messages of uvicorn and of this
    module. Idempotent."""
    for name, messages in (("uvicorn.error", NOISY_MESSAGES), (log.name, None)):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RateLimitFilter) for existing in logger.filters):
            logger.addFilter(RateLimitFilter(messages))
