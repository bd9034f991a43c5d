"""Server push: topics, broadcasts and timers that change a view without a client event.

A push is a state change, not a message to the page. ``broadcast(topic, message)``
calls ``handle_info(message)`` on every view subscribed to ``topic``, whether its page is
connected or away (a retained session); then, for a connected page only, the view is
rendered once its connection has sent what it already had: pushes that arrive
meanwhile are coalesced into that one render, so a page that reads slowly or not at all
gets the newest state, never a backlog. A page that was away gets the current render in
its resume patch. Each push is applied to each subscribed view once.
"""

import asyncio
import inspect
import logging

log = logging.getLogger("djreconnect")


class ViewHandle:
    """What a mounted view knows of the live machinery: its session and view ids, and the
    hub (set by the server before ``mount``; None on a view rendered for a page only)."""

    def __init__(self, hub, session_id, view_id):
        self.hub = hub
        self.session_id = session_id
        self.view_id = view_id


class PubSub:
    """Topics -> subscribed (session id, view id), timers, and the delivery of pushes."""

    def __init__(self, sessions, render):
        self.sessions = sessions  # the SessionRegistry
        self.render = render  # async (session, view id) -> renders and sends, coalesced
        self.topics = {}  # topic -> {(session id, view id)}
        self.timers = {}  # (session id, view id) -> {TimerHandle}
        self.pending = set()  # delivery tasks, kept alive until done
        self.rendering = set()  # (session id, view id) with a render scheduled

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, topic, session_id, view_id):
        self.topics.setdefault(topic, set()).add((session_id, view_id))

    def unsubscribe(self, topic, session_id, view_id):
        subscribers = self.topics.get(topic)
        if subscribers is not None:
            subscribers.discard((session_id, view_id))
            if not subscribers:
                del self.topics[topic]

    def forget_view(self, session_id, view_id, topics):
        """A view left (or its session ended): its subscriptions and timers end."""
        for topic in topics:
            self.unsubscribe(topic, session_id, view_id)
        for handle in self.timers.pop((session_id, view_id), ()):
            handle.cancel()

    def forget_session(self, session):
        for view_id, state in session.views.items():
            self.forget_view(session.id, view_id, state.view_topics())

    def restore(self, session):
        """A session came back from a store: its views' subscriptions count again."""
        for view_id, state in session.views.items():
            for topic in state.view_topics():
                self.subscribe(topic, session.id, view_id)

    # --- pushes ---------------------------------------------------------------------

    def broadcast(self, topic, message):
        """Deliver ``message`` to every view subscribed to ``topic``; returns how many.
        A topic nobody has is a no-op. Callable from any code running on the server's
        event loop (a handler, a route, a background task); delivery happens after the
        caller returns."""
        subscribers = list(self.topics.get(topic, ()))
        for session_id, view_id in subscribers:
            self._spawn(self.deliver(session_id, view_id, message))
        return len(subscribers)

    def send_after(self, session_id, view_id, delay_ms, message):
        loop = asyncio.get_running_loop()
        key = (session_id, view_id)
        handles = self.timers.setdefault(key, set())

        def fire():
            handles.discard(handle)
            if not handles:
                self.timers.pop(key, None)
            self._spawn(self.deliver(session_id, view_id, message))

        handle = loop.call_later(max(0, delay_ms) / 1000, fire)
        handles.add(handle)
        return handle

    def _spawn(self, coroutine):
        task = asyncio.get_running_loop().create_task(coroutine)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def deliver(self, session_id, view_id, message):
        """Apply one push to one view, wherever its session is (attached here, or kept by
        the store), then schedule its render if a page is connected."""
        async with self.sessions.borrow(session_id) as session:
            if session is None:
                self._drop_subscriber(session_id, view_id)
                return
            state = session.views.get(view_id)
            if state is None:
                return
            try:
                result = state.view.handle_info(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("handle_info of %s failed", type(state.view).__name__)
            state.dirty = True
            connected = session.connection is not None
        if connected:
            self._schedule_render(session, view_id)

    def _drop_subscriber(self, session_id, view_id):
        for topic in list(self.topics):
            self.unsubscribe(topic, session_id, view_id)

    def _schedule_render(self, session, view_id):
        key = (session.id, view_id)
        if key in self.rendering:
            return  # one render is coming; it will show this push too
        self.rendering.add(key)

        async def render():
            try:
                await self.render(session, view_id)
            finally:
                self.rendering.discard(key)

        self._spawn(render())
