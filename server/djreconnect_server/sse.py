"""The Server-Sent Events transport: an event stream for server -> client, HTTP POST for
client -> server, on the same LiveConnection as the WebSocket.

Each stream is one connection (a *channel*): an unguessable id and a CSRF token, sent as
the stream's first event, name it in the POSTs that carry the client's frames. A channel
lives exactly as long as its stream; what must outlive a dropped stream is the session's
(the runtime's Hello resumes it on the next stream, as over a WebSocket), so there is no
second resume mechanism here. Frames carry increasing ids.

Bounds: the frames waiting for the stream are at most ``max_stream_buffer_bytes``; a page
that does not read past that is closed with 1013 (it reconnects and resumes). A POST
carries at most ``MAX_FRAMES_PER_POST`` frames and is handled one frame at a time,
yielding between them; a channel takes one POST at a time.

With several processes on Redis, ``router`` (an ``sseroute.SSERouter``) names this process
as the holder of each stream, and a POST for a stream held by another process is carried
to it (see that module); without it, a channel exists in its own process only.
"""

import asyncio
import collections
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from djreconnect import constants
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import Request

from djreconnect_server.live import LiveConnection
from djreconnect_server.settings import Settings
from djreconnect_server.stores import StoreUnavailable

if TYPE_CHECKING:  # sseroute imports this module
    from djreconnect_server.sseroute import SSERouter

log = logging.getLogger("djreconnect")

# Event names on the stream (plain frames use the default "message" event).
EVENT_CHANNEL = constants.SSE_EVENT_CHANNEL
EVENT_CLOSE = constants.SSE_EVENT_CLOSE
HEADER_CHANNEL = constants.SSE_HEADER_CHANNEL
HEADER_CSRF = constants.SSE_HEADER_CSRF
MAX_FRAMES_PER_POST = constants.SSE_MAX_FRAMES_PER_POST
KEEPALIVE_S = 15


class Channel:
    """One stream's connection: its frames waiting to be streamed, within a byte budget."""

    def __init__(self, live: LiveConnection, max_bytes: int) -> None:
        self.id = secrets.token_urlsafe(24)
        self.csrf = secrets.token_urlsafe(24)
        self.live = live
        self.max_bytes = max_bytes
        self.waiting: collections.deque[tuple[int, str]] = collections.deque()  # (id, frame)
        self.waiting_bytes = 0
        self.next_id = 1
        self.wakeup = asyncio.Event()
        self.drained = asyncio.Event()  # set while nothing waits for the stream
        self.drained.set()
        self.posting = False
        self.last_post = time.monotonic()
        self.refusal: tuple[int, str] | None = None  # (code, reason) once the channel is to close
        self.ended = False
        self.on_refused: Callable[[], None] | None = None

    def push(self, frame: str) -> None:
        if self.refusal is not None:
            return
        size = len(frame)
        if self.waiting_bytes + size > self.max_bytes:
            self.refuse(constants.CLOSE_TRY_AGAIN_LATER, "the page is not reading its stream")
            return
        self.waiting.append((self.next_id, frame))
        self.waiting_bytes += size
        self.next_id += 1
        self.drained.clear()
        self.wakeup.set()

    def take_one(self) -> tuple[int, str]:
        """The oldest waiting frame, as the stream sends it: it counts against the budget
        until then (a stream blocked on a page that does not read holds no more)."""
        number, frame = self.waiting.popleft()
        self.waiting_bytes -= len(frame)
        if not self.waiting:
            self.drained.set()
        return number, frame

    def refuse(self, code: int, reason: str) -> None:
        if self.refusal is None:
            self.refusal = (code, reason)
            self.wakeup.set()
            if self.on_refused is not None:
                self.on_refused()

    def check(self, csrf: object) -> bool:
        """Whether ``csrf`` is this channel's token (constant time; any text is safe)."""
        if not isinstance(csrf, str):
            return False
        return hmac.compare_digest(csrf.encode("utf-8", "surrogatepass"), self.csrf.encode("utf-8"))


