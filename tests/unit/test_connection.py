"""Connection state machine: every lifecycle transition, driven by a fake clock and a seeded random."""

import random

import pytest
from djreconnect import connection as connection_module
from djreconnect import constants
from djreconnect.backoff import Backoff
from djreconnect.connection import (
    CONNECTED,
    CONNECTING,
    DISCONNECTED,
    FAILED,
    IDLE,
    PUBLIC_STATES,
    RECONNECTING,
    RETRYING,
    STATES,
    TIMER_BANNER,
    TIMER_CONNECT,
    TIMER_HEARTBEAT,
    TIMER_PONG,
    TIMER_RETRY,
    TIMERS,
    WAITING,
    Connection,
    Settings,
    is_retryable,
    public_state,
)
from djreconnect.effects import (
    ApplyPatch,
    CancelTimer,
    CloseTransport,
    Effect,
    OpenTransport,
    Send,
    ShowStatus,
    StartTimer,
)
from hypothesis import given, settings
from hypothesis import strategies as st

RETRYABLE = (1000, 1001, 1006, 1011, 1012, 1013)
REFUSALS = (4000, 4001, 4003, 4004, 4009, 4029, 4500, 4999)

# The spec's defaults, written out rather than read from the code.
MIN_MS, BASE_MS, CAP_MS, MAX_ATTEMPTS = 500, 1000, 30000, 10
HEARTBEAT_MS, PONG_MS, CONNECT_MS = 25000, 10000, 10000


def timing(**kwargs):
    """Settings without the banner's grace period, so each status shows as it happens
    (the grace period has tests of its own)."""
    kwargs.setdefault("banner_delay_ms", 0)
    return Settings(**kwargs)


def bounds(attempt, min_ms=MIN_MS, base_ms=BASE_MS, cap_ms=CAP_MS):
    return min_ms, max(min_ms, min(base_ms * 2 ** (attempt - 1), cap_ms))


class Harness:
    """A connection plus the adapter's side of it: armed timers, the open transport."""

    def __init__(self, conn_settings=None, seed=1234, random_source=None):
        self.rng = random.Random(seed)
        self.settings = conn_settings or timing()
        self.conn = Connection(self.settings, random_source or self.rng.random, self.ping_frame)
        self.timers = {}  # key -> due time
        self.generations = []  # every OpenTransport's generation, in order
        self.now = 0

    def ping_frame(self, sequence):
        return "ping-%d" % sequence

    @property
    def gen(self):
        return self.generations[-1]

    def run(self, effects):
        for effect in effects:
            assert isinstance(effect, Effect)
            if isinstance(effect, StartTimer):
                assert effect.key in TIMERS
                assert effect.delay_ms >= 0
                self.timers[effect.key] = self.now + effect.delay_ms
            elif isinstance(effect, CancelTimer):
                self.timers.pop(effect.key, None)
            elif isinstance(effect, OpenTransport):
                self.generations.append(effect.generation)
        return effects

    def at(self, now):
        assert now >= self.now
        self.now = now
        return self

    def start(self):
        return self.run(self.conn.start(self.now))

    def opened(self, gen=None):
        return self.run(self.conn.opened(self.now, self.gen if gen is None else gen))

    def closed(self, code=1006, gen=None, reason=""):
        return self.run(self.conn.closed(self.now, self.gen if gen is None else gen, code, reason))

    def received(self, gen=None):
        return self.run(self.conn.received(self.now, self.gen if gen is None else gen))

    def fire(self, key):
        """Fire an armed timer at its due time, as the browser would."""
        assert key in self.timers, "timer %r is not armed (armed: %r)" % (key, self.timers)
        self.now = max(self.now, self.timers.pop(key))
        return self.run(self.conn.timer(self.now, key))

    def retry(self):
        return self.run(self.conn.retry(self.now))

    def wake(self):
        return self.run(self.conn.wake(self.now))

    def went_offline(self):
        return self.run(self.conn.went_offline(self.now))

    def disconnect(self):
        return self.run(self.conn.disconnect(self.now))

    @property
    def state(self):
        """The state the page is shown."""
        return self.conn.public_state


def of(effects, cls):
    return [e for e in effects if isinstance(e, cls)]


def starts(effects, key):
    return [e for e in effects if isinstance(e, StartTimer) and e.key == key]


def last_status(effects):
    shown = of(effects, ShowStatus)
    assert shown, "no ShowStatus in %r" % (effects,)
    return shown[-1]


def connected(**kwargs):
    h = Harness(**kwargs)
    h.start()
    h.at(50).opened()
    assert h.state == CONNECTED
    return h


def reconnecting_waiting(**kwargs):
    h = connected(**kwargs)
    h.at(1000).closed(1006)
    assert h.conn.state == WAITING and TIMER_RETRY in h.timers
    return h


def reconnecting_opening(**kwargs):
    h = reconnecting_waiting(**kwargs)
    h.fire(TIMER_RETRY)
    assert h.conn.state == RETRYING and TIMER_CONNECT in h.timers
    return h


def failed(**kwargs):
    h = connected(**kwargs)
    h.at(1000).closed(4001)
    assert h.state == FAILED
    return h


def connecting(**kwargs):
    h = Harness(**kwargs)
    h.start()
    return h


