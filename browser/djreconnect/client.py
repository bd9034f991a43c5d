"""The client core: the connection lifecycle plus the views it serves, sans I/O.

``Client`` turns inputs (transport opened/closed, frames, DOM events, timers)
into effects (open, send, apply a patch, show status). The browser adapter feeds
it and carries out what it returns; tests drive it with a fake clock.
"""

from djreconnect import constants, protocol, recovery
from djreconnect.connection import CONNECTED, CONNECTING, RECONNECTING, Connection, Settings
from djreconnect.effects import ApplyPatch, EventDone, Recover, ReportError, Send

# Kinds of DOM events.
KIND_CLICK = "click"
KIND_SUBMIT = "submit"
KIND_CHANGE = "change"
KIND_INPUT = "input"
# Clicks and submits made while disconnected are kept and sent after the remount;
# input and change events are not: form recovery sends the fields' values then.
QUEUED_KINDS = (KIND_CLICK, KIND_SUBMIT)


class View:
    """What the client knows of one ``[dj-view]`` element."""

    def __init__(self, view_id, name, token):
        self.id = view_id
        self.name = name
        self.token = token
        self.joined = False
        self.recovering = False  # mounted, recovery events not yet sent
        self.join_ref = None
        self.in_flight = []  # refs of events sent and not yet answered


class QueuedEvent:
    def __init__(self, view_id, kind, handler, params, ref):
        self.view_id = view_id
        self.kind = kind
        self.handler = handler
        self.params = params
        self.ref = ref  # the ref reserved for it, so the page can track it


