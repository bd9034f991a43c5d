"""SSE without sticky routing: a POST that reaches a process other than the one holding
its stream is carried over Redis to that process, which applies it as a local POST, and
its outcome comes back as the POST's answer.

Each process has an id and an inbox (a pub/sub channel, ``PREFIX sse:ID``, on the
broadcast bus's subscription). While a stream lives, ``PREFIX ch:CHANNEL`` names the
process holding it (set before the stream's first event, refreshed every
``CHANNEL_TTL_S / 3``, expiring ``CHANNEL_TTL_S`` after a crash, deleted when the stream
ends). A POST for a channel this process does not hold:

- is checked here first (body size, frames per POST, the encoded request's size), then
  published to the owner's inbox as ``{"kind": "post", "id", "from", "channel", "csrf",
  "body"}``;
- the owner checks the CSRF token and applies the frames with ``SSEHub.post``, exactly as
  for a POST it received itself (one POST at a time per channel: a second one while the
  first is applied is 409, whichever process it came through; the exactly-once record
  answers a resent event), then publishes ``{"kind": "outcome", "id", "status",
  "reason"}`` to the sender's inbox, after the replies are on the stream;
- the sender answers with that outcome. No owner key: 404, as for an unknown channel;
  an owner whose inbox nobody reads (its process is gone): 404 at once; no outcome within
  ``timeout_s``: 503. The page answers any of them by reconnecting and resuming, and
  resends what was not acknowledged (applied once, by the exactly-once record).

Bounds: a process has at most ``max_waiting`` POSTs waiting for another process's answer,
holding at most ``max_waiting_bytes`` of bodies; past either a POST is answered 503 at
once. A process applies at most ``max_applying`` routed POSTs at a time (beyond, 503).
"""

import asyncio
import json
import logging
import secrets
from collections.abc import Coroutine
from typing import Any

import redis.asyncio
import redis.exceptions

from djreconnect_server.redisstore import RedisBus
from djreconnect_server.settings import Settings
from djreconnect_server.sse import MAX_FRAMES_PER_POST, Channel, SSEHub
from djreconnect_server.stores import StoreUnavailable

log = logging.getLogger("djreconnect")

# How long an owner key outlives its process (s); it is refreshed three times as often.
CHANNEL_TTL_S = 60
# How long a routed POST waits for its outcome (s).
ROUTE_TIMEOUT_S = 10.0
# POSTs (and their bytes) a process has waiting for other processes' answers.
MAX_WAITING = 1000
MAX_WAITING_BYTES = 32 << 20
# Routed POSTs a process applies at a time.
MAX_APPLYING = 1000
# Longest channel id looked up (the hub's ids are 32 characters).
MAX_CHANNEL_ID = 64
# Owner keys refreshed per Redis round trip.
REFRESH_BATCH = 500

# (HTTP status, reason) of a POST; 204 when it was applied.
Outcome = tuple[int, str]