PHASES = {
    "idle": Harness,
    "connecting": connecting,
    "connected": connected,
    "reconnecting-waiting": reconnecting_waiting,
    "reconnecting-opening": reconnecting_opening,
    "failed": failed,
}


# --- close codes -----------------------------------------------------------------


def test_close_code_classes_are_the_specified_ones():
    for code in RETRYABLE:
        assert is_retryable(code)
    for code in REFUSALS + (constants.CLOSE_APP_MIN, constants.CLOSE_APP_MAX):
        assert not is_retryable(code)
    assert (constants.CLOSE_APP_MIN, constants.CLOSE_APP_MAX) == (4000, 4999)


# --- start and open ---------------------------------------------------------------


def test_a_new_connection_is_idle_and_does_nothing_on_its_own():
    h = Harness()
    assert h.state == IDLE
    assert h.timers == {} and h.generations == []


def test_start_opens_a_transport_with_a_connect_timer():
    h = Harness()
    effects = h.start()
    assert h.state == CONNECTING
    assert of(effects, OpenTransport) == [OpenTransport(1)]
    assert starts(effects, TIMER_CONNECT) == [StartTimer(TIMER_CONNECT, CONNECT_MS)]
    assert last_status(effects).state == CONNECTING
    assert set(h.timers) == {TIMER_CONNECT}


@pytest.mark.parametrize("phase", ["connecting", "connected"])
def test_start_while_connecting_or_connected_opens_nothing_more(phase):
    h = PHASES[phase]()
    assert h.start() == []
    assert h.state == phase


def test_opened_connects_and_arms_the_heartbeat():
    h = Harness()
    h.start()
    effects = h.at(120).opened()
    assert h.state == CONNECTED
    assert starts(effects, TIMER_HEARTBEAT) == [StartTimer(TIMER_HEARTBEAT, HEARTBEAT_MS)]
    assert last_status(effects) == ShowStatus(CONNECTED, 0, 0, "")
    assert set(h.timers) == {TIMER_HEARTBEAT}  # the connect timer is gone
    # A connect timer that fired anyway (raced its cancel) changes nothing.
    assert h.conn.timer(10_120, TIMER_CONNECT) == []
    assert h.state == CONNECTED


def test_custom_timings_are_used():
    s = timing(
        backoff=Backoff(min_ms=10, base_ms=20, max_ms=100, max_attempts=2),
        heartbeat_interval_ms=1000,
        heartbeat_timeout_ms=300,
        connect_timeout_ms=700,
    )
    h = Harness(conn_settings=s)
    assert starts(h.start(), TIMER_CONNECT) == [StartTimer(TIMER_CONNECT, 700)]
    assert starts(h.opened(), TIMER_HEARTBEAT) == [StartTimer(TIMER_HEARTBEAT, 1000)]
    assert starts(h.fire(TIMER_HEARTBEAT), TIMER_PONG) == [StartTimer(TIMER_PONG, 300)]
    effects = h.fire(TIMER_PONG)  # nothing arrived: dropped
    assert h.state == RECONNECTING
    assert last_status(effects) == ShowStatus(RECONNECTING, 1, 2, "")
    (retry,) = starts(effects, TIMER_RETRY)
    assert 10 <= retry.delay_ms <= 20


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heartbeat_interval_ms": 0},
        {"heartbeat_timeout_ms": -1},
        {"connect_timeout_ms": "10"},
        {"connect_timeout_ms": True},
        {"banner_delay_ms": -1},
        {"banner_delay_ms": float("nan")},
    ],
)
def test_invalid_timings_are_refused(kwargs):
    with pytest.raises(ValueError):
        Settings(**kwargs)


# --- drops and reconnection ------------------------------------------------------


@pytest.mark.parametrize("code", RETRYABLE)
def test_a_retryable_close_while_connected_starts_attempt_one(code):
    h = connected()
    effects = h.at(5000).closed(code)
    assert h.state == RECONNECTING
    assert last_status(effects) == ShowStatus(RECONNECTING, 1, MAX_ATTEMPTS, "")
    (retry,) = starts(effects, TIMER_RETRY)
    low, high = bounds(1)
    assert low <= retry.delay_ms <= high
    assert of(effects, OpenTransport) == []  # waits the delay first
    assert set(h.timers) == {TIMER_RETRY}  # the heartbeat is gone


@pytest.mark.parametrize("code", RETRYABLE)
def test_a_failed_first_connect_starts_attempt_one(code):
    h = connecting()
    effects = h.at(30).closed(code)
    assert h.state == RECONNECTING
    assert last_status(effects) == ShowStatus(RECONNECTING, 1, MAX_ATTEMPTS, "")
    assert set(h.timers) == {TIMER_RETRY}


def test_the_retry_timer_opens_a_new_transport():
    h = reconnecting_waiting()
    effects = h.fire(TIMER_RETRY)
    assert of(effects, OpenTransport) == [OpenTransport(2)]
    assert starts(effects, TIMER_CONNECT) == [StartTimer(TIMER_CONNECT, CONNECT_MS)]
    assert h.state == RECONNECTING
    effects = h.opened()
    assert h.state == CONNECTED
    assert last_status(effects) == ShowStatus(CONNECTED, 0, 0, "")
    assert set(h.timers) == {TIMER_HEARTBEAT}


