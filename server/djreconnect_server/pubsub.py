"""Server push: topics, broadcasts and timers that change a view without a client event.

A push is a state change, not a message to the page. ``broadcast(topic, message)``
calls ``handle_info(message)`` on every view subscribed to ``topic``, whether its page is
connected or away (a retained session); then, for a connected page only, the view is
rendered once its connection has sent what it already had: pushes that arrive
meanwhile are coalesced into that one render, so a page that reads slowly or not at all
gets the newest state, never a backlog. A page that was away gets the current render in
its resume patch. Each push is applied to each subscribed view once.

Across processes (a shared store, with ``bus`` set: Redis pub/sub), ``broadcast``
publishes an envelope ``{"id", "topic", "message"}`` (the message must be JSON); every
process's subscriber hands it to ``receive``, which applies it to the views of the
sessions attached to that process; and the publishing process applies it to the retained
sessions (in the store) subscribed to the topic, each under the store's push lease. Once,
not twice: a session is attached to one process or retained, never both, and a push
applied to a session is recorded in it by its id (``Session.note_push``, stored with it),
so a session that moves between the two while the push travels, and is reached by both
ways, applies it once. Not lost: ``receive`` first waits for the resumes in progress in its
process (``SessionRegistry.settle``), and a session being released stays this process's
until the store has it (then the publisher's lease-and-apply finds it).
"""

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, cast

from djreconnect_server.sessions import Session, SessionRegistry, new_token
from djreconnect_server.stores import SharedSessionStore, StoreUnavailable

if TYPE_CHECKING:
    from djreconnect_server.redisstore import RedisBus

log = logging.getLogger("djreconnect")

# A broadcast crossing processes: {"id": push id, "topic": topic, "message": JSON}.
Envelope = dict[str, Any]
# Renders a pushed view and sends it, coalesced: render(session, view id).
Render = Callable[[Session, str], Awaitable[None]]
# A process-wide listener of a topic: callback(message).
Listener = Callable[[Any], Coroutine[Any, Any, object]]


class ViewHandle:
    """What a mounted view knows of the live machinery: its session and view ids, and the
    hub (set by the server before ``mount``; None on a view rendered for a page only)."""

    def __init__(self, hub: "PubSub", session_id: str, view_id: str) -> None:
        self.hub = hub
        self.session_id = session_id
        self.view_id = view_id


