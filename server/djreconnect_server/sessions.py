"""Sessions: what outlives a connection (views, their last renders, the exactly-once
record), and the registry that hands them to connections and keeps them while their page
is away.

A session is data, a connection is a pipe: a ``LiveConnection`` attaches to one session
at a time and detaches when its transport ends; everything that must survive a drop lives
here. Where a detached session is kept (process memory, SQLite, Redis) is the store's
business (``djreconnect_server.stores``).

Exactly once, the server's half. Every event the runtime sends carries an id (its
``ref``) unique in its session, and the runtime keeps each event until its reply comes,
sending unanswered ones again after a resume. The server:

1. looks the id up in the session's ``EventRecord`` before applying anything; a known id
   with the same payload is answered with the recorded outcome and applied no more; a
   known id with another payload is refused (``id_reused``); an id older than what the
   record still holds is refused (``id_expired``) rather than risk applying it twice;
2. applies the event, renders, records the id and its outcome, and saves the session to
   its store, all under the session's lock, before the reply is written.

So an event is applied at most once per session (1), and, because the runtime repeats it
until some reply arrives, at least once while the session lives. A drop before the event
reaches the server: it is not recorded, the repeat applies it. A drop while the server
works on it or after it answered: it is recorded (2 finishes under the lock before any
resume can take the session), the repeat gets the recorded outcome. A process crash
after (2) loses nothing with a persistent store, since the save precedes the reply.
"""

import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from djreconnect import constants

if TYPE_CHECKING:
    from djreconnect_server.live import LiveConnection
    from djreconnect_server.stores import BuildView, SessionStore
    from djreconnect_server.views import LiveView

log = logging.getLogger("djreconnect")

# Bytes of randomness in session ids and resume secrets (144 bits; the spec asks >= 128).
TOKEN_BYTES = 18
# What one recorded event id costs in the retained-bytes estimate, beyond its errors: what
# it holds in memory (the ordered dict's entry, the id, its digest and tuple; measured by
# bench/retention.py with tracemalloc).
RECORD_ENTRY_BYTES = 290
# Fixed cost of a session in the retained-bytes estimate (ids, secret hash, containers).
SESSION_OVERHEAD_BYTES = 512
# Version of the stored session format (see ``Session.to_dict``).
FORMAT_VERSION = 1
# Broadcasts a session remembers having applied (by id and view), so that a push that
# reaches it by two ways (its process, and the publisher for a retained session) applies once.
PUSH_RECORD_SIZE = 256
# The outcome of an event: the (code, message) of each error frame it produced.
Errors = list[list[str]]