def test_attempts_count_up_to_the_maximum_then_fail():
    h = connected()
    effects = h.at(1000).closed(1006)
    opens = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert h.state == RECONNECTING
        assert last_status(effects) == ShowStatus(RECONNECTING, attempt, MAX_ATTEMPTS, "")
        (retry,) = starts(effects, TIMER_RETRY)
        low, high = bounds(attempt)
        assert low <= retry.delay_ms <= high, (attempt, retry.delay_ms)
        opened = h.fire(TIMER_RETRY)
        assert of(opened, OpenTransport) == [OpenTransport(h.gen)]
        opens += 1
        # Alternate the two ways an attempt fails: refused, and too slow to open.
        if attempt % 2:
            effects = h.at(h.now + 5).closed(1006)
        else:
            effects = h.fire(TIMER_CONNECT)
    assert opens == MAX_ATTEMPTS
    assert h.state == FAILED
    status = last_status(effects)
    assert status.state == FAILED and status.reason
    assert "10" in status.reason
    assert of(effects, StartTimer) == []
    assert h.timers == {}
    assert h.conn.reason == status.reason


def test_retry_delays_use_the_injected_random_source():
    draws = iter([0.0, 0.5, 0.999999])
    h = connected(random_source=lambda: next(draws))
    delays = [starts(h.at(1000).closed(1006), TIMER_RETRY)[0].delay_ms]
    h.fire(TIMER_RETRY)
    delays.append(starts(h.closed(1006), TIMER_RETRY)[0].delay_ms)
    h.fire(TIMER_RETRY)
    delays.append(starts(h.closed(1006), TIMER_RETRY)[0].delay_ms)
    assert delays[0] == 500  # attempt 1, draw 0: the floor
    assert delays[1] == pytest.approx(500 + 0.5 * (2000 - 500))  # attempt 2: [500, 2000]
    assert delays[2] == pytest.approx(4000, abs=0.01)  # attempt 3: top of [500, 4000]


def test_seeded_retry_delays_are_reproducible_and_spread():
    def delays(seed):
        h = connected(seed=seed)
        found = [starts(h.at(1000).closed(1006), TIMER_RETRY)[0].delay_ms]
        for _ in range(3):
            h.fire(TIMER_RETRY)
            found.append(starts(h.closed(1006), TIMER_RETRY)[0].delay_ms)
        return found

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)
    assert len({delays(seed)[0] for seed in range(20)}) == 20  # jittered, not fixed


def test_a_successful_reconnect_resets_the_attempt_count():
    h = reconnecting_opening()
    h.closed(1006)  # attempt 1 failed
    h.fire(TIMER_RETRY)  # attempt 2
    h.opened()
    assert h.state == CONNECTED
    effects = h.at(h.now + 100).closed(1001)
    assert last_status(effects).attempt == 1


def test_each_input_about_a_failed_attempt_counts_once():
    h = reconnecting_opening()
    h.closed(1006)  # attempt 1 failed: waiting before attempt 2
    # The same transport's failure reported again, and its connect timer racing the cancel.
    assert h.closed(1006) == []
    assert h.conn.timer(h.now, TIMER_CONNECT) == []
    assert h.conn.attempt == 2 and set(h.timers) == {TIMER_RETRY}


# --- the application refuses -------------------------------------------------------


@pytest.mark.parametrize("phase", ["connecting", "connected", "reconnecting-opening"])
@pytest.mark.parametrize("code", REFUSALS)
def test_application_close_codes_fail_at_once(phase, code):
    h = PHASES[phase]()
    effects = h.at(h.now + 10).closed(code)
    assert h.state == FAILED
    status = last_status(effects)
    assert status.state == FAILED and status.reason
    assert of(effects, StartTimer) == [] and of(effects, OpenTransport) == []
    assert h.timers == {}
    # Nothing that happens later brings it back on its own.
    for key in TIMERS:
        assert h.conn.timer(h.now + 60_000, key) == []
    assert h.closed(1006) == []
    assert h.went_offline() == []
    assert h.state == FAILED


def test_the_refusal_reason_is_shown():
    h = connected()
    effects = h.closed(4001, reason="bad token")
    assert last_status(effects) == ShowStatus(FAILED, 0, 0, "bad token")
    h = connected()
    assert str(4003) in last_status(h.closed(4003)).reason  # no reason given: the code says it


# --- retry and wake --------------------------------------------------------------


@pytest.mark.parametrize("how", ["refused", "exhausted"])
def test_retry_from_failed_restarts_at_attempt_one_at_once(how):
    if how == "refused":
        h = failed()
    else:
        h = connected(conn_settings=timing(backoff=Backoff(max_attempts=2)))
        h.closed(1006)
        for _ in range(2):
            h.fire(TIMER_RETRY)
            h.closed(1006)
    assert h.state == FAILED
    opened_before = len(h.generations)
    effects = h.at(h.now + 100_000).retry()
    assert h.state == RECONNECTING
    assert last_status(effects).state == RECONNECTING and last_status(effects).attempt == 1
    assert last_status(effects).reason == ""
    assert of(effects, OpenTransport) == [OpenTransport(h.gen)]  # no delay first
    assert len(h.generations) == opened_before + 1
    assert starts(effects, TIMER_RETRY) == []
    # That attempt fails too: the cycle goes on to attempt 2.
    effects = h.closed(1006)
    assert last_status(effects).attempt == 2 and h.state == RECONNECTING
    h.fire(TIMER_RETRY)
    h.opened()
    assert h.state == CONNECTED and h.conn.reason == ""