class PubSub:
    """Topics -> subscribed (session id, view id), timers, and the delivery of pushes."""

    def __init__(self, sessions: SessionRegistry, render: Render) -> None:
        self.sessions = sessions
        self.render = render  # async (session, view id) -> renders and sends, coalesced
        self.topics: dict[str, set[tuple[str, str]]] = {}  # topic -> {(session id, view id)}
        self.timers: dict[tuple[str, str], set[asyncio.TimerHandle]] = {}  # (session id, view id) -> handles
        self.pending: set[asyncio.Task[object]] = set()  # delivery tasks, kept alive until done
        self.rendering: set[tuple[str, str]] = set()  # (session id, view id) with a render scheduled
        self.bus: RedisBus | None = None  # a RedisBus when processes share a store: broadcasts cross processes
        self.listeners: dict[
            str, list[Listener]
        ] = {}  # topic -> [async callback(message)]: process-wide, before the views

    def listen(self, topic: str, callback: Listener) -> None:
        """Call ``callback(message)`` (a coroutine function) in every process for each
        broadcast on ``topic``, before the subscribed views' ``handle_info``."""
        self.listeners.setdefault(topic, []).append(callback)

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, topic: str, session_id: str, view_id: str) -> None:
        self.topics.setdefault(topic, set()).add((session_id, view_id))

    def unsubscribe(self, topic: str, session_id: str, view_id: str) -> None:
        subscribers = self.topics.get(topic)
        if subscribers is not None:
            subscribers.discard((session_id, view_id))
            if not subscribers:
                del self.topics[topic]

    def forget_view(self, session_id: str, view_id: str, topics: Iterable[str]) -> None:
        """A view left (or its session ended): its subscriptions and timers end."""
        for topic in topics:
            self.unsubscribe(topic, session_id, view_id)
        for handle in self.timers.pop((session_id, view_id), ()):
            handle.cancel()

    def forget_session(self, session: Session) -> None:
        for view_id, state in session.views.items():
            self.forget_view(session.id, view_id, state.view_topics())

    def unsubscribe_session(self, session: Session) -> None:
        """A session went to a shared store: its pushes are the store's now (its timers
        stay: one that fires applies through the store)."""
        for view_id, state in session.views.items():
            for topic in state.view_topics():
                self.unsubscribe(topic, session.id, view_id)

    def restore(self, session: Session) -> None:
        """A session came back from a store: its views' subscriptions count again."""
        for view_id, state in session.views.items():
            for topic in state.view_topics():
                self.subscribe(topic, session.id, view_id)

    # --- pushes ---------------------------------------------------------------------

    def broadcast(self, topic: str, message: Any) -> int:
        """Deliver ``message`` to every view subscribed to ``topic``; returns how many.
        A topic nobody has is a no-op. Callable from any code running on the server's
        event loop (a handler, a route, a background task); delivery happens after the
        caller returns. With the bus (several processes), ``message`` must be JSON (a
        ValueError says so otherwise) and the count is of this process's subscribers."""
        subscribers = list(self.topics.get(topic, ()))
        if self.bus is not None:
            try:
                json.dumps(message)
            except (TypeError, ValueError) as error:
                raise ValueError("a broadcast on %r must be JSON to cross processes: %s" % (topic, error)) from None
            self._spawn(self._publish(self.bus, {"id": new_token(), "topic": topic, "message": message}))
            return len(subscribers)
        for callback in self.listeners.get(topic, ()):
            self._spawn(callback(message))
        for session_id, view_id in subscribers:
            self._spawn(self.deliver(session_id, view_id, message))
        return len(subscribers)

    async def _publish(self, bus: "RedisBus", envelope: Envelope) -> None:
        """Send a broadcast to every process, then apply it to the retained sessions."""
        try:
            await bus.publish(envelope)
        except StoreUnavailable as error:
            log.error("a broadcast on %r reached this process only: %s", envelope["topic"], error)
            await self.receive(envelope)
            return
        try:
            # A bus is set only with a shared store.
            store = cast(SharedSessionStore, self.sessions.store)
            members = await store.topic_members(envelope["topic"])
        except StoreUnavailable as error:
            log.error("a broadcast on %r did not reach the retained sessions: %s", envelope["topic"], error)
            return
        await asyncio.gather(
            *(
                self.deliver(session_id, view_id, envelope["message"], envelope["id"], envelope["topic"])
                for session_id, view_id in members
            )
        )

    async def receive(self, envelope: Envelope) -> None:
        """A broadcast from the bus (any process's, this one's too): apply it to the views
        of the sessions attached here."""
        topic, push_id = envelope.get("topic"), envelope.get("id")
        if not isinstance(topic, str) or not isinstance(push_id, str) or "message" not in envelope:
            log.warning("a bus message without topic, id and message was ignored")
            return
        message = envelope["message"]
        await self.sessions.settle()
        for callback in self.listeners.get(topic, ()):
            try:
                await callback(message)
            except Exception:
                log.exception("a listener of %r failed", topic)
        for session_id, view_id in list(self.topics.get(topic, ())):
            self._spawn(self.deliver(session_id, view_id, message, push_id, topic))

    def send_after(self, session_id: str, view_id: str, delay_ms: float, message: Any) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        key = (session_id, view_id)
        handles = self.timers.setdefault(key, set())

        def fire() -> None:
            handles.discard(handle)
            if not handles:
                self.timers.pop(key, None)
            self._spawn(self.deliver(session_id, view_id, message))

        handle = loop.call_later(max(0, delay_ms) / 1000, fire)
        handles.add(handle)
        return handle

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def deliver(
        self, session_id: str, view_id: str, message: Any, push_id: str | None = None, topic: str | None = None
    ) -> None:
        """Apply one push to one view, wherever its session is (attached here, or kept by
        the store), then schedule its render if a page is connected. A push with an id
        is applied to a view once, however many ways it arrives."""
        try:
            async with self.sessions.borrow(session_id) as session:
                if session is None:
                    if self.bus is None:
                        self._drop_subscriber(session_id, view_id)
                    return
                connected = await self._apply(session, view_id, message, push_id, topic)
        except StoreUnavailable as error:
            log.error("a push to a retained session was not applied: %s", error)
            return
        if connected:
            self._schedule_render(session, view_id)

    async def _apply(
        self, session: Session, view_id: str, message: Any, push_id: str | None, topic: str | None
    ) -> bool:
        """handle_info on one view of a borrowed session; whether a page shows it now."""
        state = session.views.get(view_id)
        if state is None:
            return False
        if topic is not None and topic not in state.view_topics():
            return False
        if push_id is not None and not session.note_push(push_id + "/" + view_id):
            return False
        try:
            result = state.view.handle_info(message)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("handle_info of %s failed", type(state.view).__name__)
        state.dirty = True
        return session.connection is not None

    def _drop_subscriber(self, session_id: str, view_id: str) -> None:
        for topic in list(self.topics):
            self.unsubscribe(topic, session_id, view_id)

    def _schedule_render(self, session: Session, view_id: str) -> None:
        key = (session.id, view_id)
        if key in self.rendering:
            return  # one render is coming; it will show this push too
        self.rendering.add(key)

        async def render() -> None:
            try:
                await self.render(session, view_id)
            finally:
                self.rendering.discard(key)

        self._spawn(render())