class SessionMoved(Exception):
    """Another process resumed this session (a shared store): this one no longer serves it."""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def secret_hash(secret: str) -> str:
    """What a store keeps of a resume secret: its SHA-256, never the secret itself."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def event_digest(view_id: str, events: Any) -> str:
    """A fingerprint of an event's payload, to tell a repeat from a reused id."""
    text = json.dumps([view_id, events], sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.blake2s(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


class EventRecord:
    """The ids of the last ``limit`` events applied in a session, with their outcome: the
    error frames' (code, message) pairs they produced, empty when all went well."""

    NEW = "new"
    REPEAT = "repeat"
    REUSED = "reused"
    EXPIRED = "expired"

    def __init__(self, limit: int = constants.DEFAULT_EVENT_RECORD_SIZE) -> None:
        self.limit = limit
        self.entries: collections.OrderedDict[int, tuple[str, Errors]] = (
            collections.OrderedDict()
        )  # ref -> (digest, [[code, message], ...])
        self.forgotten_up_to = 0  # the highest id dropped from the record

    def check(self, ref: int, digest: str) -> tuple[str, Errors]:
        """(verdict, recorded errors) for event ``ref`` with payload ``digest``."""
        entry = self.entries.get(ref)
        if entry is not None:
            if entry[0] == digest:
                return self.REPEAT, entry[1]
            return self.REUSED, []
        if ref <= self.forgotten_up_to:
            return self.EXPIRED, []
        return self.NEW, []

    def add(self, ref: int, digest: str, errors: Iterable[Sequence[str]]) -> None:
        self.entries[ref] = (digest, [list(error) for error in errors])
        while len(self.entries) > self.limit:
            old_ref, _ = self.entries.popitem(last=False)
            self.forgotten_up_to = max(self.forgotten_up_to, old_ref)

    def size(self) -> int:
        total = 0
        for digest, errors in self.entries.values():
            total += RECORD_ENTRY_BYTES + sum(len(code) + len(message) for code, message in errors)
        return total

    def to_list(self) -> list[list[Any]]:
        return [[ref, digest, errors] for ref, (digest, errors) in self.entries.items()]

    @classmethod
    def from_list(
        cls, entries: list[list[Any]], forgotten_up_to: int, limit: int = constants.DEFAULT_EVENT_RECORD_SIZE
    ) -> "EventRecord":
        record = cls(limit)
        for ref, digest, errors in entries:
            record.entries[ref] = (digest, errors)
        record.forgotten_up_to = forgotten_up_to
        return record


class ViewState:
    """One mounted view of a session: the view object, its last render (the HTML of the
    page the template produced) numbered ``version``, and the render before it, so a
    page that missed the last reply can be patched from what it has."""

    def __init__(
        self,
        name: str,
        view: "LiveView",
        html: str | None = None,
        version: int = 0,
        previous: tuple[int, str] | None = None,
    ) -> None:
        self.name = name
        self.view = view
        self.html = html
        self.version = version
        self.previous = previous  # (version, html) of the render before, or None
        self.dirty = False  # pushed to since the last render

    def view_topics(self) -> list[str]:
        """The topics the view subscribes to."""
        return sorted(getattr(self.view, "_djreconnect_topics", ()))

    def advance(self, html: str) -> bool:
        """Record a new render; returns whether it differs from the last one."""
        if html == self.html:
            self.dirty = False
            return False
        self.dirty = False
        if self.html is not None:
            self.previous = (self.version, self.html)
        self.html = html
        self.version += 1
        return True

    def render_bytes(self) -> int:
        size = len(self.html or "")
        if self.previous is not None:
            size += len(self.previous[1])
        return size


class StateError(ValueError):
    """A view's state that a store cannot keep (not JSON), naming the view and attribute."""


def dump_view_state(view: "LiveView") -> dict[str, Any]:
    """A view's state as JSON-able data: ``view.dump_state()``; StateError names the
    attribute a store cannot keep."""
    state = view.dump_state()
    for name, value in state.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as error:
            raise StateError(
                "%s.%s cannot be stored (%s): give the view dump_state()/load_state()"
                % (type(view).__name__, name, error)
            ) from None
    return state


class Session:
    """A page's live session: its views and exactly-once record, and the connection that
    serves it now (None while its page is away)."""

    def __init__(self, session_id: str | None = None, record_limit: int = constants.DEFAULT_EVENT_RECORD_SIZE) -> None:
        self.id = session_id or new_token()
        self.secret_digest: str | None = None
        self.views: dict[str, ViewState] = {}  # view id (the page's) -> ViewState
        self.record = EventRecord(record_limit)
        self.connection: LiveConnection | None = None
        self.lock = asyncio.Lock()  # one frame, push or save at a time
        self.lease: str | None = None  # a shared store's token for the attachment serving it
        self.push_token: str | None = None  # a shared store's token for a push applied to it while retained
        self.pushes: collections.OrderedDict[str, None] = (
            collections.OrderedDict()
        )  # "push id/view id" of broadcasts applied

    def note_push(self, key: str) -> bool:
        """Record broadcast ``key`` as applied; False when it already was."""
        if key in self.pushes:
            return False
        self.pushes[key] = None
        while len(self.pushes) > PUSH_RECORD_SIZE:
            self.pushes.popitem(last=False)
        return True

    def rotate_secret(self) -> str:
        """A new resume secret (the old one stops working); returns it."""
        secret = new_token()
        self.secret_digest = secret_hash(secret)
        return secret

    def check_secret(self, secret: object) -> bool:
        if self.secret_digest is None or not isinstance(secret, str):
            return False
        return hmac.compare_digest(secret_hash(secret), self.secret_digest)

    def render_bytes(self) -> int:
        return sum(state.render_bytes() for state in self.views.values())

    def size(self) -> int:
        """Bytes this session costs while retained (an estimate; see the memory benchmark)."""
        total = SESSION_OVERHEAD_BYTES + self.record.size()
        for view_id, state in self.views.items():
            total += len(view_id) + len(state.name) + state.render_bytes()
            total += len(json.dumps(state.view.dump_state(), default=repr))
        return total

    # --- the stored form ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The session as JSON-able data (format ``FORMAT_VERSION``). StateError when a
        view's state is not JSON."""
        views: dict[str, dict[str, Any]] = {}
        for view_id, state in self.views.items():
            views[view_id] = {
                "name": state.name,
                "state": dump_view_state(state.view),
                "html": state.html,
                "version": state.version,
                "previous": list(state.previous) if state.previous is not None else None,
                "topics": state.view_topics(),
                "dirty": state.dirty,
            }
        return {
            "format": FORMAT_VERSION,
            "id": self.id,
            "secret": self.secret_digest,
            "views": views,
            "record": self.record.to_list(),
            "forgotten_up_to": self.record.forgotten_up_to,
            "pushes": list(self.pushes),
        }

    @classmethod
    def from_dict(
        cls, data: Any, build_view: "BuildView", record_limit: int = constants.DEFAULT_EVENT_RECORD_SIZE
    ) -> "Session":
        """The session ``to_dict`` wrote. ``build_view(name, state)`` makes a view object
        (None when no view has that name any more: the view is left out, and remounts)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise ValueError("not a stored session of format %d" % FORMAT_VERSION)
        session = cls(data["id"], record_limit)
        session.secret_digest = data["secret"]
        for view_id, stored in data["views"].items():
            view = build_view(stored["name"], stored["state"])
            if view is None:
                continue
            previous = stored.get("previous")
            state = ViewState(
                stored["name"], view, stored["html"], stored["version"], tuple(previous) if previous else None
            )
            state.dirty = bool(stored.get("dirty"))
            view._djreconnect_topics = set(stored.get("topics") or ())
            session.views[view_id] = state
        session.record = EventRecord.from_list(data["record"], data.get("forgotten_up_to", 0), record_limit)
        for key in data.get("pushes") or ():
            session.pushes[key] = None
        return session


class SessionRegistry:
    """Hands sessions to connections: new ones, and detached ones back to the page that
    proves it owns them (its secret). Sessions attached to a connection of this process
    live in ``attached``; detached ones are the store's (kept for the retention period,
    within its count and byte bounds)."""

    def __init__(self, store: "SessionStore", record_limit: int = constants.DEFAULT_EVENT_RECORD_SIZE) -> None:
        self.store = store
        self.record_limit = record_limit
        self.attached: dict[str, Session] = {}  # session id -> Session
        self.on_restore: Callable[[Session], None] | None = None  # called with a session a store gave back
        # Called with a session handed to a shared store (its pushes are the store's now).
        self.on_keep: Callable[[Session], None] | None = None
        self._loading: dict[str, asyncio.Lock] = {}  # session id -> asyncio.Lock while a stored copy is in use
        self.claims: set[asyncio.Future[None]] = set()  # futures of resumes in progress (a broadcast waits for them)

    @contextlib.asynccontextmanager
    async def _stored(self, session_id: str) -> AsyncIterator[None]:
        """One user at a time of a session the store holds (a resume, a push)."""
        lock = self._loading.get(session_id)
        if lock is None:
            lock = self._loading[session_id] = asyncio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._loading.get(session_id) is lock:
                del self._loading[session_id]

    @contextlib.asynccontextmanager
    async def borrow(self, session_id: str) -> AsyncIterator[Session | None]:
        """The session ``session_id`` under its lock, wherever it is (attached here, or
        kept by the store, written back after), or None when it is gone (or, with a
        shared store, served by another process). For pushes."""
        session = self.attached.get(session_id)
        if session is not None:
            await session.lock.acquire()
            if self.attached.get(session_id) is session:
                try:
                    yield session
                finally:
                    session.lock.release()
                return
            session.lock.release()  # handed to the store meanwhile: take it from there
        async with self._stored(session_id):
            session = await self.store.peek(session_id)
            if session is None:
                yield None
                return
            async with session.lock:
                try:
                    yield session
                finally:
                    await self.store.update(session)

    def new(self, connection: "LiveConnection") -> Session:
        session = Session(record_limit=self.record_limit)
        self._attach(session, connection)
        return session

    async def claim(self, session_id: str, secret: object, connection: "LiveConnection") -> Session | None:
        """The session ``session_id`` for ``connection``, if ``secret`` is its current
        secret; a connection that still holds it (a half-open drop) loses it. None when
        the session is gone or the secret is wrong (the two are not told apart)."""
        if self.store.shared:
            return await self._claim_shared(session_id, secret, connection)
        session = self.attached.get(session_id)
        if session is not None:
            if not session.check_secret(secret):
                return None
            previous = session.connection
            async with session.lock:  # let a frame being handled on the old connection finish
                if previous is not None and previous is not connection:
                    previous.lose_session()
            self._attach(session, connection)
            return session
        async with self._stored(session_id):
            session = await self.store.take(session_id, secret)
        if session is None:
            return None
        self._attach(session, connection)
        if self.on_restore is not None:
            self.on_restore(session)
        return session

    async def _claim_shared(self, session_id: str, secret: object, connection: "LiveConnection") -> Session | None:
        """A resume with a store other processes share: always the store's atomic
        ``take`` (the secret is spent there, so of two processes resuming one session only
        one wins), even when this process still holds a copy (a half-open drop)."""
        if not isinstance(session_id, str):
            return None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.claims.add(done)
        try:
            async with self._stored(session_id):
                local = self.attached.get(session_id)
                if local is None:
                    session = await self.store.take(session_id, secret)
                else:
                    async with local.lock:  # a frame being handled on the old connection finishes (and saves)
                        session = await self.store.take(session_id, secret)
                        if session is not None:
                            previous, local.connection = local.connection, None
                            if previous is not None and previous is not connection:
                                previous.lose_session()
                            self.attached.pop(session_id, None)
                            if self.on_keep is not None:
                                self.on_keep(local)
                if session is None:
                    return None
                self._attach(session, connection)
                if self.on_restore is not None:
                    self.on_restore(session)
                return session
        finally:
            self.claims.discard(done)
            done.set_result(None)

    async def settle(self) -> None:
        """Wait for the resumes in progress now (so that a broadcast finds their views)."""
        pending = list(self.claims)
        if pending:
            await asyncio.wait(pending)

    def _attach(self, session: Session, connection: "LiveConnection") -> None:
        session.connection = connection
        self.attached[session.id] = session

    async def release(self, session: Session, connection: "LiveConnection") -> None:
        """``connection`` ended: keep ``session`` for its page to come back to."""
        if session.connection is not connection:
            return
        session.connection = None
        if not self.store.shared:
            self.attached.pop(session.id, None)
            async with session.lock:
                await self.store.keep(session)
            return
        # Shared: the session stays this process's (pushes apply to it here) until the
        # store has it, then its pushes are the store's.
        async with self._stored(session.id):
            async with session.lock:
                try:
                    await self.store.keep(session)
                finally:
                    if self.attached.get(session.id) is session:
                        del self.attached[session.id]
                    if self.on_keep is not None:
                        self.on_keep(session)

    def forget(self, session: Session) -> None:
        """Drop this process's stale copy of a session another process serves now."""
        session.connection = None
        if self.attached.get(session.id) is session:
            del self.attached[session.id]
        if self.on_keep is not None:
            self.on_keep(session)

    async def save(self, session: Session) -> None:
        """Write an attached session through to a persistent store (before a reply).
        SessionMoved when a shared store says another process serves it now."""
        if await self.store.save(session) is False:
            raise SessionMoved(session.id)

    async def close(self) -> None:
        """Keep every attached session (a shutdown), then close the store."""
        for session in list(self.attached.values()):
            session.connection = None
            self.attached.pop(session.id, None)
            try:
                await self.store.keep(session)
            except Exception as error:
                log.error("session %s.. could not be kept at shutdown: %s", session.id[:6], error)
        await self.store.close()