_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class SSERouter:
    """Routes POSTs between the processes sharing a Redis (see the module doc)."""

    def __init__(self, hub: SSEHub, bus: RedisBus, client: redis.asyncio.Redis, settings: Settings) -> None:
        self.hub = hub  # the SSEHub of this process
        self.redis = client  # commands with timeouts (the store's client)
        self.prefix = bus.prefix
        self.id = secrets.token_urlsafe(12)
        self.inbox = self.inbox_of(self.id)
        # A request carries a body of at most max_frame_bytes, JSON-escaped (at most
        # doubled for the frames a page sends; longer ones are refused before publishing).
        self.max_message = 2 * settings.max_frame_bytes + 4096
        bus.routes[self.inbox] = (self._received, self.max_message)
        self.timeout_s = ROUTE_TIMEOUT_S
        self.max_waiting = MAX_WAITING
        self.max_waiting_bytes = MAX_WAITING_BYTES
        self.max_applying = MAX_APPLYING
        self.ttl_s = CHANNEL_TTL_S
        self.waiting: dict[str, asyncio.Future[Outcome]] = {}  # request id -> future of (status, reason)
        self.waiting_bytes = 0
        self.applying: set[asyncio.Task[None]] = set()  # tasks applying routed POSTs
        self.tasks: set[asyncio.Task[None]] = set()  # key deletions and the like, kept alive until done
        self.refresher: asyncio.Task[None] | None = None

    def inbox_of(self, process_id: str) -> str:
        return self.prefix + "sse:" + process_id

    def key(self, channel_id: str) -> str:
        return self.prefix + "ch:" + channel_id

    # --- the owner's side -----------------------------------------------------------

    async def claim(self, channel: Channel) -> None:
        """Name this process as the holder of ``channel`` (before its first event)."""
        try:
            await self.redis.set(self.key(channel.id), self.id, ex=self.ttl_s)
        except _REDIS_ERRORS as error:
            raise StoreUnavailable("the session store is unreachable: %s" % error) from None

    def release(self, channel: Channel) -> None:
        """The stream ended: its key goes (not awaited; it expires anyway)."""
        self._spawn(self._delete(channel.id), self.tasks)

    async def _delete(self, channel_id: str) -> None:
        try:
            await self.redis.delete(self.key(channel_id))
        except _REDIS_ERRORS:
            pass  # it expires

    async def start(self) -> None:
        self.refresher = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            ids = [channel_id for channel_id, channel in self.hub.channels.items() if not channel.ended]
            for start in range(0, len(ids), REFRESH_BATCH):
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for channel_id in ids[start : start + REFRESH_BATCH]:
                            pipe.set(self.key(channel_id), self.id, ex=self.ttl_s)
                        await pipe.execute()
                except _REDIS_ERRORS as error:
                    log.error("could not refresh the SSE channels' owner keys: %s", error)
                    break

    async def close(self) -> None:
        tasks = [self.refresher] if self.refresher is not None else []
        tasks += list(self.applying)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        for future in self.waiting.values():
            if not future.done():
                future.set_result((503, "this process is shutting down"))

    async def _received(self, message: dict[str, Any]) -> None:
        """A message on this process's inbox: a POST to apply, or an outcome awaited."""
        kind = message.get("kind")
        if kind == "outcome":
            request_id = message.get("id")
            future = self.waiting.get(request_id) if isinstance(request_id, str) else None
            status, reason = message.get("status"), message.get("reason")
            if future is not None and not future.done() and isinstance(status, int) and isinstance(reason, str):
                future.set_result((status, reason))
        elif kind == "post":
            fields = [message.get(name) for name in ("id", "from", "channel", "csrf", "body")]
            strings = [field for field in fields if isinstance(field, str)]
            if len(strings) != len(fields):
                log.warning("a routed POST without id, sender, channel, token and body was ignored")
                return
            request_id, sender, channel_id, csrf, body = strings
            if len(self.applying) >= self.max_applying:
                await self._answer(request_id, sender, (503, "the stream's process is busy; try again"))
                return
            self._spawn(self._apply(request_id, sender, channel_id, csrf, body), self.applying)

    async def _apply(self, request_id: str, sender: str, channel_id: str, csrf: str, body: str) -> None:
        channel, refused = self.hub.find(channel_id, csrf)
        if channel is not None:
            try:
                refused = await self.hub.post(channel, body)
            except Exception:
                log.exception("a routed POST failed")
                refused = (500, "the server could not handle these frames")
        await self._answer(request_id, sender, refused or (204, ""))

    async def _answer(self, request_id: str, sender: str, outcome: Outcome) -> None:
        text = json.dumps({"kind": "outcome", "id": request_id, "status": outcome[0], "reason": outcome[1]})
        try:
            await self.redis.publish(self.inbox_of(sender), text)
        except _REDIS_ERRORS as error:
            log.error("the outcome of a routed POST was not sent: %s", error)

    # --- the receiving side ---------------------------------------------------------

    async def forward(self, channel_id: object, csrf: object, body: str) -> Outcome:
        """Have the process holding ``channel_id`` apply ``body`` (checked as a local POST
        is); (status, reason) of the outcome, status 204 when applied."""
        if not isinstance(channel_id, str) or not channel_id or len(channel_id) > MAX_CHANNEL_ID:
            return 404, "unknown or closed stream"
        if not isinstance(csrf, str):
            return 403, "missing or wrong CSRF token"
        if body.count("\n") >= MAX_FRAMES_PER_POST and len(_frames(body)) > MAX_FRAMES_PER_POST:
            return 413, "at most %d frames per POST" % MAX_FRAMES_PER_POST
        size = len(body.encode("utf-8"))
        if len(self.waiting) >= self.max_waiting or self.waiting_bytes + size > self.max_waiting_bytes:
            return 503, "too many POSTs waiting for other processes; try again"
        request_id = secrets.token_urlsafe(12)
        text = json.dumps(
            {"kind": "post", "id": request_id, "from": self.id, "channel": channel_id, "csrf": csrf, "body": body},
            ensure_ascii=False,
        )
        if len(text) > self.max_message:
            return 413, "request too large"
        future = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = future
        self.waiting_bytes += size
        try:
            try:
                owner = await self.redis.get(self.key(channel_id))
                if owner is None or owner == self.id:
                    return 404, "unknown or closed stream"
                owner = owner if isinstance(owner, str) else owner.decode()  # (the client decodes)
                receivers = await self.redis.publish(self.inbox_of(owner), text)
            except _REDIS_ERRORS:
                return 503, "the session store is unreachable; try again shortly"
            if not receivers:
                return 404, "the process holding this stream is gone"
            try:
                return await asyncio.wait_for(future, self.timeout_s)
            except asyncio.TimeoutError:
                return 503, "the process holding this stream did not answer within %g s" % self.timeout_s
        finally:
            del self.waiting[request_id]
            self.waiting_bytes -= size

    @staticmethod
    def _spawn(coroutine: Coroutine[Any, Any, None], tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def _frames(body: str) -> list[str]:
    """The frames of a POST body, as ``SSEHub.post`` splits them."""
    return [line for line in body.split("\n") if line.strip()]