def test_retry_while_waiting_opens_at_once_keeping_the_attempt():
    h = reconnecting_waiting()
    effects = h.retry()
    assert of(effects, OpenTransport) == [OpenTransport(h.gen)]
    assert TIMER_RETRY not in h.timers
    assert h.conn.attempt == 1


@pytest.mark.parametrize("phase", ["connecting", "connected", "reconnecting-opening"])
def test_retry_while_connected_or_opening_does_nothing(phase):
    h = PHASES[phase]()
    assert h.retry() == []
    assert h.state == phase.split("-")[0]


def test_wake_while_waiting_opens_now_without_the_delay():
    h = reconnecting_waiting()
    due = h.timers[TIMER_RETRY]
    effects = h.at(h.now + 1).wake()
    assert h.now < due
    assert of(effects, OpenTransport) == [OpenTransport(2)]
    assert TIMER_RETRY not in h.timers and TIMER_CONNECT in h.timers
    # The retry timer, had it fired in the race, must not open a second transport.
    assert h.conn.timer(due, TIMER_RETRY) == []
    h.opened()
    assert h.state == CONNECTED


@pytest.mark.parametrize("phase", ["idle", "connecting", "connected", "reconnecting-opening"])
def test_wake_does_nothing_unless_waiting(phase):
    h = PHASES[phase]()
    before = (h.state, list(h.generations), dict(h.timers))
    assert h.wake() == []
    assert (h.state, h.generations, h.timers) == before


def test_wake_after_failure_tries_again():
    h = failed()
    assert of(h.wake(), OpenTransport)
    assert h.state == RECONNECTING


def test_going_offline_drops_a_connected_transport():
    h = connected()
    effects = h.at(700).went_offline()
    assert h.state == RECONNECTING
    assert of(effects, CloseTransport)  # the dead transport is let go
    assert last_status(effects) == ShowStatus(RECONNECTING, 1, MAX_ATTEMPTS, "")
    low, high = bounds(1)
    assert low <= starts(effects, TIMER_RETRY)[0].delay_ms <= high


@pytest.mark.parametrize("phase", ["idle", "connecting", "reconnecting-waiting", "failed"])
def test_going_offline_otherwise_changes_nothing(phase):
    h = PHASES[phase]()
    state = h.state
    assert h.went_offline() == []
    assert h.state == state


# --- disconnect ----------------------------------------------------------------


@pytest.mark.parametrize("phase", list(PHASES))
def test_disconnect_from_any_state_is_final(phase):
    h = PHASES[phase]()
    effects = h.at(h.now + 10).disconnect()
    assert h.state == DISCONNECTED
    assert [close.code for close in of(effects, CloseTransport)] == [1000]
    assert {e.key for e in of(effects, CancelTimer)} == set(TIMERS)
    assert of(effects, StartTimer) == [] and of(effects, OpenTransport) == []
    assert last_status(effects).state == DISCONNECTED
    assert h.timers == {}
    opened = len(h.generations)

    # Whatever arrives afterwards, nothing reconnects.
    gens = set(h.generations) | {0, 1, 2, 3}
    for gen in sorted(gens):
        for code in RETRYABLE + (4001,):
            assert h.run(h.conn.closed(h.now, gen, code)) == []
        assert h.run(h.conn.opened(h.now, gen)) == []
        assert h.run(h.conn.received(h.now, gen)) == []
    for key in TIMERS:
        assert h.run(h.conn.timer(h.now + 100_000, key)) == []
    assert h.went_offline() == [] and h.wake() == []
    assert h.disconnect() == []  # twice: nothing more to do
    assert h.state == DISCONNECTED
    assert len(h.generations) == opened and h.timers == {}


def test_start_after_disconnect_connects_afresh():
    h = connected()
    h.disconnect()
    effects = h.start()
    assert h.state == CONNECTING
    assert of(effects, OpenTransport) == [OpenTransport(h.gen)]
    h.opened()
    assert h.state == CONNECTED


# --- stale generations --------------------------------------------------------------


def test_inputs_about_an_old_transport_are_ignored():
    h = reconnecting_opening()
    old, new = h.generations[-2], h.gen
    assert old < new
    assert h.closed(1006, gen=old) == []
    assert h.closed(4001, gen=old) == []  # an old refusal does not fail the new attempt
    assert h.opened(gen=old) == []
    assert h.received(gen=old) == []
    assert h.state == RECONNECTING and h.conn.attempt == 1
    h.opened(gen=new)
    assert h.state == CONNECTED
    assert h.closed(1006, gen=old) == [] and h.closed(4001, gen=old) == []
    assert h.opened(gen=new + 1) == []  # nor one not opened yet
    assert h.state == CONNECTED


def test_the_dropped_transports_own_close_is_ignored():
    h = connected()
    h.went_offline()  # we close it; its close event follows
    assert h.closed(1006) == [] and h.closed(4001) == []
    assert h.state == RECONNECTING and h.conn.attempt == 1


def test_an_opened_after_the_connect_timeout_is_ignored():
    h = connecting()
    effects = h.fire(TIMER_CONNECT)
    assert of(effects, CloseTransport)  # the slow transport is abandoned
    assert h.opened() == []
    assert h.state == RECONNECTING


