"""One live connection: decode frames, attach to a session (new or resumed), mount views,
dispatch events exactly once, answer with patches.

Transport-independent: the WebSocket and SSE endpoints feed frames in, send back what
``receive`` returns, and call ``detach`` when the transport ends. A connection is a pipe;
what must survive it lives in its session (``djreconnect_server.sessions``).

Work a client causes is charged to its connection (``WorkBudget``): events, bytes
rendered, time spent. A connection past its budget waits before its next frame is
handled, so one client cannot take the event loop from the others; renders and page
HTML too large to handle in a few milliseconds go to a worker thread (lexbor, the HTML
parser, releases the GIL).
"""

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from djreconnect import constants, protocol
from djreconnect.patch import OP_HTML
from starlette.requests import HTTPConnection

from djreconnect_server.diff import Op, diff, parse_fragment, parse_render
from djreconnect_server.pagehtml import PageHTMLRefused, check_page_html
from djreconnect_server.pubsub import ViewHandle
from djreconnect_server.sessions import (
    EventRecord,
    Session,
    SessionMoved,
    SessionRegistry,
    StateError,
    ViewState,
    event_digest,
)
from djreconnect_server.signing import MountSigner
from djreconnect_server.stores import MemoryStore, StoreUnavailable
from djreconnect_server.templating import Templates
from djreconnect_server.views import HandlerError, LiveView

if TYPE_CHECKING:
    from djreconnect_server.pubsub import PubSub
    from djreconnect_server.settings import Settings

log = logging.getLogger("djreconnect")

# Renders (and page HTML) above this size are made off the event loop.
OFFLOAD_BYTES = 64 << 10
# Threads for that work; a few, so that no number of clients can take them all from
# the process's other work.
_OFFLOAD = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="djreconnect-render")
# Work units: one per event, one per RENDER_UNIT_BYTES rendered, one per millisecond.
RENDER_UNIT_BYTES = 16 << 10

# The views a backend serves, by name: (view class, public).
Registry = dict[str, tuple[type[LiveView], bool]]
# How a transport closes a connection from outside: kick(code, reason).
Kick = Callable[[int, str], object]
Result = TypeVar("Result")


class RenderTooBig(Exception):
    """A render past ``max_render_bytes`` (or the session's render budget)."""


class RateLimiter:
    """A token bucket: ``rate`` frames a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens: float = burst
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def allow(self) -> bool:
        self._refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class WorkBudget(RateLimiter):
    """Work units a connection may spend: ``rate`` a second, ``burst`` at once. Spending
    may run the balance below zero; the connection then waits ``wait_s()`` before its next
    frame is handled (it is slowed, not dropped)."""

    def charge(self, units: float) -> None:
        self._refill()
        self.tokens -= units

    def wait_s(self) -> float:
        self._refill()
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class _Timed:
    """Awaits a coroutine and adds up the time its own code ran (``spent``, seconds): each
    step from one suspension to the next, not the time it waited on I/O, a sleep or
    another task. A handler that awaits a database for a second has done a second of
    nothing the connection should be charged for."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.coroutine = coroutine
        self.spent = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine = self.coroutine
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            started = time.perf_counter()
            try:
                step = coroutine.send(sent) if thrown is None else coroutine.throw(thrown)
            except StopIteration as done:
                return done.value
            finally:
                self.spent += time.perf_counter() - started
            try:
                sent, thrown = (yield step), None
            except BaseException as error:  # cancellation, or the loop closing: the handler's to see
                sent, thrown = None, error


def _render_and_diff(
    templates: Templates, view: LiveView, last_html: str | None, max_bytes: int
) -> tuple[str, list[Op]]:
    """The view's new render and the ops from ``last_html`` to it (pure: thread-safe)."""
    html = templates.render(view)
    if len(html) > max_bytes:
        raise RenderTooBig("a render of %d characters exceeds the limit of %d" % (len(html), max_bytes))
    if last_html is None or html == last_html:
        return html, []
    return html, diff(parse_render(last_html), parse_render(html))


def _patch_from_page(page_html: str, render_html: str, max_bytes: int, max_depth: int) -> list[Op]:
    """Ops turning what a page shows into ``render_html``: a diff when the page's HTML is
    within bounds, else one op replacing the root's content."""
    new = parse_render(render_html)
    try:
        check_page_html(page_html, max_bytes, max_depth)
    except PageHTMLRefused as refused:
        log.info("%s: rendering the view whole", refused)
        return [[OP_HTML, [], new.html]]
    return diff(parse_fragment(page_html), new)


