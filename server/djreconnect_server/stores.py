"""Session stores: where a session waits while its page is away, behind one interface.

- ``memory`` (default): this process's memory; a restart loses every session (pages then
  remount and recover their forms).
- ``sqlite:///PATH``: a file on this machine; sessions survive a restart of the process.
- ``redis://HOST:PORT/DB``: every process on every machine shares them
  (``djreconnect_server.redisstore``; needs a Redis server).

Every store keeps a detached session for ``retention_s`` seconds, at most
``max_sessions`` of them and ``max_bytes`` in all (measured per session as
``Session.size()``, or the stored JSON's length); past either bound the least recently
used go first. The interface (all coroutines):

    keep(session)                 the session's connection ended: retain it
    take(session_id, secret)      the retained session, if ``secret`` is its secret, else None
    save(session)                 write an attached session through (persistent stores)
    peek(session_id)              the retained session, to apply a push to (no secret)
    update(session)               write back what ``peek`` gave, still retained
    close()

A store whose Redis (or other server) cannot be reached raises ``StoreUnavailable``.
A ``shared`` store is shared with other processes: a resume always goes through ``take``
(atomic there), and ``save``/``keep`` return False when the session was taken elsewhere.

``on_drop``, when set, is called with each session a store forgets before it is taken
back (expired or evicted), so its subscriptions and timers end with it.
"""

import asyncio
import collections
import concurrent.futures
import json
import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from djreconnect import constants

from djreconnect_server.sessions import Session

if TYPE_CHECKING:
    from djreconnect_server.views import LiveView

STORE_MEMORY = "memory"
SQLITE_PREFIX = "sqlite:///"
REDIS_PREFIX = "redis://"


# Makes a view object from a stored session's view name and state (None: no such view).
BuildView = Callable[[str, dict[str, Any]], "LiveView | None"]
# Called with a session a store forgets.
OnDrop = Callable[[Session], None]
_T = TypeVar("_T")
# An SQLite row: id, secret hash, JSON, its length, expiry, attached.
_Row = tuple[str, str, str, int, float, int]


class SessionStore(Protocol):
    """What every store offers (see the module docstring)."""

    persistent: bool
    shared: bool
    on_drop: OnDrop | None

    async def keep(self, session: Session) -> bool | None: ...

    async def take(self, session_id: object, secret: object) -> Session | None: ...

    async def save(self, session: Session) -> bool | None: ...

    async def peek(self, session_id: str) -> Session | None: ...

    async def update(self, session: Session) -> None: ...

    async def close(self) -> None: ...


class SharedSessionStore(SessionStore, Protocol):
    """A store other processes share (``shared``): it also knows which retained sessions
    subscribe to a topic."""

    async def topic_members(self, topic: str) -> list[tuple[str, str]]: ...


class StoreUnavailable(Exception):
    """The store cannot be reached now (its server is down): try again shortly."""