# --- heartbeat ------------------------------------------------------------------


def test_heartbeat_pings_and_arms_the_pong_timer():
    h = connected()
    effects = h.fire(TIMER_HEARTBEAT)
    assert h.now == 50 + HEARTBEAT_MS
    assert of(effects, Send) == [Send("ping-1")]
    assert starts(effects, TIMER_PONG) == [StartTimer(TIMER_PONG, PONG_MS)]
    assert h.state == CONNECTED


def test_an_answer_before_the_pong_timer_keeps_the_connection():
    h = connected()
    for sequence in (1, 2, 3):
        ping = h.fire(TIMER_HEARTBEAT)
        assert of(ping, Send) == [Send("ping-%d" % sequence)]
        h.at(h.now + 40).received()
        effects = h.fire(TIMER_PONG)
        assert h.state == CONNECTED
        assert starts(effects, TIMER_HEARTBEAT) == [StartTimer(TIMER_HEARTBEAT, HEARTBEAT_MS)]
        assert of(effects, CloseTransport) == [] and of(effects, ShowStatus) == []


def test_an_answer_just_before_the_deadline_counts():
    h = connected()
    h.fire(TIMER_HEARTBEAT)
    h.at(h.timers[TIMER_PONG] - 1).received()
    h.fire(TIMER_PONG)
    assert h.state == CONNECTED


def test_an_answer_in_the_same_millisecond_as_the_ping_counts():
    h = connected()
    h.fire(TIMER_HEARTBEAT)
    h.received()  # same `now` as the ping
    h.fire(TIMER_PONG)
    assert h.state == CONNECTED


def test_an_answer_counts_even_when_the_pong_timer_fires_late():
    # Background tabs throttle timers: the pong timer may fire long after its delay.
    h = connected()
    h.fire(TIMER_HEARTBEAT)
    h.at(h.now + 100).received()
    due = h.timers.pop(TIMER_PONG)
    h.at(due + 50_000)
    h.run(h.conn.timer(h.now, TIMER_PONG))
    assert h.state == CONNECTED


def test_silence_after_a_ping_is_a_drop():
    h = connected()
    h.at(h.now + 1000).received()  # traffic before the ping does not answer it
    h.fire(TIMER_HEARTBEAT)
    effects = h.fire(TIMER_PONG)
    assert h.state == RECONNECTING
    assert of(effects, CloseTransport)
    assert last_status(effects) == ShowStatus(RECONNECTING, 1, MAX_ATTEMPTS, "")
    assert set(h.timers) == {TIMER_RETRY}
    low, high = bounds(1)
    assert low <= starts(effects, TIMER_RETRY)[0].delay_ms <= high


def test_frames_on_an_old_transport_do_not_answer_a_ping():
    h = reconnecting_opening()
    old = h.generations[-2]
    h.opened()
    h.fire(TIMER_HEARTBEAT)
    h.at(h.now + 10).received(gen=old)
    h.fire(TIMER_PONG)
    assert h.state == RECONNECTING


def test_heartbeat_timers_outside_connected_do_nothing():
    for phase in ("idle", "connecting", "reconnecting-waiting", "reconnecting-opening", "failed"):
        h = PHASES[phase]()
        for key in (TIMER_HEARTBEAT, TIMER_PONG):
            assert h.conn.timer(h.now + 1, key) == [], (phase, key)


# --- connect timeout ------------------------------------------------------------


def test_a_first_connect_that_times_out_is_a_failed_attempt():
    h = connecting()
    effects = h.fire(TIMER_CONNECT)
    assert h.now == CONNECT_MS
    assert h.state == RECONNECTING
    assert last_status(effects) == ShowStatus(RECONNECTING, 1, MAX_ATTEMPTS, "")
    assert set(h.timers) == {TIMER_RETRY}


def test_a_reconnect_attempt_that_times_out_moves_to_the_next():
    h = reconnecting_opening()
    effects = h.fire(TIMER_CONNECT)
    assert of(effects, CloseTransport)
    assert last_status(effects) == ShowStatus(RECONNECTING, 2, MAX_ATTEMPTS, "")
    low, high = bounds(2)
    assert low <= starts(effects, TIMER_RETRY)[0].delay_ms <= high


def test_the_last_attempt_timing_out_fails():
    h = connected(conn_settings=timing(backoff=Backoff(max_attempts=1)))
    h.closed(1006)
    h.fire(TIMER_RETRY)
    effects = h.fire(TIMER_CONNECT)
    assert h.state == FAILED
    assert last_status(effects).reason and "1 attempt" in last_status(effects).reason
    assert h.timers == {}


# --- effects ----------------------------------------------------------------


def test_effects_compare_by_type_and_fields():
    assert StartTimer("retry", 5) == StartTimer("retry", 5)
    assert StartTimer("retry", 5) != StartTimer("retry", 6)
    assert CancelTimer("retry") != StartTimer("retry", 0) and CancelTimer("x") != "x"
    assert ShowStatus("failed", 0, 0, "why") != ShowStatus("failed", 0, 0, "")
    assert ApplyPatch("v", [], True, None) != ApplyPatch("v", [], False, None)
    assert repr(OpenTransport(3)) == "OpenTransport(3)"
    with pytest.raises(TypeError):
        StartTimer("retry")
    with pytest.raises(TypeError):
        Send("a", "b")


