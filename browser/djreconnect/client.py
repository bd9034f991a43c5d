"""The client core: the connection lifecycle plus the session and views it serves, sans I/O.

``Client`` turns inputs (transport opened/closed, frames, DOM events, timers)
into effects (open, send, apply a patch, show status). The browser adapter feeds
it and carries out what it returns; tests drive it with a fake clock.

Sessions. Every transport starts with a Hello naming the page's session and its
current secret (none on the first connection); the server's Welcome gives the session
and a new secret. Each view's Join then says which render the page shows (``version``)
and carries its HTML; the Rendered that answers it says whether the view's state was
kept (a *resume*) or the view was mounted afresh (a *remount*, or the page's first mount).

Exactly once, the runtime's half (the server's is in its ``sessions`` module). Every
event carries an id (its ``ref``) unique for the page's life, and stays in its view's
``in_flight`` list until a reply or error with that ref arrives, across any number of
drops. When a view is back:

- resumed: events still in flight are sent again, with their ids, before anything
  else; the server applies each id once and answers a repeat with the recorded outcome;
- remounted (the session is gone, and with it what was applied): clicks and submits
  still in flight go to the front of the offline queue and are sent as new events after
  recovery;
- either way, an input or change event of a field that recovery covers is not sent
  again: recovery compares the field with the server's last render and sends it once if
  it differs.

That holds only while the server still remembers the ids sent again: its record keeps the
last ``DEFAULT_EVENT_RECORD_SIZE`` and refuses an older one as expired. So at most
``MAX_IN_FLIGHT`` events (fewer than that record holds), and ``MAX_IN_FLIGHT_CHARS`` of
their frames, are in flight at a time, all views together; past that, new events wait in
the client's queue, in order, and go out as replies come (backpressure). Waiting events
follow the rules of events in flight on a drop (they are, in effect, in flight but not
yet sent): recovery carries a field's, and clicks and submits wait for the view to come
back. A waiting input or change of a field that recovery covers is replaced by the
field's newer event (the field's value is what it says), so typing faster than replies
come keeps one event per field waiting, not one per key.
"""

from djreconnect import constants, protocol, recovery
from djreconnect.connection import CONNECTED, CONNECTING, RETRYING, WAITING, Connection, Settings
from djreconnect.effects import ApplyPatch, FinishEvent, RecoverView, ReportError, Send

# Kinds of DOM events.
KIND_CLICK = "click"
KIND_SUBMIT = "submit"
KIND_CHANGE = "change"
KIND_INPUT = "input"
# Clicks and submits made while disconnected are kept and sent after the remount;
# input and change events are not: form recovery sends the fields' values then.
QUEUED_KINDS = (KIND_CLICK, KIND_SUBMIT)
# A field's events: a waiting one that recovery covers gives way to the field's newer one.
FIELD_KINDS = (KIND_INPUT, KIND_CHANGE)

# How a view came back (RecoverView.mode).
MOUNT_FIRST = "first"  # the page's first mount
MOUNT_RESUME = "resume"  # the session was kept: nothing was lost
MOUNT_REMOUNT = "remount"  # the session was gone: a fresh view, to be recovered


class View:
    """What the client knows of one ``[dj-view]`` element."""

    def __init__(self, view_id, name, token):
        self.id = view_id
        self.name = name
        self.token = token
        self.joined = False
        self.recovering = False  # mounted, recovery events not yet sent
        self.mode = None  # how it last came back (MOUNT_*)
        self.join_ref = None
        self.version = None  # the render the page shows
        self.in_flight = []  # PendingEvents sent and not yet answered, in sending order

    def busy_sources(self):
        """The sources of the events in flight, each once, in sending order: the fields
        whose live state is newer than any render the page has of them."""
        busy = []
        for pending in self.in_flight:
            source = pending.source
            if source is not None and source not in busy:
                busy.append(source)
        return tuple(busy)


class PendingEvent:
    """An event the user triggered (or a recovery batch: ``kind`` None): waiting to be
    sent, or sent and unanswered. ``recoverable`` marks an input or change event of a
    field form recovery covers (and a batch); ``source`` names the field that sent it (the
    adapter's number for it), or is None; ``frame`` is its JSON text, encoded once, whose
    length the client's bounds count."""

    def __init__(self, view_id, kind, handler, params, ref, recoverable=False, source=None, frame=None):
        self.view_id = view_id
        self.kind = kind
        self.handler = handler
        self.params = params
        self.ref = ref
        self.recoverable = recoverable
        self.source = source
        if frame is None:
            frame = protocol.encode(protocol.Event(ref=ref, view=view_id, handler=handler, params=params))
        self.frame = frame