class Client:
    """One page's connection and views.

    ``random`` returns floats in [0, 1). ``queue_limit`` bounds the events kept
    while disconnected; past it, new clicks and submits are refused (and reported)
    rather than silently dropping ones the user made earlier.
    """

    def __init__(self, settings=None, random=None, queue_limit=constants.DEFAULT_OFFLINE_QUEUE_LIMIT):
        if random is None:
            raise ValueError("Client needs a random source")
        self.connection = Connection(settings or Settings(), random, self._ping_frame)
        self.views = {}
        self.view_order = []
        self.queue = []
        self.queue_limit = queue_limit
        self.next_ref = 0

    @property
    def state(self):
        return self.connection.state

    def mounted(self):
        """Whether every view is mounted and its recovery sent (the page is live)."""
        if self.connection.state != CONNECTED:
            return False
        for view_id in self.view_order:
            view = self.views[view_id]
            if not view.joined or view.recovering:
                return False
        return True

    def add_view(self, view_id, name, token=""):
        if view_id in self.views:
            raise ValueError("view %r is already known" % (view_id,))
        self.views[view_id] = View(view_id, name, token)
        self.view_order.append(view_id)

    def _ref(self):
        self.next_ref += 1
        return self.next_ref

    def _ping_frame(self, sequence):
        return protocol.encode(protocol.Ping(ref=sequence))

    # --- lifecycle inputs, passed to the connection ------------------------------

    def start(self, now):
        return self.connection.start(now)

    def retry(self, now):
        return self.connection.retry(now)

    def wake(self, now):
        return self.connection.wake(now)

    def went_offline(self, now):
        return self._after_drop(self.connection.went_offline(now))

    def disconnect(self, now):
        effects = self.connection.disconnect(now)
        return effects + self._forget_joins() + self._drop_queue("disconnected on purpose")

    def timer(self, now, key):
        return self._after_drop(self.connection.timer(now, key))

    def opened(self, now, generation, roots_html):
        """The transport opened. ``roots_html`` maps each view id to its root's current HTML."""
        effects = self.connection.opened(now, generation)
        if self.connection.state != CONNECTED or not effects:
            return effects
        for view_id in self.view_order:
            view = self.views[view_id]
            view.join_ref = self._ref()
            join = protocol.Join(
                ref=view.join_ref,
                view=view_id,
                name=view.name,
                token=view.token,
                html=roots_html.get(view_id, ""),
            )
            effects.append(Send(protocol.encode(join)))
        return effects

    def closed(self, now, generation, code, reason=""):
        return self._after_drop(self.connection.closed(now, generation, code, reason))

    def _after_drop(self, effects):
        if self.connection.state == CONNECTED:
            return effects
        effects = effects + self._forget_joins()
        if self.connection.state not in (CONNECTING, RECONNECTING):
            effects = effects + self._drop_queue("the connection " + self.connection.state)
        return effects

    def _forget_joins(self):
        """Every view must be mounted again; events in flight will get no answer."""
        effects = []
        for view_id in self.view_order:
            view = self.views[view_id]
            view.joined = False
            view.recovering = False
            view.join_ref = None
            for ref in view.in_flight:
                effects.append(EventDone(view_id, ref))
            view.in_flight = []
        return effects

    def _drop_queue(self, why):
        effects = []
        for queued in self.queue:
            effects.append(EventDone(queued.view_id, queued.ref))
            effects.append(ReportError(queued.view_id, "not_sent", "%s was not sent: %s" % (queued.handler, why)))
        self.queue = []
        return effects

    # --- frames --------------------------------------------------------------

    def frame(self, now, generation, text):
        """A frame arrived from the server on transport ``generation``."""
        if generation != self.connection.generation:
            return []
        effects = self.connection.received(now, generation)
        try:
            message = protocol.decode_server(text)
        except protocol.ProtocolError as error:
            return effects + [ReportError(None, error.code, "bad frame from server: " + error.message)]
        view = self.views.get(getattr(message, "view", None))
        if isinstance(message, protocol.Rendered):
            if view is None or message.ref != view.join_ref:
                return effects
            view.joined = True
            view.recovering = True
            effects.append(ApplyPatch(view.id, message.ops, True, None))
            effects.append(Recover(view.id, self._reconnected()))
            return effects
        if isinstance(message, protocol.Reply):
            if view is None or not view.joined:
                return effects
            effects.append(ApplyPatch(view.id, message.ops, False, message.ref))
            return effects + self._finish(view, message.ref)
        if isinstance(message, protocol.Error):
            effects.append(ReportError(message.view, message.code, message.message))
            if (
                view is not None
                and not view.joined
                and message.ref is not None
                and message.ref == view.join_ref
                and message.code == protocol.MOUNT_FAILED
            ):
                # The mount broke on the server: reconnect (with backoff) and mount again.
                # Refusals the server means for good are followed by a 4xxx close instead.
                return effects + self._after_drop(self.connection.lost(now, "the view could not be mounted"))
            if view is not None:
                effects.extend(self._finish(view, message.ref))
            return effects
        return effects  # Pong: received() already counted it

    def _finish(self, view, ref):
        if ref is None or ref not in view.in_flight:
            return []
        view.in_flight.remove(ref)
        return [EventDone(view.id, ref)]

    # --- DOM events ------------------------------------------------------------

    def reserve_ref(self):
        """A ref for an event about to be pushed, so the page can mark its element first."""
        return self._ref()

    def push_event(self, now, view_id, kind, handler, params, ref=None):
        """The user triggered ``handler`` on view ``view_id``. Returns effects."""
        view = self.views.get(view_id)
        if ref is None:
            ref = self._ref()
        if view is None:
            return [
                EventDone(view_id, ref),
                ReportError(view_id, "unknown_view", "no view %r on this page" % (view_id,)),
            ]
        if self.connection.state == CONNECTED and view.joined and not view.recovering:
            return self._send_event(view, handler, params, ref)
        if kind not in QUEUED_KINDS:
            return [EventDone(view_id, ref)]
        if len(self.queue) >= self.queue_limit:
            return [
                EventDone(view_id, ref),
                ReportError(
                    view_id,
                    "queue_full",
                    "%s was not kept: %d events already wait for the connection" % (handler, self.queue_limit),
                ),
            ]
        self.queue.append(QueuedEvent(view_id, kind, handler, params, ref))
        return []

    def _reconnected(self):
        """Whether this connection follows an earlier one of the page: a mount then is
        a reconnect's, even if the earlier connection dropped before its mount finished."""
        return self.connection.connects > 1

    def recovered(self, now, view_id, snapshot):
        """The page's recovery snapshot of a freshly mounted view (see ``recovery``):
        send what brings the server's state to what the page shows, as one batch the
        server answers with one render, then the clicks and submits kept while
        disconnected, in order."""
        view = self.views.get(view_id)
        if view is None or not view.recovering or self.connection.state != CONNECTED:
            return []
        view.recovering = False
        effects = []
        events = [[handler, params] for handler, params in recovery.recovery_events(snapshot, self._reconnected())]
        if events:
            ref = self._ref()
            view.in_flight.append(ref)
            effects.append(Send(protocol.encode(protocol.Batch(ref=ref, view=view.id, events=events))))
        return effects + self._flush_queue(view_id)

    def _send_event(self, view, handler, params, ref):
        view.in_flight.append(ref)
        event = protocol.Event(ref=ref, view=view.id, handler=handler, params=params)
        return [Send(protocol.encode(event))]

    def _flush_queue(self, view_id):
        effects = []
        kept = []
        view = self.views[view_id]
        for queued in self.queue:
            if queued.view_id == view_id:
                effects.extend(self._send_event(view, queued.handler, queued.params, queued.ref))
            else:
                kept.append(queued)
        self.queue = kept
        return effects
