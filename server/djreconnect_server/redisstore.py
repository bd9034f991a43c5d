"""The ``redis://HOST:PORT/DB`` store and bus: sessions every process can resume, and
broadcasts that reach every process (Redis pub/sub).

Keys (under ``prefix``, ``dj:`` by default):

- ``s:ID`` a hash per session: ``data`` (the session's JSON, ``Session.to_dict``),
  ``secret`` (the SHA-256 of its resume secret), ``owner`` ("" while retained; the lease
  token of the attachment that serves it; ``push:TOKEN`` while a push is applied to it),
  ``bytes``, ``subs`` (its views' subscriptions), ``pushuntil`` (a push lease's end, ms).
  Its Redis expiry is the retention: ``retention_s`` after its last keep or save.
- ``retained`` a sorted set of retained session ids by the time they were kept (µs,
  strictly increasing: ``lastkept`` holds the newest score), with
  ``sizes`` (id -> bytes) and ``total`` (their sum): the count and byte bounds, trimmed
  (least recently kept first) on every keep.
- ``topic:T`` a set of ``ID<tab>VIEW`` of retained sessions subscribed to topic T.

One process at a time serves a session. Every change is a Lua script, so it is atomic:
``take`` succeeds only for the session's current secret hash and spends it at once (sets
it to "" and the owner to the taker's new lease), so of two processes resuming the same
session with the same secret exactly one wins; ``save`` and ``keep`` write only while
the writer's lease is the owner, so a process that lost a session (its page resumed
elsewhere) can never overwrite it. A push to a retained session takes a short push lease
(``peek``) that ``take`` waits out, and writes back with ``update``.

Redis unreachable: every operation raises ``StoreUnavailable`` within the client's
timeouts (a connection is answered with an error and closed with 1013, never left
hanging); the client reconnects by itself on the next operation once Redis is back.
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.commands.core import AsyncScript

from djreconnect_server.sessions import Session, new_token, secret_hash
from djreconnect_server.stores import BuildView, OnDrop, StoreLimits, StoreUnavailable

log = logging.getLogger("djreconnect")

REDIS_PREFIX = "redis://"
DEFAULT_KEY_PREFIX = "dj:"
# How long a push may hold a retained session before a resume may take it anyway (ms),
# and how often a resume checks whether that push is done (s).
PUSH_LEASE_MS = 5000
PUSH_WAIT_S = 0.01
# Redis timeouts (s): an unreachable Redis is an error within these, not a hung page.
CONNECT_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 3.0
# Connections to Redis a process opens at most (a store's; the bus has its own few).
MAX_CONNECTIONS = 32
BUS_CONNECTIONS = 4
# How long the bus's subscriber waits before subscribing again after Redis went away (s).
BUS_RETRY_S = (0.2, 5.0)
# Longest broadcast message on the bus (bytes of JSON).
MAX_MESSAGE_BYTES = 1 << 20

_FORGET = """
local function forget(p, sid)
  redis.call('ZREM', p..'retained', sid)
  local old = redis.call('HGET', p..'sizes', sid)
  if old then
    redis.call('DECRBY', p..'total', old)
    redis.call('HDEL', p..'sizes', sid)
  end
end
"""

# KEYS[1] session key. ARGV: id, data, secret, bytes, lease, now ms, retention ms,
# max sessions, max bytes, prefix, subs (JSON [[topic, view], ...]).
# Returns -1 when another lease owns the session, else how many sessions were evicted.
KEEP = (
    _FORGET
    + """
local key, p, id = KEYS[1], ARGV[10], ARGV[1]
local owner = redis.call('HGET', key, 'owner')
if owner and owner ~= '' and owner ~= ARGV[5] then return -1 end
redis.call('HSET', key, 'data', ARGV[2], 'secret', ARGV[3], 'owner', '', 'bytes', ARGV[4], 'subs', ARGV[11])
redis.call('PEXPIRE', key, ARGV[7])
forget(p, id)
-- Scored in microseconds, strictly increasing: keeps within one millisecond stay in order.
local kept = tonumber(ARGV[6]) * 1000
local last = tonumber(redis.call('GET', p..'lastkept') or '0')
if kept <= last then kept = last + 1 end
redis.call('SET', p..'lastkept', string.format('%d', kept))
redis.call('ZADD', p..'retained', string.format('%d', kept), id)
redis.call('HSET', p..'sizes', id, ARGV[4])
redis.call('INCRBY', p..'total', ARGV[4])
for _, sub in ipairs(cjson.decode(ARGV[11])) do
  redis.call('SADD', p..'topic:'..sub[1], id..'\\t'..sub[2])
