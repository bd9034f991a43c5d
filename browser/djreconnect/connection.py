"""The connection lifecycle as a sans-I/O state machine.

Every method takes ``now`` (ms) and returns a list of effects; the machine never
reads a clock, draws a random number of its own, opens a socket or touches a page.

States. ``connecting`` and ``retrying`` have a transport being opened (the first one,
and a later attempt); ``waiting`` waits out a backoff delay before the next attempt.
The page is shown the public state (``public_state``): ``waiting`` and ``retrying``
both show as ``reconnecting``, with the attempt's number.

Inputs. ``start``, ``retry``, ``wake``, ``visible``/``hidden`` (``visibility``),
``offline`` (``went_offline``), ``lost``, ``disconnect``; from the transport
``opened``, ``received``, ``closed`` (a retryable code), ``refused`` (a code in
4000-4999) and ``restart`` (1012 with the restart hint: the first attempt waits a
uniform draw over the restart window instead of the backoff); and ``timer:KEY`` when
an armed timer fires. An input about an older transport (not the newest generation)
is ignored in every state.

The transition table. ``when`` is a condition the row needs (``-``: none, a visible
page, no banner delay): ``grace`` the settings have a banner delay, so a drop starts
the grace period and every status is held back until it ends (the ``banner`` timer);
``hidden`` the page is hidden; ``last`` the attempt being made is the last one;
``silent`` a heartbeat ping went out and nothing arrived since. Effects in order:
``open`` OpenTransport, ``close`` CloseTransport, ``send`` Send, ``show`` ShowStatus
(of the next state's public state), ``start:KEY`` StartTimer, ``cancel:KEY`` CancelTimer,
``cancel:*`` CancelTimer of every timer in ``TIMERS`` order; ``-`` none. A pair of
state and input not in the table (with no condition) is ignored: no effect, no change.

    state         input           when    next          effects
    idle          start           -       connecting    show open start:connect
    idle          retry           -       connecting    show open start:connect
    idle          disconnect      -       disconnected  cancel:* close show
    connecting    opened          -       connected     cancel:connect cancel:retry cancel:banner start:heartbeat show
    connecting    closed          -       waiting       cancel:connect show start:retry
    connecting    restart         -       waiting       cancel:connect show start:retry
    connecting    refused         -       failed        cancel:* close show
    connecting    timer:connect   -       waiting       close cancel:connect show start:retry
    connecting    disconnect      -       disconnected  cancel:* close show
    connected     timer:heartbeat -       connected     send start:pong
    connected     timer:pong      -       connected     start:heartbeat
    connected     timer:pong      silent  waiting       cancel:* close show start:retry
    connected     offline         -       waiting       cancel:* close show start:retry
    connected     offline         grace   waiting       cancel:* close start:banner start:retry
    connected     lost            -       waiting       cancel:* close show start:retry
    connected     lost            grace   waiting       cancel:* close start:banner start:retry
    connected     closed          -       waiting       cancel:* close show start:retry
    connected     closed          grace   waiting       cancel:* close start:banner start:retry
    connected     restart         -       waiting       cancel:* close show start:retry
    connected     restart         grace   waiting       cancel:* close start:banner start:retry
    connected     refused         -       failed        cancel:* close show
    connected     disconnect      -       disconnected  cancel:* close show
    waiting       timer:retry     -       retrying      open start:connect
    waiting       timer:retry     hidden  waiting       -
    waiting       start           -       retrying      cancel:retry open start:connect
    waiting       retry           -       retrying      cancel:retry open start:connect
    waiting       wake            -       retrying      cancel:retry open start:connect
    waiting       visible         -       retrying      cancel:retry open start:connect
    waiting       timer:banner    grace   waiting       show
    waiting       disconnect      -       disconnected  cancel:* close show
    retrying      opened          -       connected     cancel:connect cancel:retry cancel:banner start:heartbeat show
    retrying      closed          -       waiting       cancel:connect show start:retry
    retrying      closed          grace   waiting       cancel:connect start:retry
    retrying      closed          last    failed        cancel:connect cancel:* show
    retrying      restart         -       waiting       cancel:connect show start:retry
    retrying      restart         last    failed        cancel:connect cancel:* show
    retrying      refused         -       failed        cancel:* close show
    retrying      timer:connect   -       waiting       close cancel:connect show start:retry
    retrying      timer:connect   grace   waiting       close cancel:connect start:retry
    retrying      timer:connect   last    failed        close cancel:connect cancel:* show
    retrying      timer:banner    grace   retrying      show
    retrying      disconnect      -       disconnected  cancel:* close show
    failed        start           -       connecting    show open start:connect
    failed        retry           -       retrying      show open start:connect
    failed        wake            -       retrying      show open start:connect
    failed        visible         -       retrying      show open start:connect
    failed        disconnect      -       disconnected  cancel:* close show
    disconnected  start           -       connecting    show open start:connect
    disconnected  retry           -       connecting    show open start:connect

Attempts: a drop or a failed first connect waits for attempt 1; each failed attempt
waits for the next, up to the backoff's ``max_attempts``; ``retry`` from ``failed``
makes attempt 1 at once; ``start`` and ``retry`` from ``waiting`` make the awaited
attempt at once. ``received`` changes no state: in ``connected`` it answers the ping.
"""