# --- any sequence of inputs ----------------------------------------------------------

ACTIONS = st.one_of(
    st.sampled_from(["start", "retry", "wake", "offline", "disconnect", "opened", "received", "fire"]),
    st.tuples(st.just("closed"), st.sampled_from(RETRYABLE + (4001, 4999))),
    st.tuples(st.just("stale"), st.sampled_from(["opened", "closed", "received"])),
    st.tuples(st.just("wait"), st.integers(min_value=0, max_value=40_000)),
)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 4), st.lists(ACTIONS, max_size=60))
def test_any_sequence_of_inputs_keeps_the_invariants(seed, max_attempts, actions):
    h = Harness(conn_settings=timing(backoff=Backoff(max_attempts=max_attempts)), seed=seed)
    for action in actions:
        before = h.state
        opened_before = len(h.generations)
        if action == "start":
            effects = h.start()
        elif action == "retry":
            effects = h.retry()
        elif action == "wake":
            effects = h.wake()
        elif action == "offline":
            effects = h.went_offline()
        elif action == "disconnect":
            effects = h.disconnect()
        elif action in ("opened", "received"):
            if not h.generations:
                continue
            effects = h.opened() if action == "opened" else h.received()
        elif action == "fire":
            if not h.timers:
                continue
            effects = h.fire(min(h.timers, key=h.timers.get))  # the next one due
        elif action[0] == "closed":
            if not h.generations:
                continue
            effects = h.closed(action[1])
        elif action[0] == "stale":
            if len(h.generations) < 2:
                continue
            old = h.generations[-2]
            call = {"opened": h.conn.opened, "received": h.conn.received}.get(action[1])
            effects = call(h.now, old) if call else h.conn.closed(h.now, old, 1006)
            assert effects == []
            continue
        else:
            h.at(h.now + action[1])
            continue

        assert h.conn.state in STATES and h.state in PUBLIC_STATES
        # Transports are numbered 1, 2, 3...; only start/retry/wake/a retry timer open one.
        assert h.generations == list(range(1, len(h.generations) + 1))
        if len(h.generations) > opened_before:
            assert len(h.generations) == opened_before + 1
            assert action in ("start", "retry", "wake", "fire")
        # A state change is always shown.
        if h.state != before:
            assert last_status(effects).state == h.state
        # Every retry delay sits in its attempt's interval, and the attempt is shown.
        for timer in starts(effects, TIMER_RETRY):
            status = last_status(effects)
            assert status.state == RECONNECTING and 1 <= status.attempt <= max_attempts
            low, high = bounds(status.attempt)
            assert low <= timer.delay_ms <= high
        # Which timers are armed follows from the state.
        armed = set(h.timers)
        if h.state in (IDLE, FAILED, DISCONNECTED):
            assert armed == set(), (h.state, armed)
        elif h.state == CONNECTING:
            assert armed == {TIMER_CONNECT}
        elif h.state == CONNECTED:
            assert armed in ({TIMER_HEARTBEAT}, {TIMER_PONG})
        elif h.conn.state == WAITING:
            assert armed == {TIMER_RETRY}
        else:
            assert h.conn.state == RETRYING and armed == {TIMER_CONNECT}
        if h.state == FAILED:
            assert h.conn.reason


# --- the banner's grace period, hidden pages, one settings definition ---------------------


def of_type(effects, cls):
    return [effect for effect in effects if isinstance(effect, cls)]


def test_a_blip_healed_within_the_grace_period_shows_nothing():
    h = connected(conn_settings=Settings(backoff=Backoff(min_ms=10, base_ms=20, max_ms=100), banner_delay_ms=500))
    effects = h.closed(1006)
    assert h.state == RECONNECTING
    assert of_type(effects, ShowStatus) == []  # the page still shows connected
    assert h.timers[TIMER_BANNER] == h.now + 500
    h.fire(TIMER_RETRY)
    effects = h.opened()
    assert of_type(effects, ShowStatus) == [ShowStatus(CONNECTED, 0, 0, "")]
    assert CancelTimer(TIMER_BANNER) in effects
    assert TIMER_BANNER not in h.timers


def test_a_drop_that_outlasts_the_grace_period_shows_the_attempt_then():
    h = connected(conn_settings=Settings(backoff=Backoff(min_ms=10, base_ms=20, max_ms=100), banner_delay_ms=500))
    h.closed(1006)
    h.fire(TIMER_RETRY)
    effects = h.closed(1006, gen=h.gen)  # attempt 1 failed inside the grace period
    assert of_type(effects, ShowStatus) == []
    effects = h.fire(TIMER_BANNER)
    assert of_type(effects, ShowStatus) == [ShowStatus(RECONNECTING, 2, 10, "")]
    # From here on every attempt shows.
    h.fire(TIMER_RETRY)
    assert of_type(h.closed(1006, gen=h.gen), ShowStatus) == [ShowStatus(RECONNECTING, 3, 10, "")]


def test_a_refusal_shows_at_once_even_in_the_grace_period():
    h = connected(conn_settings=Settings(banner_delay_ms=500))
    h.closed(1006)
    h.fire(TIMER_RETRY)
    effects = h.closed(4004, gen=h.gen)
    assert h.state == FAILED
    assert of_type(effects, ShowStatus)[-1].state == FAILED
    assert TIMER_BANNER not in h.timers