class SSEHub:
    """The open SSE channels of a backend."""

    def __init__(self, new_live: Callable[[Request], LiveConnection], settings: Settings) -> None:
        self.new_live = new_live  # request -> LiveConnection
        self.settings = settings
        self.channels: dict[str, Channel] = {}
        self._detaching: set[asyncio.Task[None]] = set()
        self.router: SSERouter | None = None  # when processes share a store: POSTs may reach another

    def stream(self, request: Request) -> EventSourceResponse:
        """The EventSourceResponse of a new channel."""
        live = self.new_live(request)
        channel = Channel(live, self.settings.max_stream_buffer_bytes)
        live.kick = channel.refuse
        # A refused channel's stream may never end (a page that does not read): its
        # session is released at once, to wait for the page's next connection.
        channel.on_refused = lambda: self._detach(channel)
        live.emit = channel.push
        live.wait_drained = channel.drained.wait
        self.channels[channel.id] = channel
        return EventSourceResponse(
            self._events(channel),
            ping=KEEPALIVE_S,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _events(self, channel: Channel) -> AsyncIterator[ServerSentEvent]:
        try:
            if self.router is not None:
                try:
                    await self.router.claim(channel)
                except StoreUnavailable as error:  # the close event follows the grant
                    channel.refuse(constants.CLOSE_TRY_AGAIN_LATER, str(error))
            grant = {"channel": channel.id, "csrf": channel.csrf}
            yield ServerSentEvent(json.dumps(grant), event=EVENT_CHANNEL)
            while True:
                while channel.waiting:
                    number, frame = channel.take_one()
                    yield ServerSentEvent(frame, id=str(number))
                if channel.refusal is not None:
                    code, reason = channel.refusal
                    yield ServerSentEvent(json.dumps({"code": code, "reason": reason}), event=EVENT_CLOSE)
                    return
                channel.wakeup.clear()
                if not channel.waiting and channel.refusal is None:
                    idle = self.settings.idle_timeout_s()
                    try:
                        await asyncio.wait_for(channel.wakeup.wait(), idle)
                    except asyncio.TimeoutError:
                        if time.monotonic() - channel.last_post > idle:
                            # No frame (not even a ping) for two heartbeats: a dead page.
                            channel.refuse(constants.CLOSE_GOING_AWAY, "no heartbeat")
        finally:
            self._end(channel)

    def _end(self, channel: Channel) -> None:
        """The stream is over: forget the channel; its session waits for the page."""
        channel.ended = True
        channel.drained.set()  # nothing waits for a stream that is gone
        if channel.refusal is None:
            channel.refusal = (constants.CLOSE_ABNORMAL, "stream ended")
        self.channels.pop(channel.id, None)
        if self.router is not None:
            self.router.release(channel)
        self._detach(channel)

    def _detach(self, channel: Channel) -> None:
        # Not awaited here: a cancelled stream may not await again in its own task.
        task = asyncio.get_running_loop().create_task(channel.live.detach())
        self._detaching.add(task)
        task.add_done_callback(self._detaching.discard)

    def remote(self, channel_id: object) -> bool:
        """Whether a POST for ``channel_id`` goes to another process (the router's
        ``forward``): there is a router and this process does not hold the channel."""
        return self.router is not None and not (isinstance(channel_id, str) and channel_id in self.channels)

    def find(self, channel_id: object, csrf: object) -> tuple[Channel, None] | tuple[None, tuple[int, str]]:
        """The channel a POST may act on, or (status, reason)."""
        channel = self.channels.get(channel_id) if isinstance(channel_id, str) else None
        if channel is None or channel.ended or channel.refusal is not None:
            return None, (404, "unknown or closed stream")
        if not channel.check(csrf):
            return None, (403, "missing or wrong CSRF token")
        return channel, None

    async def post(self, channel: Channel, body: str) -> tuple[int, str] | None:
        """Handle the frames of one POST (one per line), in order; replies go to the
        stream. Returns (status, reason) for a POST refused as a whole, else None."""
        if channel.posting:
            return 409, "one POST at a time per stream"
        # Only "\n" separates frames: other line breaks may stand unescaped in JSON strings.
        lines = [line for line in body.split("\n") if line.strip()]
        if len(lines) > MAX_FRAMES_PER_POST:
            return 413, "at most %d frames per POST" % MAX_FRAMES_PER_POST
        channel.posting = True
        channel.last_post = time.monotonic()
        try:
            for position, line in enumerate(lines):
                if channel.refusal is not None:
                    break
                if position:
                    await asyncio.sleep(0)  # other clients' frames between these
                for frame in await channel.live.handle(line):
                    channel.push(frame)
                live = channel.live
                if live.close_code is not None:
                    channel.refuse(live.close_code, live.close_reason)
        finally:
            channel.posting = False
        return None


def refused_stream(origin: str | None, code: int, reason: str) -> EventSourceResponse:
    """A one-event stream that tells the runtime it was refused (and why), then ends.
    Readable by the refused page, so it can say why, and carrying nothing else."""

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(json.dumps({"code": code, "reason": reason}), event=EVENT_CLOSE)

    return EventSourceResponse(events(), headers={"Access-Control-Allow-Origin": origin or "*"})