from djreconnect import constants
from djreconnect.backoff import Backoff
from djreconnect.effects import CancelTimer, CloseTransport, OpenTransport, Send, ShowStatus, StartTimer

# The machine's states.
IDLE = "idle"
CONNECTING = "connecting"  # the first transport is being opened
CONNECTED = "connected"
WAITING = "waiting"  # waiting out a backoff delay before the next attempt
RETRYING = "retrying"  # an attempt after a drop or a failed connect is being opened
FAILED = "failed"
DISCONNECTED = "disconnected"
STATES = (IDLE, CONNECTING, CONNECTED, WAITING, RETRYING, FAILED, DISCONNECTED)
OPENING = (CONNECTING, RETRYING)  # the states with a transport being opened

# What the page is shown (window.djreconnect.state, body classes, ShowStatus):
# WAITING and RETRYING are both RECONNECTING there.
RECONNECTING = "reconnecting"
PUBLIC_STATES = (IDLE, CONNECTING, CONNECTED, RECONNECTING, FAILED, DISCONNECTED)

# Timer keys.
TIMER_RETRY = "retry"  # waiting out a backoff delay
TIMER_CONNECT = "connect"  # an attempt taking too long to open
TIMER_HEARTBEAT = "heartbeat"  # time to ping
TIMER_PONG = "pong"  # time by which some frame must have arrived
TIMER_BANNER = "banner"  # the grace period after a drop, before the page shows it
TIMERS = (TIMER_RETRY, TIMER_CONNECT, TIMER_HEARTBEAT, TIMER_PONG, TIMER_BANNER)


def public_state(state):
    """The state the page is shown for the machine's ``state``."""
    return RECONNECTING if state in (WAITING, RETRYING) else state


def is_retryable(code):
    """Whether a close with ``code`` is worth a reconnection attempt."""
    return not (constants.CLOSE_APP_MIN <= code <= constants.CLOSE_APP_MAX)


def _check_ms(name, value, minimum_exclusive=True):
    # Written so that NaN fails too; setTimeout runs an infinite delay at once.
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value < float("inf"):
        raise ValueError("%s must be a finite number, not %r" % (name, value))
    if (value <= 0) if minimum_exclusive else (value < 0):
        raise ValueError("%s must be %s 0, not %r" % (name, ">" if minimum_exclusive else ">=", value))


class Settings:
    """Timing settings of a connection (ms): the one definition the server holds (it
    writes them into the page with ``to_dict``) and the runtime reads (``from_dict``)."""

    # Settable by name, with their defaults; ``backoff`` is a Backoff of its own.
    TIMINGS = (
        ("heartbeat_interval_ms", constants.DEFAULT_HEARTBEAT_INTERVAL_MS, True),
        ("heartbeat_timeout_ms", constants.DEFAULT_HEARTBEAT_TIMEOUT_MS, True),
        ("connect_timeout_ms", constants.DEFAULT_CONNECT_TIMEOUT_MS, True),
        ("banner_delay_ms", constants.DEFAULT_BANNER_DELAY_MS, False),
        ("restart_window_ms", constants.DEFAULT_RESTART_WINDOW_MS, False),
    )

    def __init__(
        self,
        backoff=None,
        heartbeat_interval_ms=constants.DEFAULT_HEARTBEAT_INTERVAL_MS,
        heartbeat_timeout_ms=constants.DEFAULT_HEARTBEAT_TIMEOUT_MS,
        connect_timeout_ms=constants.DEFAULT_CONNECT_TIMEOUT_MS,
        banner_delay_ms=constants.DEFAULT_BANNER_DELAY_MS,
        restart_window_ms=constants.DEFAULT_RESTART_WINDOW_MS,
    ):
        self.backoff = backoff if backoff is not None else Backoff()
        values = {
            "restart_window_ms": restart_window_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "heartbeat_timeout_ms": heartbeat_timeout_ms,
            "connect_timeout_ms": connect_timeout_ms,
            "banner_delay_ms": banner_delay_ms,
        }
        for name, _, positive in self.TIMINGS:
            _check_ms(name, values[name], positive)
            setattr(self, name, values[name])

    def to_dict(self):
        data = {"backoff": self.backoff.to_dict()}
        for name, _, _ in self.TIMINGS:
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_dict(cls, data):
        """Settings from ``to_dict``'s output; missing keys take their defaults."""
        values = {}
        for name, _, _ in cls.TIMINGS:
            if name in data:
                values[name] = data[name]
        return cls(backoff=Backoff.from_dict(data.get("backoff", {})), **values)