def test_a_hidden_page_makes_no_attempt_until_it_is_visible_then_tries_at_once():
    h = connected()
    h.run(h.conn.visibility(h.now, False))
    h.closed(1006)
    opened_before = len(h.generations)
    assert h.fire(TIMER_RETRY) == []  # the delay ran out while hidden: no attempt
    assert len(h.generations) == opened_before
    effects = h.run(h.conn.visibility(h.now, True))
    assert len(of_type(effects, OpenTransport)) == 1
    # Visible while connected: nothing to do.
    h.opened()
    assert h.run(h.conn.visibility(h.now, True)) == []


def test_settings_round_trip_through_the_page_config():
    s = Settings(
        backoff=Backoff(min_ms=10, base_ms=20, max_ms=100, max_attempts=2),
        heartbeat_interval_ms=1000,
        heartbeat_timeout_ms=300,
        connect_timeout_ms=700,
        banner_delay_ms=0,
    )
    data = s.to_dict()
    assert set(data) == {"backoff"} | {name for name, _, _ in Settings.TIMINGS}
    again = Settings.from_dict(data)
    assert again.to_dict() == data
    assert Settings.from_dict({}).to_dict() == Settings().to_dict()


# --- a restart on purpose (a deploy) ---------------------------------------------


RESTART_WINDOW_MS = 2000  # the spec's default, written out


def test_the_restart_hint_reconnects_uniformly_within_the_window_not_on_the_backoff():
    delays = []
    for seed in range(400):
        h = connected(seed=seed, conn_settings=timing(backoff=Backoff(min_ms=5000, base_ms=8000, max_ms=30000)))
        effects = h.at(1000).closed(constants.CLOSE_SERVICE_RESTART, reason=constants.CLOSE_REASON_RESTART)
        assert h.state == RECONNECTING
        (retry,) = starts(effects, TIMER_RETRY)
        delays.append(retry.delay_ms)
    # Within the window (the backoff here would wait at least 5000 ms), spread over all of it.
    assert all(0 <= delay < RESTART_WINDOW_MS for delay in delays)
    tenths = [0] * 10
    for delay in delays:
        tenths[int(delay * 10 / RESTART_WINDOW_MS)] += 1
    assert min(tenths) > 15  # 40 expected in each tenth: no spike, no empty stretch


def test_the_restart_window_is_a_setting():
    h = connected(conn_settings=timing(restart_window_ms=300), random_source=lambda: 0.999)
    (retry,) = starts(h.at(1000).closed(1012, reason=constants.CLOSE_REASON_RESTART), TIMER_RETRY)
    assert 299 < retry.delay_ms < 300
    with pytest.raises(ValueError):
        Settings(restart_window_ms=-1)
    assert Settings.from_dict({"restart_window_ms": 750}).restart_window_ms == 750
    assert Settings().restart_window_ms == RESTART_WINDOW_MS


@pytest.mark.parametrize(
    "code, reason",
    [(1012, ""), (1012, "server shutting down"), (1006, constants.CLOSE_REASON_RESTART), (1001, "restart ")],
)
def test_a_close_without_the_hint_keeps_the_backoff(code, reason):
    backoff = Backoff(min_ms=5000, base_ms=8000, max_ms=30000)
    h = connected(conn_settings=timing(backoff=backoff), random_source=lambda: 0.0)
    (retry,) = starts(h.at(1000).closed(code, reason=reason), TIMER_RETRY)
    assert retry.delay_ms == 5000  # the backoff's floor, not the restart window


def test_after_a_restart_attempt_fails_the_backoff_goes_on_from_attempt_two():
    h = connected(random_source=lambda: 0.5)
    h.at(1000).closed(1012, reason=constants.CLOSE_REASON_RESTART)
    assert h.timers[TIMER_RETRY] == 2000  # 1000 + 0.5 * 2000
    h.fire(TIMER_RETRY)
    effects = h.closed(1006)  # the process is not back yet
    assert last_status(effects) == ShowStatus(RECONNECTING, 2, MAX_ATTEMPTS, "")
    (retry,) = starts(effects, TIMER_RETRY)
    low, high = bounds(2)
    assert retry.delay_ms == low + 0.5 * (high - low)
    h.fire(TIMER_RETRY)
    h.opened()
    assert h.state == CONNECTED


def test_the_restart_hint_while_the_banner_waits_shows_nothing_at_first():
    h = connected(conn_settings=Settings(banner_delay_ms=500), random_source=lambda: 0.1)
    effects = h.at(1000).closed(1012, reason=constants.CLOSE_REASON_RESTART)
    assert of(effects, ShowStatus) == []  # a deploy healed within the grace period shows nothing
    h.fire(TIMER_RETRY)  # at 1200, before the banner's 1500
    h.opened()
    assert h.state == CONNECTED and TIMER_BANNER not in h.timers


# --- the transition table in the module's docstring --------------------------------


def read_table():
    """The rows of the docstring's table: (state, input, when, next, effects)."""
    lines = connection_module.__doc__.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == ["state", "input", "when", "next", "effects"])
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        state, what, when, after, *effects = line.split()
        rows.append((state, what, when, after, tuple(effects) if effects != ["-"] else ()))
    return rows