end
local oldest_kept = string.format('%d', (tonumber(ARGV[6]) - tonumber(ARGV[7])) * 1000)
local expired = redis.call('ZRANGEBYSCORE', p..'retained', '-inf', oldest_kept)
for _, sid in ipairs(expired) do forget(p, sid) end
local evicted = 0
local most, budget = tonumber(ARGV[8]), tonumber(ARGV[9])
while redis.call('ZCARD', p..'retained') > most or tonumber(redis.call('GET', p..'total') or '0') > budget do
  local oldest = redis.call('ZRANGE', p..'retained', 0, 0)[1]
  if not oldest then break end
  forget(p, oldest)
  redis.call('DEL', p..'s:'..oldest)
  evicted = evicted + 1
end
return evicted
"""
)

# KEYS[1] session key. ARGV: data, secret, bytes, lease, retention ms.
# Returns 1 when written, 0 when another lease owns the session.
SAVE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'secret', ARGV[2], 'owner', ARGV[4], 'bytes', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS[1] session key. ARGV: id, secret hash, lease, now ms, prefix.
# Returns {0} (unknown, or not its secret), {1} (a push holds it: ask again), {2, data}.
TAKE = (
    _FORGET
    + """
local h = redis.call('HMGET', KEYS[1], 'secret', 'owner', 'pushuntil', 'data')
if not h[1] or h[1] == '' or h[1] ~= ARGV[2] then return {0} end
if h[2] and string.sub(h[2], 1, 5) == 'push:' and tonumber(h[3] or '0') > tonumber(ARGV[4]) then return {1} end
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'secret', '')
forget(ARGV[5], ARGV[1])
return {2, h[4]}
"""
)

# KEYS[1] session key. ARGV: push token, now ms, lease ms.
# Returns {0} gone, {1} another push holds it, {2} attached to a connection, {3, data}.
PEEK = """
local h = redis.call('HMGET', KEYS[1], 'owner', 'pushuntil', 'data')
if not h[3] then return {0} end
if h[1] and h[1] ~= '' then
  if string.sub(h[1], 1, 5) ~= 'push:' then return {2} end
  if tonumber(h[2] or '0') > tonumber(ARGV[2]) then return {1} end
end
redis.call('HSET', KEYS[1], 'owner', 'push:'..ARGV[1], 'pushuntil', tonumber(ARGV[2]) + tonumber(ARGV[3]))
return {3, h[3]}
"""

# KEYS[1] session key. ARGV: push token, data (or "" to only let go), bytes, id, prefix.
UPDATE = """
if redis.call('HGET', KEYS[1], 'owner') ~= 'push:'..ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', '')
if ARGV[2] == '' then return 1 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'bytes', ARGV[3])
local p = ARGV[5]
local old = redis.call('HGET', p..'sizes', ARGV[4])
if old then
  redis.call('INCRBY', p..'total', tonumber(ARGV[3]) - tonumber(old))
  redis.call('HSET', p..'sizes', ARGV[4], ARGV[3])
end
return 1
"""

# KEYS[1] topic set. ARGV: prefix. The members whose session still exists (the others go).
MEMBERS = """
local alive = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local sid = string.match(member, '^([^\\t]*)')
  if redis.call('EXISTS', ARGV[1]..'s:'..sid) == 1 then
    table.insert(alive, member)
  else
    redis.call('SREM', KEYS[1], member)
  end
end
return alive
"""


def check_redis_url(url: str) -> str:
    """``url`` if it is a ``redis://HOST:PORT/DB`` URL redis-py can use, else ValueError."""
    try:
        redis.asyncio.connection.parse_url(url)
    except ValueError as error:
        raise ValueError("bad redis URL %r: %s" % (url, error)) from None
    return url