class Client:
    """One page's connection, session and views.

    ``random`` returns floats in [0, 1). ``queue_limit`` and ``queue_chars`` bound the
    events waiting to be sent (clicks and submits kept while disconnected, events made
    while too many are in flight); past either, a new one is refused (and reported)
    rather than silently dropping ones the user made earlier. ``max_in_flight`` and
    ``max_in_flight_chars`` bound the events sent and not yet answered (see the module's
    docstring); an event larger than ``max_in_flight_chars`` goes when nothing else is in
    flight. The queue may hold more than its bounds only when a remount moves the
    unanswered clicks and submits back into it (at most ``max_in_flight`` more), and one
    recovery batch per view.
    """

    def __init__(
        self,
        settings=None,
        random=None,
        queue_limit=constants.DEFAULT_OFFLINE_QUEUE_LIMIT,
        queue_chars=constants.DEFAULT_OFFLINE_QUEUE_CHARS,
        max_in_flight=constants.MAX_IN_FLIGHT,
        max_in_flight_chars=constants.MAX_IN_FLIGHT_CHARS,
    ):
        if random is None:
            raise ValueError("Client needs a random source")
        if max_in_flight < 1 or queue_limit < 0:
            raise ValueError("max_in_flight must be at least 1 and queue_limit at least 0")
        self.connection = Connection(settings or Settings(), random, self._ping_frame)
        self.views = {}
        self.view_order = []
        self.queue = []  # PendingEvents waiting to be sent, in the order they were made
        self.queue_limit = queue_limit
        self.queue_chars = queue_chars
        self.max_in_flight = max_in_flight
        self.max_in_flight_chars = max_in_flight_chars
        self.next_ref = 0
        self.session = None  # the server's id of this page's session
        self.secret = None  # its current resume secret (good for one resume)

    @property
    def state(self):
        """The state the page is shown (``connection.PUBLIC_STATES``)."""
        return self.connection.public_state

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

    def visibility(self, now, visible):
        return self.connection.visibility(now, visible)

    def went_offline(self, now):
        return self._after_drop(self.connection.went_offline(now))

    def disconnect(self, now):
        effects = self.connection.disconnect(now)
        return effects + self._forget_joins() + self._abandon("disconnected on purpose")

    def timer(self, now, key):
        return self._after_drop(self.connection.timer(now, key))

    def opened(self, now, generation, roots_html):
        """The transport opened. ``roots_html`` maps each view id to its root's current HTML."""
        effects = self.connection.opened(now, generation)
        if self.connection.state != CONNECTED or not effects:
            return effects
        hello = protocol.Hello(ref=self._ref(), session=self.session, secret=self.secret)
        effects.append(Send(protocol.encode(hello)))
        for view_id in self.view_order:
            view = self.views[view_id]
            view.join_ref = self._ref()
            join = protocol.Join(
                ref=view.join_ref,
                view=view_id,
                name=view.name,
                token=view.token,
                html=roots_html.get(view_id, ""),
                version=view.version,
            )
            effects.append(Send(protocol.encode(join)))
        return effects

    def closed(self, now, generation, code, reason=""):
        return self._after_drop(self.connection.closed(now, generation, code, reason))

    def _after_drop(self, effects):
        if self.connection.state == CONNECTED:
            return effects
        effects = effects + self._forget_joins()
        if self.connection.state not in (CONNECTING, WAITING, RETRYING):
            effects = effects + self._abandon("the connection " + self.connection.state)
        return effects

    def _forget_joins(self):
        """Every view must be joined again; events in flight stay, to be sent again."""
        for view_id in self.view_order:
            view = self.views[view_id]
            view.joined = False
            view.recovering = False
            view.join_ref = None
        return []

    def _abandon(self, why):
        """No connection is coming (failed, or closed on purpose): finish every event in
        flight, and every queued one with an error saying it was not sent."""
        effects = []
        for view_id in self.view_order:
            view = self.views[view_id]
            for pending in view.in_flight:
                effects.append(FinishEvent(view_id, pending.ref))
            view.in_flight = []
        for queued in self.queue:
            effects.append(FinishEvent(queued.view_id, queued.ref))
            if queued.kind is not None:  # a recovery batch is no event the user made
                message = "%s was not sent: %s" % (queued.handler, why)
                effects.append(ReportError(queued.view_id, "not_sent", message))
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
        handler = self._HANDLERS.get(type(message))
        if handler is None:
            return effects  # Pong: received() already counted it
        return effects + handler(self, now, message, self.views.get(getattr(message, "view", None)))

    def _welcome(self, now, message, view):
        self.session = message.session
        self.secret = message.secret
        return []

    def _rendered(self, now, message, view):
        if view is None or message.ref != view.join_ref:
            return []
        view.joined = True
        view.recovering = True
        view.version = message.version
        if message.resumed:
            view.mode = MOUNT_RESUME
        else:
            view.mode = MOUNT_REMOUNT if self._reconnected() else MOUNT_FIRST
        return [ApplyPatch(view.id, message.ops, True, None), RecoverView(view.id, view.mode)]

    def _reply(self, now, message, view):
        if view is None or not view.joined:
            return []
        if message.version is not None:
            view.version = message.version
        # The event answered leaves the flight first: the field that sent it follows this
        # render (the server's answer to what the user last did there) unless it sent
        # newer events since, whose renders are still to come.
        done = self._finish(view, message.ref)
        patch = ApplyPatch(view.id, message.ops, False, message.ref, self.busy_sources(view.id))
        return [patch] + done + (self._drain() if done else [])

    def _error(self, now, message, view):
        effects = [ReportError(message.view, message.code, message.message)]
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
            done = self._finish(view, message.ref)
            if done:
                effects.extend(done)
                effects.extend(self._drain())
        return effects

    _HANDLERS = {
        protocol.Welcome: _welcome,
        protocol.Rendered: _rendered,
        protocol.Reply: _reply,
        protocol.Error: _error,
    }

    def _finish(self, view, ref):
        if ref is None:
            return []
        for position, pending in enumerate(view.in_flight):
            if pending.ref == ref:
                del view.in_flight[position]
                return [FinishEvent(view.id, ref)]
        return []

    # --- DOM events ------------------------------------------------------------

    def reserve_ref(self):
        """A ref for an event about to be pushed, so the page can mark its element first."""
        return self._ref()

    def push_event(self, now, view_id, kind, handler, params, ref=None, recoverable=False, source=None):
        """The user triggered ``handler`` on view ``view_id``. Returns effects.
        ``recoverable``: an input or change event of a field form recovery covers.
        ``source``: what names the field that sent it (any value the adapter compares
        with ``==``), or None; while it has events in flight or waiting, patches leave
        its live state alone (``ApplyPatch.keep``).

        Sent at once when the view is live and the flight has room; else it waits (see
        the class's bounds): disconnected, only clicks and submits wait."""
        view = self.views.get(view_id)
        if ref is None:
            ref = self._ref()
        if view is None:
            return [
                FinishEvent(view_id, ref),
                ReportError(view_id, "unknown_view", "no view %r on this page" % (view_id,)),
            ]
        live = self._live(view)
        if not live and kind not in QUEUED_KINDS:
            return [FinishEvent(view_id, ref)]
        try:
            pending = PendingEvent(view_id, kind, handler, params, ref, recoverable, source)
        except (TypeError, ValueError) as error:  # params JSON cannot carry
            message = "%s was not sent: %s" % (handler, error)
            return [FinishEvent(view_id, ref), ReportError(view_id, "bad_params", message)]
        if live and not self._waiting(view_id) and self._room(len(pending.frame)):
            return self._send_event(view, pending)
        superseded = self._superseded_by(pending) if live else None
        count = len(self.queue)
        chars = 0
        for queued in self.queue:
            chars += len(queued.frame)
        if superseded is not None:
            count -= 1
            chars -= len(superseded.frame)
        if count >= self.queue_limit:
            why = "%d events already wait to be sent" % self.queue_limit
        elif chars + len(pending.frame) > self.queue_chars:
            why = "the events waiting to be sent would exceed %d characters" % self.queue_chars
        else:
            why = None
        if why is not None:
            message = "%s was not kept: %s" % (handler, why)
            return [FinishEvent(view_id, ref), ReportError(view_id, "queue_full", message)]
        effects = []
        if superseded is not None:
            self.queue.remove(superseded)
            effects.append(FinishEvent(view_id, superseded.ref))
        self.queue.append(pending)
        if live:
            effects.extend(self._drain())
        return effects

    def busy_sources(self, view_id):
        """The sources of view ``view_id``'s events in flight, then of its waiting ones,
        each once: the fields whose live state is newer than any render the page has."""
        busy = list(self.views[view_id].busy_sources())
        for queued in self.queue:
            if queued.view_id == view_id and queued.source is not None and queued.source not in busy:
                busy.append(queued.source)
        return tuple(busy)

    def in_flight(self):
        """(events, characters of their frames) in flight, all views together."""
        count = 0
        chars = 0
        for view_id in self.view_order:
            for pending in self.views[view_id].in_flight:
                count += 1
                chars += len(pending.frame)
        return count, chars

    def _live(self, view):
        return self.connection.state == CONNECTED and view.joined and not view.recovering

    def _waiting(self, view_id):
        for queued in self.queue:
            if queued.view_id == view_id:
                return True
        return False

    def _room(self, size, count=None, chars=None):
        """Whether an event of ``size`` characters may go in flight now."""
        if count is None:
            count, chars = self.in_flight()
        if count >= self.max_in_flight:
            return False
        return count == 0 or chars + size <= self.max_in_flight_chars

    def _superseded_by(self, pending):
        """The waiting event ``pending`` replaces, or None: the newest waiting event of
        the same field and handler, both covered by recovery, with no click, submit or
        batch of the view waiting after it (those would see the field's value change
        under them). Only the field's newest value matters, as recovery's would."""
        if not pending.recoverable or pending.kind not in FIELD_KINDS or pending.source is None:
            return None
        for position in range(len(self.queue) - 1, -1, -1):
            queued = self.queue[position]
            if queued.view_id != pending.view_id:
                continue
            if queued.kind not in FIELD_KINDS:
                return None
            if queued.recoverable and queued.source == pending.source and queued.handler == pending.handler:
                return queued
        return None

    def _reconnected(self):
        """Whether this connection follows an earlier one of the page: a mount then is
        a reconnect's, even if the earlier connection dropped before its mount finished."""
        return self.connection.connects > 1

    def recovered(self, now, view_id, snapshot):
        """The page's recovery snapshot of a view that is back (see ``recovery``): send
        the events still in flight again (resumed) or queue their clicks and submits
        (remounted), then what brings the server's state to what the page shows, as one
        batch the server answers with one render, then the events that waited (clicks
        and submits kept while disconnected; after a resume, also what waited for room
        in the flight), in order, as the flight has room."""
        view = self.views.get(view_id)
        if view is None or not view.recovering or self.connection.state != CONNECTED:
            return []
        view.recovering = False
        resume = view.mode == MOUNT_RESUME
        effects = []
        pending, view.in_flight = view.in_flight, []
        requeued = []
        for event in pending:
            if self._carried(event, resume):
                effects.append(FinishEvent(view_id, event.ref))
            elif resume:
                effects.extend(self._send_event(view, event))
            else:
                requeued.append(event)
        kept = []
        for event in self.queue:
            if event.view_id == view_id and self._carried(event, resume):
                effects.append(FinishEvent(view_id, event.ref))
            else:
                kept.append(event)
        events = []
        for handler, params in recovery.recovery_events(snapshot, view.mode == MOUNT_REMOUNT, resume):
            events.append([handler, params])
        front = []
        if events:
            ref = self._ref()
            frame = protocol.encode(protocol.Batch(ref=ref, view=view.id, events=events))
            front.append(PendingEvent(view_id, None, None, None, ref, True, None, frame))
        self.queue = front + requeued + kept
        return effects + self._drain()

    def _carried(self, event, resume):
        """Whether a view that is back drops ``event`` (unanswered or waiting): recovery
        carries it (a field's event, an earlier batch), or after a remount nothing can
        (an input or change recovery does not cover)."""
        return event.recoverable or (not resume and event.kind not in QUEUED_KINDS)

    def _send_event(self, view, pending):
        view.in_flight.append(pending)
        return [Send(pending.frame)]

    def _drain(self):
        """Send the waiting events of live views, in order, while the flight has room.
        The first that finds no room stops the rest (order kept, large events not starved)."""
        effects = []
        kept = []
        count, chars = self.in_flight()
        blocked = False
        for queued in self.queue:
            view = self.views[queued.view_id]
            if not blocked and self._live(view):
                size = len(queued.frame)
                if self._room(size, count, chars):
                    effects.extend(self._send_event(view, queued))
                    count += 1
                    chars += size
                    continue
                blocked = True
            kept.append(queued)
        self.queue = kept
        return effects