TABLE = read_table()
INPUTS = (
    "start",
    "retry",
    "wake",
    "visible",
    "hidden",
    "offline",
    "lost",
    "disconnect",
    "opened",
    "received",
    "closed",
    "refused",
    "restart",
) + tuple("timer:" + key for key in TIMERS)
CONDITIONS = ("-", "grace", "hidden", "last", "silent")


def in_state(state, when):
    """A harness brought to ``state`` by real inputs, with the row's condition ``when``."""
    conn_settings = timing(
        banner_delay_ms=500 if when == "grace" else 0,
        backoff=Backoff(max_attempts=1 if when == "last" else MAX_ATTEMPTS),
    )
    h = Harness(conn_settings=conn_settings)
    if state == "disconnected":
        h.start()
        h.disconnect()
    elif state != "idle":
        h.start()
    if state in ("connected", "waiting", "retrying", "failed"):
        h.at(50).opened()
    if state in ("waiting", "retrying"):
        h.at(1000).closed(1006)
    if state == "retrying":
        h.fire(TIMER_RETRY)
    if state == "failed":
        h.at(1000).closed(4001)
    if when == "hidden":
        h.run(h.conn.visibility(h.now, False))
    if when == "silent":
        h.fire(TIMER_HEARTBEAT)
    assert h.conn.state == state
    if when == "grace" and state in ("waiting", "retrying"):
        assert h.conn.quiet  # the drop's grace period is running
    if when == "last":
        assert h.conn.attempt == conn_settings.backoff.max_attempts
    return h


def apply(h, what):
    now, gen = h.now + 1, h.conn.generation
    h.at(now)
    conn = h.conn
    calls = {
        "start": lambda: conn.start(now),
        "retry": lambda: conn.retry(now),
        "wake": lambda: conn.wake(now),
        "visible": lambda: conn.visibility(now, True),
        "hidden": lambda: conn.visibility(now, False),
        "offline": lambda: conn.went_offline(now),
        "lost": lambda: conn.lost(now, "mount failed"),
        "disconnect": lambda: conn.disconnect(now),
        "opened": lambda: conn.opened(now, gen),
        "received": lambda: conn.received(now, gen),
        "closed": lambda: conn.closed(now, gen, 1006),
        "refused": lambda: conn.closed(now, gen, 4001),
        "restart": lambda: conn.closed(now, gen, constants.CLOSE_SERVICE_RESTART, constants.CLOSE_REASON_RESTART),
    }
    if what.startswith("timer:"):
        return h.run(conn.timer(now, what[len("timer:") :]))
    return h.run(calls[what]())


def tokens(effects):
    names = {OpenTransport: "open", CloseTransport: "close", Send: "send", ShowStatus: "show"}
    found = []
    for effect in effects:
        if isinstance(effect, (StartTimer, CancelTimer)):
            found.append("%s:%s" % ("start" if isinstance(effect, StartTimer) else "cancel", effect.key))
        else:
            found.append(names[type(effect)])
    return found


def expand(effects):
    """The table's effects with ``cancel:*`` written out."""
    out = []
    for token in effects:
        out.extend("cancel:" + key for key in TIMERS) if token == "cancel:*" else out.append(token)
    return out


def test_the_table_names_known_states_inputs_conditions_and_effects():
    assert len(TABLE) > 40
    assert len({row[:3] for row in TABLE}) == len(TABLE), "a row is listed twice"
    known = (
        {"open", "close", "send", "show", "cancel:*"} | {"start:" + k for k in TIMERS} | {"cancel:" + k for k in TIMERS}
    )
    for state, what, when, after, effects in TABLE:
        assert state in STATES and after in STATES, (state, after)
        assert what in INPUTS and when in CONDITIONS, (what, when)
        assert set(effects) <= known, effects
    # Every state but one is left by some input, and every state is reached.
    assert {row[3] for row in TABLE} == set(STATES) - {IDLE}


@pytest.mark.parametrize("state, what, when, after, effects", TABLE, ids=["-".join(row[:3]) for row in TABLE])
def test_each_row_of_the_table_is_what_the_machine_does(state, what, when, after, effects):
    h = in_state(state, when)
    opened_before = h.conn.generation
    got = apply(h, what)
    assert h.conn.state == after
    assert tokens(got) == expand(effects)
    for shown in of(got, ShowStatus):
        assert shown.state == public_state(after)
    for opened in of(got, OpenTransport):
        assert opened.generation == opened_before + 1


LISTED = {(row[0], row[1]) for row in TABLE if row[2] == "-"}


@pytest.mark.parametrize("state", STATES)
def test_every_pair_not_in_the_table_is_ignored(state):
    for what in INPUTS:
        if (state, what) in LISTED:
            continue
        h = in_state(state, "-")
        before = (h.conn.generation, h.conn.attempt, dict(h.timers))
        assert apply(h, what) == [], (state, what)
        assert h.conn.state == state, (state, what)
        assert (h.conn.generation, h.conn.attempt, h.timers) == before


@pytest.mark.parametrize("state", STATES)
def test_inputs_about_an_older_transport_are_ignored_in_every_state(state):
    h = in_state(state, "-")
    old = h.conn.generation - 1  # idle has opened none: -1 is older still
    for effects in (
        h.conn.opened(h.now, old),
        h.conn.received(h.now, old),
        h.conn.closed(h.now, old, 1006),
        h.conn.closed(h.now, old, 4001),
    ):
        assert effects == []
    assert h.conn.state == state