class LiveConnection:
    """The server side of one client connection.

    Transports feed each frame to ``handle``, which never raises: a bug is logged and
    answered with an Error frame, an unreachable store with an Error frame and a 1013
    close, a session another process took with a close. ``receive`` is the same work
    without that guard: it raises (StoreUnavailable, SessionMoved, a bug), for tests that
    look at the failure itself.

    After ``handle`` or ``receive``, ``close_code`` is set (with ``close_reason``) when
    the transport must close the connection: the application refused it (a view that
    cannot be mounted, a flood). The frames returned say why first. ``kick``, when the
    transport sets it, closes the transport from outside (``kick(code, reason)``): when
    another connection resumes this one's session.
    """

    def __init__(
        self,
        registry: Registry,
        templates: Templates,
        signer: MountSigner,
        settings: "Settings",
        request: HTTPConnection,
        sessions: SessionRegistry | None = None,
        hub: "PubSub | None" = None,
    ) -> None:
        self.registry = registry
        self.templates = templates
        self.signer = signer
        self.settings = settings
        self.request = request
        self.sessions = sessions if sessions is not None else SessionRegistry(MemoryStore())
        self.session: Session | None = None
        self.resumable: set[str] = set()  # views of a resumed session not yet joined again
        self.limiter = RateLimiter(settings.max_frames_per_second, settings.max_frame_burst)
        self.budget = WorkBudget(settings.max_work_per_second, settings.max_work_burst)
        self.close_code: int | None = None
        self.close_reason = ""
        self.kick: Kick | None = None
        self.hub = hub
        # The transport's ordered way out: frames rendered under the session's lock are
        # handed to ``emit`` there, so that pushes and replies leave in render order.
        # Without a transport (tests), they collect in ``pushed``.
        self.emit: Callable[[str], None] | None = None
        self.pushed: list[str] = []
        self.wait_drained: Callable[[], Awaitable[object]] | None = (
            None  # async: until the transport has sent what it holds
        )

    @property
    def views(self) -> dict[str, ViewState]:
        """The views this connection serves: view id -> ViewState."""
        return self.session.views if self.session is not None else {}

    @property
    def _attached(self) -> Session:
        """The session, in code that runs only while one is attached."""
        if self.session is None:
            raise RuntimeError("the connection has no session")
        return self.session

    def refuse(self, code: int, reason: str) -> None:
        """Ask the transport to close with ``code`` (the first refusal wins)."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason

    def lose_session(self) -> None:
        """Another connection resumed this one's session (a half-open drop): stop serving
        it, and close."""
        self.session = None
        self.resumable = set()
        reason = "the session was resumed on another connection"
        self.refuse(constants.CLOSE_NORMAL, reason)
        if self.kick is not None:
            self.kick(constants.CLOSE_NORMAL, reason)

    async def restart(self) -> None:
        """The server restarts on purpose: keep the session in the store, then close
        with 1012 and the restart hint (the page comes back within its window)."""
        self.refuse(constants.CLOSE_SERVICE_RESTART, constants.CLOSE_REASON_RESTART)
        await self.detach()
        if self.kick is not None:
            self.kick(constants.CLOSE_SERVICE_RESTART, constants.CLOSE_REASON_RESTART)

    def _moved(self) -> None:
        """Another process resumed this connection's session (a shared store): the copy
        here is stale. Forget it and close; the page is served over there."""
        session = self.session
        self.lose_session()
        if session is not None:
            self.sessions.forget(session)

    async def detach(self) -> None:
        """The transport ended: the session waits for its page to come back."""
        session, self.session = self.session, None
        if session is not None:
            try:
                await self.sessions.release(session, self)
            except StoreUnavailable:
                log.error("session %s.. could not be kept: the store is unreachable", session.id[:6])

    def _error(self, ref: int | None, view: str | None, code: str, message: str) -> str:
        return protocol.encode(protocol.Error(ref=ref, view=view, code=code, message=message))

    async def handle(self, text: str) -> list[str]:
        """Handle one inbound frame; returns the frames to send back. Never raises: a
        failure is answered (what transports call; ``receive`` raises)."""
        try:
            return await self.receive(text)
        except StoreUnavailable as error:
            # Logged by the store; the page retries on its backoff schedule.
            self.refuse(constants.CLOSE_TRY_AGAIN_LATER, str(error))
            return [protocol.encode(protocol.Error(code=protocol.STORE_UNAVAILABLE, message=str(error)))]
        except SessionMoved:
            self._moved()
            return []
        except Exception:
            log.exception("a frame could not be handled")
            failed = protocol.Error(code="internal_error", message="the server could not handle that frame")
            return [protocol.encode(failed)]

    async def handle_binary(self) -> list[str]:
        """A binary frame: refused (frames are JSON text), and counted like any other."""
        refused = self._limit()
        if refused is not None:
            return refused
        return [self._error(None, None, "bad_frame", "frames must be text, not binary")]

    def _limit(self) -> list[str] | None:
        """Frames answering a closed or flooding connection, or None to go on."""
        if self.close_code is not None:
            return []
        if not self.limiter.allow():
            reason = "more than %d frames a second" % self.settings.max_frames_per_second
            self.refuse(constants.CLOSE_RATE_LIMITED, reason)
            return [self._error(None, None, "rate_limited", reason)]
        return None

    async def receive(self, text: str) -> list[str]:
        """Handle one inbound frame; returns the frames to send back (JSON text). Raises
        what it cannot handle (StoreUnavailable, SessionMoved, any bug): transports call
        ``handle``, which answers those instead."""
        refused = self._limit()
        if refused is not None:
            return refused
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.settings.max_frame_bytes:
            return [
                self._error(
                    None,
                    None,
                    "too_big",
                    "frame of %d bytes exceeds the limit of %d" % (size, self.settings.max_frame_bytes),
                )
            ]
        try:
            message = protocol.decode_client(text)
        except protocol.ProtocolError as error:
            return [self._error(None, None, error.code, error.message)]
        if isinstance(message, protocol.Ping):
            return [protocol.encode(protocol.Pong(ref=message.ref))]
        wait = self.budget.wait_s()
        if wait > 0:
            await asyncio.sleep(wait)
        if isinstance(message, protocol.Hello):
            return [await self._hello(message)]
        if self.session is None:
            if self.close_code is not None:
                return []
            self.session = self.sessions.new(self)
        session = self.session
        async with session.lock:
            if self.session is not session:  # resumed elsewhere while this frame waited
                return []
            if isinstance(message, protocol.Join):
                frames = [await self._join(message)]
            elif isinstance(message, protocol.Leave):
                self._forget_view(message.view)
                return []
            elif isinstance(message, protocol.Batch):
                frames = await self._dispatch(message.ref, message.view, message.events, batch=True)
            else:
                frames = await self._dispatch(message.ref, message.view, [[message.handler, message.params]])
            try:
                await self.sessions.save(session)
            except StateError as error:
                log.error("%s", error)
                frames.append(self._error(None, None, "state_not_storable", str(error)))
            if self.emit is not None:
                for frame in frames:
                    self.emit(frame)
                return []
        return frames

    def _forget_view(self, view_id: str) -> None:
        session = self._attached
        state = session.views.pop(view_id, None)
        if state is not None and self.hub is not None:
            self.hub.forget_view(session.id, view_id, state.view_topics())

    def _bind(self, view: LiveView, view_id: str) -> None:
        """Give a view its way to the hub (subscriptions, timers, broadcasts)."""
        if self.hub is not None:
            view._djreconnect_handle = ViewHandle(self.hub, self._attached.id, view_id)

    async def render_pushed(self, view_id: str) -> None:
        """Render a view that pushes changed, once the transport has sent what it had
        (so a slow page gets one render of the newest state, not a backlog)."""
        if self.wait_drained is not None:
            await self.wait_drained()
        session = self.session
        if session is None:
            return
        async with session.lock:
            state = session.views.get(view_id)
            if self.session is not session or state is None or not state.dirty:
                return
            try:
                html, ops = await self._render_checked(state)
            except Exception:
                log.exception("rendering %s after a push failed", type(state.view).__name__)
                return
            state.advance(html)
            try:
                await self.sessions.save(session)
            except SessionMoved:
                self._moved()
                return
            except StoreUnavailable as error:
                self.refuse(constants.CLOSE_TRY_AGAIN_LATER, str(error))
                if self.kick is not None:
                    self.kick(constants.CLOSE_TRY_AGAIN_LATER, str(error))
                return
            frame = protocol.encode(protocol.Reply(ref=None, view=view_id, ops=ops, version=state.version))
            (self.emit or self.pushed.append)(frame)

    # --- sessions ----------------------------------------------------------------------

    async def _hello(self, hello: protocol.Hello) -> str:
        """Attach to the session the page asks for, or to a new one."""
        if self.session is not None:
            return self._error(hello.ref, None, "bad_frame", "hello comes first on a connection, once")
        session: Session | None = None
        if hello.session is not None:
            session = await self.sessions.claim(hello.session, hello.secret, self)
        resumed = session is not None
        if session is None:
            session = self.sessions.new(self)
        self.session = session
        self.resumable = set(session.views) if resumed else set()
        for view_id, state in session.views.items():
            self._bind(state.view, view_id)
        reason = "" if resumed else (protocol.SESSION_UNKNOWN if hello.session else protocol.SESSION_NEW)
        secret = session.rotate_secret()
        async with session.lock:
            await self.sessions.save(session)
        return protocol.encode(
            protocol.Welcome(ref=hello.ref, session=session.id, secret=secret, resumed=resumed, reason=reason)
        )

    # --- mounting ----------------------------------------------------------------------

    async def _join(self, join: protocol.Join) -> str:
        entry = self.registry.get(join.name)
        if entry is None:
            return self._refuse_join(join, "unknown_view", constants.CLOSE_UNKNOWN_VIEW, "no view named %r" % join.name)
        view_cls, public = entry
        params: dict[str, Any] = {}
        if join.token:
            granted = self.signer.verify(join.token, join.name)
            if granted is None:
                message = "the mount grant for %r is not valid" % (join.name,)
                return self._refuse_join(join, "bad_token", constants.CLOSE_BAD_TOKEN, message)
            params = granted
        elif not public:
            message = "view %r needs a mount grant from its page" % (join.name,)
            return self._refuse_join(join, "bad_token", constants.CLOSE_BAD_TOKEN, message)
        views = self._attached.views
        state = views.get(join.view)
        if join.view in self.resumable and state is not None and state.name == join.name:
            self.resumable.discard(join.view)
            if state.dirty:  # pushed to while the page was away
                try:
                    html, _ = await self._render_checked(state)
                    state.advance(html)
                except Exception:
                    log.exception("rendering %s for a resume failed", type(state.view).__name__)
            ops = await self._page_patch(state, join.version, join.html)
            return protocol.encode(
                protocol.Rendered(ref=join.ref, view=join.view, ops=ops, version=state.version, resumed=True)
            )
        self.resumable.discard(join.view)
        if join.view not in views and len(views) >= self.settings.max_views:
            message = "more than %d views on one connection" % self.settings.max_views
            return self._refuse_join(join, "too_many_views", constants.CLOSE_BAD_FRAME, message)
        if state is not None:
            self._forget_view(join.view)  # mounted afresh: the old view's pushes end
        try:
            view = view_cls()
            self._bind(view, join.view)
            view.mount(self.request, **params)
            state = ViewState(join.name, view)
            html, _ = await self._render_checked(state)
            state.advance(html)
            ops = await self._charged(
                len(join.html) + len(html),
                _patch_from_page,
                join.html,
                html,
                self.settings.max_page_html_bytes,
                self.settings.max_page_html_depth,
            )
        except RenderTooBig as error:
            return self._error(join.ref, join.view, "render_too_big", str(error))
        except Exception:
            log.exception("mounting %s failed", join.name)
            message = "mounting %r failed on the server" % (join.name,)
            return self._error(join.ref, join.view, protocol.MOUNT_FAILED, message)
        views[join.view] = state
        return protocol.encode(protocol.Rendered(ref=join.ref, view=join.view, ops=ops, version=state.version))

    def _refuse_join(self, join: protocol.Join, code: str, close_code: int, message: str) -> str:
        self.refuse(close_code, message)
        return self._error(join.ref, join.view, code, message)

    async def _page_patch(self, state: ViewState, version: int | None, page_html: str) -> list[Op]:
        """Ops from what a resuming page shows (render ``version``, or ``page_html``) to
        the view's current render, parsing the page's HTML only when it must."""
        if version == state.version:
            return []
        html = state.html or ""  # rendered: a view is kept with its render
        if state.previous is not None and version == state.previous[0]:
            return await self._charged(
                len(html) * 2,
                lambda old, new: diff(parse_render(old), parse_render(new)),
                state.previous[1],
                html,
            )
        settings = self.settings
        return await self._charged(
            len(page_html) + len(html),
            _patch_from_page,
            page_html,
            html,
            settings.max_page_html_bytes,
            settings.max_page_html_depth,
        )

    # --- events ------------------------------------------------------------------------

    async def _dispatch(self, ref: int, view_id: str, events: list[Any], batch: bool = False) -> list[str]:
        """Apply ``events`` ([handler, params] pairs) to view ``view_id`` once, render, and
        answer: an Error per refused event, then the Reply. A lone event that was refused
        gets a Reply only if its handler changed the state before it stopped."""
        session = self._attached
        state = session.views.get(view_id)
        if state is None:
            return [self._error(ref, view_id, "not_mounted", "view %r is not mounted" % (view_id,))]
        if ref < 1:  # the runtime numbers events from 1; the record knows nothing below
            return [self._error(ref, view_id, "bad_frame", "an event's ref must be a positive integer, not %d" % ref)]
        record = session.record
        digest = event_digest(view_id, events)
        verdict, recorded = record.check(ref, digest)
        if verdict == EventRecord.REPEAT:
            return self._answer(ref, view_id, recorded, [], state.version, batch)
        if verdict == EventRecord.REUSED:
            return [self._error(ref, view_id, protocol.ID_REUSED, "event id %d was used for another event" % ref)]
        if verdict == EventRecord.EXPIRED:
            message = "event id %d is older than the events this session remembers" % ref
            return [self._error(ref, view_id, protocol.ID_EXPIRED, message)]
        errors: list[tuple[str, str]] = []
        spent = 0.0  # seconds the handlers' own code ran (their awaits are not charged)
        for position, (handler, params) in enumerate(events):
            if position and position % 50 == 0:
                await asyncio.sleep(0)  # a long batch lets other clients in
            timed = _Timed(state.view.handle_event(handler, params))
            try:
                await timed
            except HandlerError as error:
                errors.append((error.code, error.message))
            except Exception:
                log.exception("handler %s of %s failed", handler, type(state.view).__name__)
                errors.append(("handler_failed", "%s failed on the server" % (handler,)))
            spent += timed.spent
        self.budget.charge(len(events) + spent * 1000)
        try:
            html, ops = await self._render_checked(state)
        except RenderTooBig as error:
            errors.append(("render_too_big", str(error)))
            ops = None
        except Exception:
            log.exception("rendering %s failed", type(state.view).__name__)
            errors.append(("render_failed", "the view could not be rendered"))
            ops = None
        if ops is not None:
            state.advance(html)
        record.add(ref, digest, errors)
        return self._answer(ref, view_id, errors, ops or [], state.version, batch or ops is None)

    def _answer(
        self,
        ref: int,
        view_id: str,
        errors: list[tuple[str, str]] | list[list[str]],
        ops: list[Op],
        version: int,
        always_reply: bool,
    ) -> list[str]:
        frames = [self._error(ref, view_id, code, message) for code, message in errors]
        if not errors or always_reply:
            frames.append(protocol.encode(protocol.Reply(ref=ref, view=view_id, ops=ops, version=version)))
        elif ops:
            frames.append(protocol.encode(protocol.Reply(ref=None, view=view_id, ops=ops, version=version)))
        return frames

    async def _render_checked(self, state: ViewState) -> tuple[str, list[Op]]:
        """(html, ops from the last render) for ``state``, within the render bounds."""
        settings = self.settings
        others = self.session.render_bytes() - state.render_bytes() if self.session is not None else 0
        budget = settings.max_session_render_bytes - others - len(state.html or "")
        limit = min(settings.max_render_bytes, max(0, budget))
        started = time.perf_counter()
        html, ops = await self._offload(
            len(state.html or ""), _render_and_diff, self.templates, state.view, state.html, limit
        )
        self.budget.charge(len(html) / RENDER_UNIT_BYTES + (time.perf_counter() - started) * 1000)
        return html, ops

    async def _offload(self, size: int, function: Callable[..., Result], *args: Any) -> Result:
        """``function(*args)``, on a worker thread when ``size`` (bytes of HTML involved)
        says it may take more than a few milliseconds."""
        if size <= OFFLOAD_BYTES:
            return function(*args)
        return await asyncio.get_running_loop().run_in_executor(_OFFLOAD, function, *args)

    async def _charged(self, size: int, function: Callable[..., Result], *args: Any) -> Result:
        """``_offload``, with the work charged to this connection: a unit per
        RENDER_UNIT_BYTES of HTML and per millisecond."""
        started = time.perf_counter()
        result = await self._offload(size, function, *args)
        self.budget.charge(size / RENDER_UNIT_BYTES + (time.perf_counter() - started) * 1000)
        return result