class StoreLimits:
    """The bounds of a store's retained sessions."""

    def __init__(
        self,
        retention_s: float = constants.DEFAULT_SESSION_RETENTION_S,
        max_sessions: float = constants.DEFAULT_MAX_RETAINED_SESSIONS,
        max_bytes: float = constants.DEFAULT_MAX_RETAINED_BYTES,
    ) -> None:
        for name, value in (("retention_s", retention_s), ("max_sessions", max_sessions), ("max_bytes", max_bytes)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
                raise ValueError("%s must be a finite number >= 0, not %r" % (name, value))
        self.retention_s = retention_s
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes


class MemoryStore:
    """Retained sessions as live objects in this process, least recently kept first."""

    persistent = False
    shared = False

    def __init__(self, limits: StoreLimits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or StoreLimits()
        self.clock = clock
        self.retained: collections.OrderedDict[str, tuple[Session, float, int]] = collections.OrderedDict()
        self.bytes = 0
        self.evicted = 0  # sessions dropped for a bound before their retention ended
        self.on_drop: OnDrop | None = None

    def __len__(self) -> int:
        return len(self.retained)

    async def keep(self, session: Session) -> None:
        self._forget(session.id)
        size = session.size()
        if size > self.limits.max_bytes:
            # Bigger than the whole budget: it goes, and no other session for it.
            self.evicted += 1
            if self.on_drop is not None:
                self.on_drop(session)
            return
        self.retained[session.id] = (session, self.clock(), size)
        self.bytes += size
        self._bound()

    async def take(self, session_id: object, secret: object) -> Session | None:
        self._expire()
        if not isinstance(session_id, str):
            return None
        entry = self.retained.get(session_id)
        if entry is None or not entry[0].check_secret(secret):
            return None
        self._forget(session_id)
        return entry[0]

    async def save(self, session: Session) -> None:
        """Nothing to write: an attached session lives in this process."""

    async def peek(self, session_id: str) -> Session | None:
        self._expire()
        entry = self.retained.get(session_id)
        return None if entry is None else entry[0]

    async def update(self, session: Session) -> None:
        entry = self.retained.get(session.id)
        if entry is not None and entry[0] is session:
            size = session.size()
            self.bytes += size - entry[2]
            self.retained[session.id] = (session, entry[1], size)
            self._bound()

    async def close(self) -> None:
        self.retained.clear()
        self.bytes = 0

    def _forget(self, session_id: str) -> None:
        entry = self.retained.pop(session_id, None)
        if entry is not None:
            self.bytes -= entry[2]

    def _drop(self, session_id: str) -> None:
        entry = self.retained.get(session_id)
        self._forget(session_id)
        if entry is not None and self.on_drop is not None:
            self.on_drop(entry[0])

    def _expire(self) -> None:
        deadline = self.clock() - self.limits.retention_s
        while self.retained:
            session_id, (session, kept_at, size) = next(iter(self.retained.items()))
            if kept_at > deadline:
                break
            self._drop(session_id)

    def _bound(self) -> None:
        self._expire()
        limits = self.limits
        while self.retained and (len(self.retained) > limits.max_sessions or self.bytes > limits.max_bytes):
            self._drop(next(iter(self.retained)))
            self.evicted += 1


class SQLiteStore:
    """Sessions as JSON rows in an SQLite file (WAL journal: a save costs no fsync wait).

    Attached sessions are written through (``save``) so that a crash loses nothing a page
    saw acknowledged; a retained one expires ``retention_s`` after its last write. The file
    belongs to one process at a time: opening it retains, from then, the sessions that were
    attached when the previous process died.

    The file is read and written on one thread of its own, in the order the calls were
    made: a slow disk, a WAL checkpoint or a lock held by another program delays the
    sessions that wait for it, never the event loop. Sessions are turned into JSON on the
    caller's side, so what is written is the state at the moment of the call.
    """

    persistent = True
    shared = False

    def __init__(
        self,
        path: str,
        build_view: BuildView,
        limits: StoreLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.build_view = build_view
        self.limits = limits or StoreLimits()
        self.clock = clock
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS djreconnect_sessions ("
            " id TEXT PRIMARY KEY, secret TEXT NOT NULL, data TEXT NOT NULL,"
            " bytes INTEGER NOT NULL, expires REAL NOT NULL, attached INTEGER NOT NULL)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS djreconnect_sessions_expires ON djreconnect_sessions (expires)")
        # What is still attached was attached when the last process died without releasing
        # it. Its page may come back: retained from now.
        self.db.execute(
            "UPDATE djreconnect_sessions SET attached = 0, expires = ? WHERE attached = 1",
            (self.clock() + self.limits.retention_s,),
        )
        self.evicted = 0
        self.on_drop: OnDrop | None = None  # expired rows just go: their pushes find nothing
        # One thread: the file's operations run one at a time, in the order they were asked.
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="djreconnect-sqlite")

    def __len__(self) -> int:
        count: int = self.db.execute("SELECT COUNT(*) FROM djreconnect_sessions WHERE attached = 0").fetchone()[0]
        return count

    async def _off_loop(self, work: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    def _row(self, session: Session, attached: int) -> _Row:
        data = json.dumps(session.to_dict(), separators=(",", ":"))
        expires = self.clock() + self.limits.retention_s
        return (session.id, session.secret_digest or "", data, len(data), expires, attached)

    def _write(self, row: _Row) -> None:
        self.db.execute(
            "INSERT INTO djreconnect_sessions (id, secret, data, bytes, expires, attached) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET secret = excluded.secret, data = excluded.data,"
            " bytes = excluded.bytes, expires = excluded.expires, attached = excluded.attached",
            row,
        )

    def _keep(self, row: _Row, now: float) -> None:
        self._write(row)
        if row[3] > self.limits.max_bytes:
            # Bigger than the whole budget: it goes, and no other session for it.
            self.db.execute("DELETE FROM djreconnect_sessions WHERE id = ?", (row[0],))
            self.evicted += 1
            return
        self._bound(now)

    async def keep(self, session: Session) -> None:
        await self._off_loop(self._keep, self._row(session, 0), self.clock())

    async def save(self, session: Session) -> None:
        await self._off_loop(self._write, self._row(session, 1))

    def _take(self, session_id: str, now: float) -> tuple[str] | None:
        return self.db.execute(
            "SELECT data FROM djreconnect_sessions WHERE id = ? AND expires > ?", (session_id, now)
        ).fetchone()

    async def take(self, session_id: object, secret: object) -> Session | None:
        if not isinstance(session_id, str):
            return None
        row = await self._off_loop(self._take, session_id, self.clock())
        if row is None:
            return None
        session = Session.from_dict(json.loads(row[0]), self.build_view)
        if not session.check_secret(secret):
            return None
        await self._off_loop(
            self.db.execute, "UPDATE djreconnect_sessions SET attached = 1 WHERE id = ?", (session_id,)
        )
        return session

    def _peek(self, session_id: str, now: float) -> tuple[str] | None:
        return self.db.execute(
            "SELECT data FROM djreconnect_sessions WHERE id = ? AND attached = 0 AND expires > ?", (session_id, now)
        ).fetchone()

    async def peek(self, session_id: str) -> Session | None:
        row = await self._off_loop(self._peek, session_id, self.clock())
        return None if row is None else Session.from_dict(json.loads(row[0]), self.build_view)

    async def update(self, session: Session) -> None:
        data = json.dumps(session.to_dict(), separators=(",", ":"))
        await self._off_loop(
            self.db.execute,
            "UPDATE djreconnect_sessions SET data = ?, bytes = ? WHERE id = ? AND attached = 0",
            (data, len(data), session.id),
        )

    async def close(self) -> None:
        await self._off_loop(self.db.close)
        self._thread.shutdown()

    def _bound(self, now: float) -> None:
        limits = self.limits
        # Only retained sessions expire; an attached one lives as long as its connection.
        self.db.execute("DELETE FROM djreconnect_sessions WHERE attached = 0 AND expires <= ?", (now,))
        count, size = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM djreconnect_sessions WHERE attached = 0"
        ).fetchone()
        while count > limits.max_sessions or size > limits.max_bytes:
            row = self.db.execute(
                "SELECT id, bytes FROM djreconnect_sessions WHERE attached = 0 ORDER BY expires LIMIT 1"
            ).fetchone()
            if row is None:
                break
            self.db.execute("DELETE FROM djreconnect_sessions WHERE id = ?", (row[0],))
            count -= 1
            size -= row[1]
            self.evicted += 1


def check_store_url(url: str) -> str:
    """Raise ValueError unless ``url`` names a store this backend has."""
    if url == STORE_MEMORY:
        return url
    if url.startswith(SQLITE_PREFIX) and len(url) > len(SQLITE_PREFIX):
        return url
    if url.startswith(REDIS_PREFIX):
        from djreconnect_server.redisstore import check_redis_url

        return check_redis_url(url)
    raise ValueError("store must be 'memory', 'sqlite:///PATH' or 'redis://HOST:PORT/DB', not %r" % (url,))


def open_store(url: str, build_view: BuildView, limits: StoreLimits | None = None) -> SessionStore:
    """The store named by ``url``: ``memory``, ``sqlite:///PATH`` or ``redis://HOST:PORT/DB``."""
    check_store_url(url)
    if url == STORE_MEMORY:
        return MemoryStore(limits)
    if url.startswith(REDIS_PREFIX):
        from djreconnect_server.redisstore import RedisStore

        return RedisStore(url, build_view, limits)
    # sqlite:///app.db is relative to the working directory, sqlite:////var/app.db absolute.
    path = url[len(SQLITE_PREFIX) :]
    return SQLiteStore(path, build_view, limits)