def connect(
    url: str, read_timeout_s: float | None = COMMAND_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS
) -> redis.asyncio.Redis:
    """A redis-py asyncio client for ``url`` with this package's timeouts, on a bounded
    pool: past ``max_connections`` commands wait for a free connection (at most
    COMMAND_TIMEOUT_S) rather than open more (a deploy's burst of saves would otherwise
    open hundreds, past what Redis accepts)."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=COMMAND_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=read_timeout_s,
        socket_keepalive=True,
        decode_responses=True,
        retry_on_timeout=False,
    )
    return redis.asyncio.Redis.from_pool(pool)


def _now_ms() -> int:
    return int(time.time() * 1000)


class RedisStore:
    """Sessions in Redis, shared by every process with the same URL (see the module doc)."""

    persistent = True
    shared = True  # other processes resume these sessions: claims go through ``take``

    def __init__(
        self,
        url: str,
        build_view: BuildView,
        limits: StoreLimits | None = None,
        prefix: str = DEFAULT_KEY_PREFIX,
        client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.url = check_redis_url(url)
        self.build_view = build_view
        self.limits = limits or StoreLimits()
        self.prefix = prefix
        self.redis = client if client is not None else connect(url)
        self.on_drop: OnDrop | None = None  # expired sessions just go: their pushes find nothing
        self.evicted = 0
        self._keep = self.redis.register_script(KEEP)
        self._save = self.redis.register_script(SAVE)
        self._take = self.redis.register_script(TAKE)
        self._peek = self.redis.register_script(PEEK)
        self._update = self.redis.register_script(UPDATE)
        self._members = self.redis.register_script(MEMBERS)
        self._unavailable = False

    def key(self, session_id: str) -> str:
        return self.prefix + "s:" + session_id

    async def _call(self, script: AsyncScript, keys: list[str], args: list[str | int | float]) -> Any:
        try:
            result = await script(keys=keys, args=args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            if not self._unavailable:
                log.error("the session store at %s is unreachable: %s", self.url, error)
            self._unavailable = True
            raise StoreUnavailable("the session store is unreachable; try again shortly") from None
        if self._unavailable:
            log.warning("the session store at %s is reachable again", self.url)
            self._unavailable = False
        return result

    def _retention_ms(self) -> int:
        return max(1, int(self.limits.retention_s * 1000))

    @staticmethod
    def _encode(session: Session) -> str:
        return json.dumps(session.to_dict(), separators=(",", ":"))

    def _decode(self, data: str) -> Session:
        return Session.from_dict(json.loads(data), self.build_view)

    async def count(self) -> int:
        """How many sessions are retained (not attached anywhere)."""
        try:
            return await self.redis.zcard(self.prefix + "retained")
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            raise StoreUnavailable("the session store is unreachable; try again shortly") from None

    async def keep(self, session: Session) -> bool:
        data = self._encode(session)
        subs = [[topic, view_id] for view_id, state in session.views.items() for topic in state.view_topics()]
        lease = session.lease or new_token()
        result = await self._call(
            self._keep,
            [self.key(session.id)],
            [
                session.id,
                data,
                session.secret_digest or "",
                len(data),
                lease,
                _now_ms(),
                self._retention_ms(),
                int(self.limits.max_sessions),
                int(self.limits.max_bytes),
                self.prefix,
                json.dumps(subs),
            ],
        )
        session.lease = None
        if result == -1:
            log.info("session %s.. was resumed elsewhere; not kept here", session.id[:6])
            return False
        self.evicted += result
        return True

    async def save(self, session: Session) -> bool:
        """Write an attached session through; False when another process owns it now."""
        if session.lease is None:
            session.lease = new_token()
        data = self._encode(session)
        args: list[str | int | float] = [
            data,
            session.secret_digest or "",
            len(data),
            session.lease,
            self._retention_ms(),
        ]
        return bool(await self._call(self._save, [self.key(session.id)], args))

    async def take(self, session_id: object, secret: object) -> Session | None:
        if not isinstance(session_id, str) or not isinstance(secret, str):
            return None
        lease = new_token()
        deadline = time.monotonic() + PUSH_LEASE_MS / 1000
        while True:
            args: list[str | int | float] = [session_id, secret_hash(secret), lease, _now_ms(), self.prefix]
            result = await self._call(self._take, [self.key(session_id)], args)
            if result[0] != 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(PUSH_WAIT_S)  # a push is being applied: it takes milliseconds
        if result[0] != 2:
            return None
        session = self._decode(result[1])
        session.lease = lease
        return session

    async def peek(self, session_id: str) -> Session | None:
        """The retained session under a push lease (give it back with ``update``), or
        None when it is gone or attached to a connection (its process applies the push)."""
        token = new_token()
        deadline = time.monotonic() + PUSH_LEASE_MS / 1000
        while True:
            result = await self._call(self._peek, [self.key(session_id)], [token, _now_ms(), PUSH_LEASE_MS])
            if result[0] != 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(PUSH_WAIT_S)
        if result[0] != 3:
            return None
        session = self._decode(result[1])
        session.push_token = token
        return session

    async def update(self, session: Session, changed: bool = True) -> None:
        token = getattr(session, "push_token", None)
        if token is None:
            return
        session.push_token = None
        data = self._encode(session) if changed else ""
        await self._call(self._update, [self.key(session.id)], [token, data, len(data), session.id, self.prefix])

    async def topic_members(self, topic: str) -> list[tuple[str, str]]:
        """(session id, view id) of the retained sessions subscribed to ``topic``."""
        members = await self._call(self._members, [self.prefix + "topic:" + topic], [self.prefix])
        return [(member.split("\t", 1)[0], member.split("\t", 1)[1]) for member in members if "\t" in member]

    async def close(self) -> None:
        await self.redis.aclose()


class RedisBus:
    """Broadcasts across processes: ``publish`` sends a JSON envelope on one channel, and
    a subscriber task hands every envelope (its own included) to ``deliver``. ``routes``
    adds channels to the same subscription (set before ``start``): name -> (async handler
    of a JSON object, longest message in bytes); the SSE router's inbox is one."""

    def __init__(
        self, url: str, deliver: Callable[[dict[str, Any]], Awaitable[None]], prefix: str = DEFAULT_KEY_PREFIX
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.channel = prefix + "bus"
        self.deliver = deliver  # async (envelope dict)
        self.routes: dict[str, tuple[Callable[[dict[str, Any]], Awaitable[None]], int]] = {}
        # No read timeout: a subscriber waits for messages as long as none come.
        self.redis = connect(url, read_timeout_s=None, max_connections=BUS_CONNECTIONS)
        self.task: asyncio.Task[None] | None = None
        self.ready: asyncio.Event | None = None  # an asyncio.Event, set while subscribed (made in ``start``)

    def start(self) -> None:
        self.ready = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._listen())

    async def publish(self, envelope: dict[str, Any]) -> None:
        text = json.dumps(envelope, separators=(",", ":"))
        try:
            await self.redis.publish(self.channel, text)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            raise StoreUnavailable("the broadcast bus is unreachable: %s" % error) from None

    async def _listen(self) -> None:
        delay = BUS_RETRY_S[0]
        down = False
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel, *self.routes)
                if self.ready is not None:  # made by start(), which starts this task
                    self.ready.set()
                if down:
                    log.warning("the broadcast bus at %s is reachable again", self.url)
                down = False
                delay = BUS_RETRY_S[0]
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None or message.get("type") != "message":
                        continue
                    handler, limit = self.routes.get(message.get("channel"), (self.deliver, MAX_MESSAGE_BYTES))
                    data = message.get("data")
                    if not isinstance(data, str) or len(data) > limit:
                        continue
                    try:
                        envelope = json.loads(data)
                    except ValueError:
                        log.warning("a bus message that is not JSON was ignored")
                        continue
                    if isinstance(envelope, dict):
                        try:
                            await handler(envelope)
                        except Exception:
                            log.exception("delivering a bus message failed")
            except asyncio.CancelledError:
                raise
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
                if not down:
                    log.error("the broadcast bus at %s is unreachable: %s", self.url, error)
                down = True
                if self.ready is not None:
                    self.ready.clear()
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, BUS_RETRY_S[1])

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        await self.redis.aclose()