class Connection:
    """The lifecycle of one logical connection, across any number of transports.

    ``random`` is a function returning a float in [0, 1); ``ping_frame`` builds the
    heartbeat frame from a sequence number.
    """

    def __init__(self, settings, random, ping_frame):
        self.settings = settings
        self.random = random
        self.ping_frame = ping_frame
        self.state = IDLE
        self.attempt = 0  # the reconnection attempt being waited for or made
        self.generation = 0  # of the newest transport
        self.reason = ""  # why the connection failed
        self.last_received = None
        self.ping_sent = None  # when the last heartbeat ping went out
        self.pings = 0
        self.connects = 0  # times the connection has opened
        self.quiet = False  # in the grace period after a drop: the page shows nothing yet
        self.hidden = False  # the page is hidden: attempts wait until it is visible

    @property
    def public_state(self):
        """The state the page is shown."""
        return public_state(self.state)

    # --- inputs from the page and the user -----------------------------------

    def start(self, now):
        """Connect (first time, or again after a disconnect or failure)."""
        if self.state in (CONNECTING, CONNECTED):
            return []
        if self.state in (WAITING, RETRYING):
            return self._attempt_now(now)
        self.attempt = 0
        self.reason = ""
        self.state = CONNECTING
        return self._status() + self._open(CONNECTING)

    def retry(self, now):
        """A person or the page asked to try again: start a new attempt cycle at once."""
        if self.state == FAILED:
            self.attempt = 1
            self.reason = ""
            self.state = RETRYING
            return self._status() + self._open(RETRYING)
        if self.state in (WAITING, RETRYING):
            return self._attempt_now(now)
        if self.state in (IDLE, DISCONNECTED):
            return self.start(now)
        return []

    def wake(self, now):
        """The network came back, the page became visible or was shown again."""
        if self.state in (WAITING, RETRYING, FAILED):
            return self.retry(now)
        return []

    def visibility(self, now, visible):
        """The page became hidden or visible. A hidden page makes no attempts (a
        background tab would burn them on throttled timers); visible again, it tries at once."""
        self.hidden = not visible
        if visible:
            return self.wake(now)
        return []

    def went_offline(self, now):
        """The browser says the network is gone: a connected transport is dead."""
        if self.state == CONNECTED:
            return self._drop(now, "the network went offline")
        return []

    def lost(self, now, reason):
        """The connection is open but unusable (say, a mount failed): drop it and reconnect."""
        if self.state == CONNECTED:
            return self._drop(now, reason)
        return []

    def disconnect(self, now):
        """Close on purpose: no reconnection, no reconnection UI."""
        if self.state == DISCONNECTED:
            return []
        effects = self._cancel_timers()
        effects.append(CloseTransport(constants.CLOSE_NORMAL, "disconnected"))
        self.state = DISCONNECTED
        self.quiet = False
        self.attempt = 0
        self.reason = ""
        return effects + self._status()

    # --- inputs from the transport -------------------------------------------

    def opened(self, now, generation):
        if generation != self.generation or self.state not in OPENING:
            return []
        self.state = CONNECTED
        self.attempt = 0
        self.reason = ""
        self.connects += 1
        self.last_received = now
        self.quiet = False
        return [
            CancelTimer(TIMER_CONNECT),
            CancelTimer(TIMER_RETRY),
            CancelTimer(TIMER_BANNER),
            StartTimer(TIMER_HEARTBEAT, self.settings.heartbeat_interval_ms),
        ] + self._status()

    def received(self, now, generation):
        """Any frame counts as a sign of life."""
        if generation == self.generation and self.state == CONNECTED:
            self.last_received = now
        return []

    def closed(self, now, generation, code, reason=""):
        """The transport closed or failed to open (``code`` 1006 for network errors)."""
        if generation != self.generation or self.state not in (CONNECTING, CONNECTED, RETRYING):
            return []
        if not is_retryable(code):
            return self._fail(reason or "the server refused the connection (code %d)" % code, code)
        if self.state == CONNECTED:
            restart = code == constants.CLOSE_SERVICE_RESTART and reason == constants.CLOSE_REASON_RESTART
            return self._drop(now, reason, restart)
        return self._attempt_failed(now)

    # --- timers -------------------------------------------------------------

    def timer(self, now, key):
        if key == TIMER_RETRY:
            if self.state == WAITING and not self.hidden:
                return self._open(RETRYING)
        elif key == TIMER_BANNER:
            if self.quiet:
                self.quiet = False
                return self._status()
        elif key == TIMER_CONNECT:
            if self.state in OPENING:
                effects = [CloseTransport(constants.CLOSE_ABNORMAL, "connect timeout")]
                return effects + self._attempt_failed(now)
        elif key == TIMER_HEARTBEAT:
            if self.state == CONNECTED:
                self.pings += 1
                self.ping_sent = now
                return [
                    Send(self.ping_frame(self.pings)),
                    StartTimer(TIMER_PONG, self.settings.heartbeat_timeout_ms),
                ]
        elif key == TIMER_PONG:
            if self.state == CONNECTED:
                # Any frame since the ping answers it, however late this timer fires
                # (background tabs throttle timers).
                if self.ping_sent is not None and self.last_received < self.ping_sent:
                    return self._drop(now, "no answer to the heartbeat")
                return [StartTimer(TIMER_HEARTBEAT, self.settings.heartbeat_interval_ms)]
        return []

    # --- internals -------------------------------------------------------------

    def _open(self, state):
        self.state = state
        self.generation += 1
        return [
            OpenTransport(self.generation),
            StartTimer(TIMER_CONNECT, self.settings.connect_timeout_ms),
        ]

    def _attempt_now(self, now):
        if self.state != WAITING:
            return []
        return [CancelTimer(TIMER_RETRY)] + self._open(RETRYING)

    def _drop(self, now, reason, restart=False):
        effects = self._cancel_timers()
        effects.append(CloseTransport(constants.CLOSE_ABNORMAL, reason or "connection lost"))
        self.state = WAITING
        self.attempt = 0
        delay = self.settings.banner_delay_ms
        if delay > 0:
            # A blip healed within the grace period shows nothing.
            self.quiet = True
            effects.append(StartTimer(TIMER_BANNER, delay))
        if restart:
            # A deploy: every page of the process got this at once. A uniform draw over
            # the window spreads them; a failed attempt then goes on with the backoff.
            self.attempt = 1
            delay = self.random() * self.settings.restart_window_ms
            return effects + self._status() + [StartTimer(TIMER_RETRY, delay)]
        return effects + self._schedule_next()

    def _attempt_failed(self, now):
        effects = [CancelTimer(TIMER_CONNECT)]
        if self.state == CONNECTING:
            self.attempt = 0
        self.state = WAITING
        if self.attempt >= self.settings.backoff.max_attempts:
            attempts = self.settings.backoff.max_attempts
            return effects + self._fail(
                "could not reconnect after %d attempt%s" % (attempts, "" if attempts == 1 else "s"),
                None,
            )
        return effects + self._schedule_next()

    def _schedule_next(self):
        self.attempt += 1
        delay = self.settings.backoff.delay(self.attempt, self.random())
        return self._status() + [StartTimer(TIMER_RETRY, delay)]

    def _fail(self, reason, code):
        effects = self._cancel_timers()
        if code is not None:
            effects.append(CloseTransport(code, reason))
        self.state = FAILED
        self.quiet = False
        self.reason = reason
        return effects + self._status()

    def _cancel_timers(self):
        return [CancelTimer(key) for key in TIMERS]

    def _status(self):
        if self.quiet:
            return []
        if self.state in (WAITING, RETRYING):
            return [ShowStatus(RECONNECTING, self.attempt, self.settings.backoff.max_attempts, "")]
        return [ShowStatus(self.state, 0, 0, self.reason)]
