"""Client core: joins, patches, replies and errors, the offline event queue, the bound on
events in flight, drops, bad frames."""

import random
from collections import Counter

import pytest
from djreconnect import constants, protocol
from djreconnect.backoff import Backoff
from djreconnect.client import Client
from djreconnect.connection import (
    CONNECTED,
    CONNECTING,
    DISCONNECTED,
    FAILED,
    IDLE,
    RECONNECTING,
    TIMER_HEARTBEAT,
    TIMER_PONG,
    TIMER_RETRY,
    Settings,
)
from djreconnect.effects import (
    ApplyPatch,
    CancelTimer,
    FinishEvent,
    OpenTransport,
    RecoverView,
    ReportError,
    Send,
    ShowStatus,
    StartTimer,
)
from hypothesis import given, settings
from hypothesis import strategies as st

VIEWS = (("v1", "app.Counter", "tok-1"), ("v2", "app.Search", ""))
OPS = [["attr", [0], "class", "on"]]
# A title field the user changed while away (recovery sends it).
FIELD = {
    "tag": "INPUT", "type": "text", "name": "title", "input": None, "change": "set_title",
    "params": {}, "disabled": False, "no_recover": False, "container": None,
    "value": "live", "default": "",
}  # fmt: skip


def of(effects, cls):
    return [e for e in effects if isinstance(e, cls)]


class Page:
    """A client plus what the browser adapter and the server would do around it."""

    def __init__(self, views=VIEWS, queue_limit=50, seed=5, conn_settings=None, auto_recover=True, **bounds):
        self.auto_recover = auto_recover  # answer RecoverView at once, as the browser adapter does
        self.snapshots = {}  # view -> the recovery snapshot the page would take
        self.client = Client(conn_settings, random=random.Random(seed).random, queue_limit=queue_limit, **bounds)
        for view_id, name, token in views:
            self.client.add_view(view_id, name, token)
        self.now = 0
        self.timers = {}
        self.gen = None
        self.sent = []  # every message the client sent, decoded with the server's decoder
        self.join_refs = {}  # view -> ref of its latest Join
        self.done = Counter()  # (view, ref) -> FinishEvent count

    def run(self, effects):
        out = []
        for effect in effects:
            out.append(effect)
            if isinstance(effect, RecoverView) and self.auto_recover:
                snapshot = self.snapshots.get(effect.view, [])
                out.extend(self.run(self.client.recovered(self.now, effect.view, snapshot)))
            elif isinstance(effect, StartTimer):
                self.timers[effect.key] = self.now + effect.delay_ms
            elif isinstance(effect, CancelTimer):
                self.timers.pop(effect.key, None)
            elif isinstance(effect, OpenTransport):
                self.gen = effect.generation
            elif isinstance(effect, Send):
                message = protocol.decode_client(effect.frame)
                self.sent.append(message)
                if isinstance(message, protocol.Join):
                    self.join_refs[message.view] = message.ref
            elif isinstance(effect, FinishEvent):
                self.done[(effect.view, effect.ref)] += 1
        return out

    def tick(self, ms=10):
        self.now += ms
        return self

    # inputs
    def start(self):
        return self.run(self.client.start(self.now))

    def opened(self, roots=None, gen=None):
        return self.run(self.client.opened(self.now, self.gen if gen is None else gen, roots or {}))

    def closed(self, code=1006, gen=None):
        return self.run(self.client.closed(self.now, self.gen if gen is None else gen, code))

    def frame(self, message, gen=None):
        text = message if isinstance(message, str) else protocol.encode(message)
        return self.run(self.client.frame(self.now, self.gen if gen is None else gen, text))

    def fire(self, key):
        self.now = max(self.now, self.timers.pop(key))
        return self.run(self.client.timer(self.now, key))

    def push(self, view, kind, handler, params=None, ref=None):
        return self.run(self.client.push_event(self.now, view, kind, handler, params or {}, ref))

    def disconnect(self):
        return self.run(self.client.disconnect(self.now))

    def went_offline(self):
        return self.run(self.client.went_offline(self.now))

    # the server's side
    def rendered(self, view, ops=OPS, ref=None, resumed=False, version=1):
        ref = self.join_refs[view] if ref is None else ref
        return self.frame(protocol.Rendered(ref=ref, view=view, ops=ops, version=version, resumed=resumed))

    def reply(self, view, ref, ops=OPS, version=None):
        return self.frame(protocol.Reply(ref=ref, view=view, ops=ops, version=version))

    def welcome(self, session="s1", secret="secret-1", resumed=False):
        return self.frame(protocol.Welcome(ref=1, session=session, secret=secret, resumed=resumed))

    def events(self, view=None):
        """Events sent, a recovery batch counted as the events it carries (with its ref)."""
        found = []
        for m in self.sent:
            if view is not None and getattr(m, "view", None) != view:
                continue
            if isinstance(m, protocol.Event):
                found.append(m)
            elif isinstance(m, protocol.Batch):
                found.extend(protocol.Event(ref=m.ref, view=m.view, handler=h, params=p) for h, p in m.events)
        return found

    def batches(self):
        return [m for m in self.sent if isinstance(m, protocol.Batch)]

    def joins(self):
        return [m for m in self.sent if isinstance(m, protocol.Join)]

    @property
    def state(self):
        return self.client.state


def live(**kwargs):
    """A page connected with every view mounted."""
    page = Page(**kwargs)
    page.start()
    page.tick().opened({"v1": "<p>1</p>", "v2": "<p>2</p>"})
    for view_id in page.client.view_order:
        page.rendered(view_id)
    assert page.state == CONNECTED
    return page


def reconnect(page, roots=None):
    """Wait out the retry delay and open again (views not yet mounted)."""
    page.fire(TIMER_RETRY)
    return page.tick().opened(roots or {})


# --- construction ----------------------------------------------------------------


def test_a_client_needs_a_random_source():
    with pytest.raises(ValueError):
        Client()


def test_a_view_is_added_once():
    client = Client(random=random.random)
    client.add_view("v1", "app.A")
    with pytest.raises(ValueError):
        client.add_view("v1", "app.B")


def test_state_follows_the_connection():
    page = Page()
    assert page.state == IDLE
    page.start()
    assert page.state == CONNECTING
    page.opened()
    assert page.state == CONNECTED


# --- joins and mounts -------------------------------------------------------------


def test_opened_joins_every_view_in_order_with_its_html():
    page = Page(views=(("b", "app.B", "tb"), ("a", "app.A", "ta"), ("c", "app.C", "")))
    page.start()
    page.opened({"a": "<p>a</p>", "b": "<div>b</div>"})
    joins = page.joins()
    assert [j.view for j in joins] == ["b", "a", "c"]  # the order views were added
    assert [(j.name, j.token, j.html) for j in joins] == [
        ("app.B", "tb", "<div>b</div>"),
        ("app.A", "ta", "<p>a</p>"),
        ("app.C", "", ""),  # no html given: empty
    ]
    assert len({j.ref for j in joins}) == 3


def test_a_stale_opened_sends_no_join():
    page = Page()
    page.start()
    assert page.opened(gen=page.gen + 1) == []
    assert page.joins() == []


def test_rendered_for_the_join_mounts_the_view():
    page = Page()
    page.start()
    page.opened({"v1": "<p>1</p>"})
    effects = page.rendered("v1", ops=[["text", [0, 0], "9"]])
    assert of(effects, ApplyPatch) == [ApplyPatch("v1", [["text", [0, 0], "9"]], True, None)]
    assert of(effects, FinishEvent) == [] and of(effects, ReportError) == []


def test_rendered_with_another_ref_is_ignored():
    page = Page()
    page.start()
    page.opened()
    ref = page.join_refs["v1"]
    assert page.rendered("v1", ref=ref + 100) == []
    assert page.rendered("v1", ref=page.join_refs["v2"]) == []  # v2's join, addressed to v1
    assert page.frame(protocol.Rendered(ref=ref, view="nope", ops=OPS)) == []
    # The view is still not mounted: its events wait.
    page.push("v1", "click", "inc")
    assert page.events() == []


def test_rendered_from_before_a_reconnect_is_ignored():
    page = Page()
    page.start()
    page.opened()
    old = page.join_refs["v1"]
    page.closed(1006)
    reconnect(page)
    assert page.join_refs["v1"] != old
    assert page.rendered("v1", ref=old) == []
    assert of(page.rendered("v1"), ApplyPatch) == [ApplyPatch("v1", OPS, True, None)]


def test_joins_are_sent_again_after_every_reconnect():
    page = live()
    page.closed(1012)
    reconnect(page, {"v1": "<p>typed</p>"})
    joins = page.joins()
    assert [j.view for j in joins] == ["v1", "v2", "v1", "v2"]
    assert joins[2].html == "<p>typed</p>"


# --- events, replies and errors -----------------------------------------------------


def test_an_event_on_a_mounted_view_is_sent():
    page = live()
    ref = page.client.reserve_ref()
    effects = page.push("v1", "click", "inc", {"by": 2}, ref=ref)
    (event,) = page.events()
    assert (event.ref, event.view, event.handler, event.params) == (ref, "v1", "inc", {"by": 2})
    assert len(of(effects, Send)) == 1 and of(effects, FinishEvent) == []
    # Without a reserved ref, the client picks a fresh one.
    page.push("v1", "submit", "save")
    page.push("v2", "input", "search", {"q": "x"})
    refs = [e.ref for e in page.events()]
    assert len(set(refs)) == 3 and set(refs).isdisjoint(page.join_refs.values())


def test_a_reply_patches_then_finishes_the_event():
    page = live()
    page.push("v1", "click", "inc")
    (event,) = page.events()
    effects = page.reply("v1", event.ref, ops=[["text", [0], "2"]])
    assert effects == [
        ApplyPatch("v1", [["text", [0], "2"]], False, event.ref),
        FinishEvent("v1", event.ref),
    ]


def test_a_reply_without_a_ref_patches_only():
    page = live()
    effects = page.frame(protocol.Reply(ref=None, view="v2", ops=OPS))
    assert effects == [ApplyPatch("v2", OPS, False, None)]


def test_an_error_is_reported_and_finishes_its_event():
    page = live()
    page.push("v2", "submit", "save")
    (event,) = page.events()
    effects = page.frame(protocol.Error(ref=event.ref, view="v2", code="no_handler", message="no 'save'"))
    assert of(effects, ReportError) == [ReportError("v2", "no_handler", "no 'save'")]
    assert of(effects, FinishEvent) == [FinishEvent("v2", event.ref)]
    assert page.done[("v2", event.ref)] == 1


def test_an_error_about_no_event_is_reported_only():
    page = live()
    effects = page.frame(protocol.Error(ref=None, view=None, code="rate_limited", message="slow down"))
    assert effects == [ReportError(None, "rate_limited", "slow down")]


def test_an_unknown_view_is_refused():
    page = live()
    effects = page.push("ghost", "click", "inc")
    assert [e.code for e in of(effects, ReportError)] == ["unknown_view"]
    assert page.events() == []


# --- the offline queue ------------------------------------------------------------


def test_clicks_and_submits_made_offline_are_sent_in_order_once_after_the_remount():
    page = live()
    page.closed(1006)
    assert page.state == RECONNECTING
    pushed = [
        ("v1", "click", "inc", {"n": 1}),
        ("v2", "click", "next", {}),
        ("v1", "submit", "save", {"title": "x"}),
        ("v1", "click", "inc", {"n": 2}),
    ]
    for view, kind, handler, params in pushed:
        assert page.push(view, kind, handler, params) == []  # kept, nothing to do yet
    reconnect(page)
    assert page.events() == []  # not before the views are mounted again
    effects = page.rendered("v1")
    assert isinstance(effects[0], ApplyPatch) and effects[0].mount  # the mount patch comes first
    assert [(e.handler, e.params) for e in page.events()] == [
        ("inc", {"n": 1}),
        ("save", {"title": "x"}),
        ("inc", {"n": 2}),
    ]
    page.rendered("v2")
    assert [(e.view, e.handler) for e in page.events()] == [
        ("v1", "inc"),
        ("v1", "save"),
        ("v1", "inc"),
        ("v2", "next"),
    ]
    # Once answered, neither a repeated Rendered nor another reconnect sends them again.
    for event in page.events():
        page.reply(event.view, event.ref)
    page.rendered("v1")
    page.closed(1006)
    reconnect(page)
    page.rendered("v1")
    page.rendered("v2")
    assert len(page.events()) == 4
    assert len({e.ref for e in page.events()}) == 4


def test_a_reserved_ref_is_kept_through_the_queue():
    page = live()
    page.went_offline()
    ref = page.client.reserve_ref()
    page.push("v1", "click", "inc", ref=ref)
    reconnect(page)
    page.rendered("v1")
    assert [e.ref for e in page.events()] == [ref]
    page.reply("v1", ref)
    assert page.done[("v1", ref)] == 1


def test_events_before_the_first_mount_wait_for_it():
    page = Page()
    page.push("v1", "click", "early")  # not even started
    page.start()
    page.opened()
    page.push("v1", "submit", "soon")  # connected, view not mounted yet
    assert page.events() == []
    page.rendered("v1")
    assert [e.handler for e in page.events()] == ["early", "soon"]


def test_kept_events_wait_until_the_mounted_view_is_recovered():
    page = Page(auto_recover=False)
    page.start()
    page.opened()
    page.push("v1", "click", "early")
    effects = page.rendered("v1")
    assert of(effects, RecoverView) == [RecoverView("v1", "first")]  # the page's first mount
    assert page.events() == []
    page.push("v1", "submit", "between")  # mounted, not yet recovered: kept too
    ref = page.client.reserve_ref()
    assert page.push("v1", "input", "typed", ref=ref) == [FinishEvent("v1", ref)]
    page.run(page.client.recovered(page.now, "v1", []))
    assert [e.handler for e in page.events()] == ["early", "between"]
    assert page.client.recovered(page.now, "v1", []) == []  # once only
    assert page.client.recovered(page.now, "ghost", []) == []
    page.push("v1", "click", "after")
    assert [e.handler for e in page.events()] == ["early", "between", "after"]
    # A remount says so.
    page.closed(1006)
    assert page.client.recovered(page.now, "v1", []) == []  # not while disconnected
    reconnect(page)
    assert of(page.rendered("v1"), RecoverView) == [RecoverView("v1", "remount")]
    page.closed(1006)
    reconnect(page)
    assert of(page.rendered("v1", resumed=True), RecoverView) == [RecoverView("v1", "resume")]


def test_recovery_events_go_before_the_kept_clicks():
    page = live()
    page.closed(1006)
    page.push("v1", "click", "inc", {"n": 1})
    page.snapshots["v1"] = [
        {
            "tag": "INPUT", "type": "text", "name": "q", "input": "typed", "change": None,
            "params": {}, "disabled": False, "no_recover": False, "container": None,
            "value": "draft", "default": "",
        }
    ]  # fmt: skip
    reconnect(page)
    page.rendered("v1")
    assert [(e.handler, e.params) for e in page.events()] == [("typed", {"value": "draft"}), ("inc", {"n": 1})]


@pytest.mark.parametrize("kind", ["input", "change"])
def test_input_and_change_made_offline_are_not_kept(kind):
    page = live()
    page.closed(1006)
    ref = page.client.reserve_ref()
    assert page.push("v1", kind, "typed", {"q": "a"}, ref=ref) == [FinishEvent("v1", ref)]
    reconnect(page)
    page.rendered("v1")
    assert page.events() == []


@pytest.mark.parametrize("kind", ["input", "change"])
def test_input_and_change_are_sent_when_connected(kind):
    page = live()
    page.push("v2", kind, "typed", {"q": "a"})
    assert [(e.handler, e.params) for e in page.events()] == [("typed", {"q": "a"})]


def test_the_queue_is_bounded_and_refuses_the_newest():
    page = live(queue_limit=3)
    page.closed(1006)
    for n in range(3):
        assert page.push("v1", "click", "inc", {"n": n}) == []
    ref = page.client.reserve_ref()
    effects = page.push("v2", "submit", "save", ref=ref)
    assert of(effects, FinishEvent) == [FinishEvent("v2", ref)]
    assert [(e.view, e.code) for e in of(effects, ReportError)] == [("v2", "queue_full")]
    reconnect(page)
    page.rendered("v1")
    page.rendered("v2")
    assert [e.params["n"] for e in page.events()] == [0, 1, 2]  # the earlier ones, not the refused one
    # Sent events leave the queue: there is room again.
    page.closed(1006)
    assert page.push("v1", "click", "inc") == []


def test_events_in_flight_when_the_connection_drops_are_kept_until_their_reply():
    for drop in ("closed", "offline", "heartbeat"):
        page = live()
        page.push("v1", "click", "a")
        page.push("v2", "submit", "b")
        answered = page.events()[0]
        page.reply("v1", answered.ref)
        page.push("v1", "click", "c")
        pending = [(e.view, e.ref) for e in page.events()[1:]]
        if drop == "closed":
            effects = page.closed(1011)
        elif drop == "offline":
            effects = page.went_offline()
        else:
            page.fire(TIMER_HEARTBEAT)
            effects = page.fire(TIMER_PONG)  # no answer
        assert page.state == RECONNECTING, drop
        assert of(effects, FinishEvent) == [], drop  # not finished: no reply came
        assert page.done[("v1", answered.ref)] == 1  # finished once, by its reply
        # A late answer on the dead transport neither patches nor finishes anything.
        assert of(page.reply("v1", pending[-1][1]), FinishEvent) == []
        assert all(page.done[key] == 0 for key in pending)


def test_a_resume_sends_unanswered_events_again_with_their_ids_before_recovery_and_the_queue():
    page = live()
    page.welcome()
    page.push("v1", "click", "a")
    page.push("v1", "submit", "b", {"title": "t"})
    page.push("v1", "input", "typed", {"value": "x"})  # a field recovery covers? not said: resent
    first = page.events()
    page.closed(1006)
    page.push("v1", "click", "offline")
    page.snapshots["v1"] = [FIELD]
    sent_before = len(page.sent)
    reconnect(page)
    hello = page.sent[sent_before]
    assert isinstance(hello, protocol.Hello) and (hello.session, hello.secret) == ("s1", "secret-1")
    assert [j.version for j in page.joins()[-2:]] == [1, 1]  # the render each view shows
    page.welcome(secret="secret-2", resumed=True)
    effects = page.rendered("v1", resumed=True, version=1)
    again = page.events()[len(first) :]
    assert [(e.ref, e.handler) for e in again[:3]] == [(e.ref, e.handler) for e in first]  # same ids, in order
    assert [e.handler for e in again[3:]] == ["set_title", "offline"]  # recovery, then the queue
    assert of(effects, FinishEvent) == []
    assert page.client.secret == "secret-2"
    # Each is finished once, by its reply (the server answers a repeat from its record).
    for event in first:
        page.reply("v1", event.ref)
        assert page.done[("v1", event.ref)] == 1


def test_a_resume_does_not_send_again_what_form_recovery_covers():
    page = live()
    page.run(page.client.push_event(page.now, "v1", "input", "set_title", {"value": "ab"}, None, True))
    (typed,) = page.events()
    page.closed(1006)
    page.snapshots["v1"] = [FIELD]
    reconnect(page)
    effects = page.rendered("v1", resumed=True)
    assert FinishEvent("v1", typed.ref) in effects
    assert [e.handler for e in page.events()[1:]] == ["set_title"]  # once, by recovery's batch
    assert page.batches()[-1].events == [["set_title", {"value": "live"}]]


def test_a_remount_queues_unanswered_clicks_and_submits_after_recovery_and_drops_the_rest():
    page = live()
    page.push("v1", "click", "a")
    page.push("v1", "change", "pick", {"value": "2"})  # not a field recovery covers
    page.push("v2", "submit", "b")
    a, pick, b = page.events()
    page.closed(1006)
    page.push("v1", "click", "offline")
    page.snapshots["v1"] = [FIELD]
    reconnect(page)
    effects = page.rendered("v1")  # not resumed: the session was gone
    assert FinishEvent("v1", pick.ref) in effects
    assert [(e.handler, e.ref) for e in page.events()[3:]] == [
        ("set_title", page.batches()[-1].ref),
        ("a", a.ref),
        ("offline", page.events()[-1].ref),
    ]
    page.rendered("v2")
    assert page.events()[-1].handler == "b"


def test_replies_move_the_version_the_next_join_reports():
    page = live()
    page.push("v1", "click", "a")
    (event,) = page.events()
    page.reply("v1", event.ref, version=7)
    page.reply("v1", None, version=None)  # a reply without a version keeps the last one
    page.closed(1006)
    reconnect(page)
    assert {j.view: j.version for j in page.joins()[-2:]} == {"v1": 7, "v2": 1}


def test_a_failed_connection_finishes_events_in_flight():
    page = live(conn_settings=Settings(backoff=Backoff(max_attempts=1)))
    page.push("v1", "click", "a")
    (event,) = page.events()
    page.closed(1006)
    page.fire(TIMER_RETRY)
    effects = page.closed(1006)
    assert page.state == "failed"
    assert FinishEvent("v1", event.ref) in effects


def test_disconnect_drops_the_queue_and_reports_it():
    page = live()
    page.closed(1006)
    refs = [page.client.reserve_ref() for _ in range(2)]
    page.push("v1", "click", "inc", ref=refs[0])
    page.push("v2", "submit", "save", ref=refs[1])
    effects = page.disconnect()
    assert page.state == DISCONNECTED
    assert {(e.view, e.code) for e in of(effects, ReportError)} == {("v1", "not_sent"), ("v2", "not_sent")}
    assert sorted(e.ref for e in of(effects, FinishEvent)) == sorted(refs)
    assert of(effects, ShowStatus)[-1].state == DISCONNECTED
    # Connecting again later does not send what was dropped.
    page.start()
    page.opened()
    page.rendered("v1")
    page.rendered("v2")
    assert page.events() == []


def test_disconnect_finishes_events_in_flight():
    page = live()
    page.push("v1", "click", "inc")
    (event,) = page.events()
    effects = page.disconnect()
    assert FinishEvent("v1", event.ref) in effects
    # The transport's close that follows finishes nothing twice and reconnects nothing.
    assert page.closed(1006) == []
    assert page.reply("v1", event.ref) == []
    assert page.done[("v1", event.ref)] == 1
    assert page.state == DISCONNECTED


def test_nothing_reconnects_after_disconnect():
    page = live()
    page.disconnect()
    for code in (1000, 1006, 1012, 4001):
        page.closed(code)
    assert page.state == DISCONNECTED
    assert page.timers == {}


# --- fields with events in flight ------------------------------------------------


def typed(page, view, handler, value, source, kind="input", recoverable=True):
    """A field's input (or change) event, named by its ``source``; returns its ref."""
    page.run(page.client.push_event(page.now, view, kind, handler, {"value": value}, None, recoverable, source))
    return page.events()[-1].ref


def test_a_reply_keeps_a_field_that_sent_newer_events_and_not_one_whose_newest_it_answers():
    page = live()
    refs = [typed(page, "v1", "set_title", value, 7) for value in ("S", "Se", "Sev")]
    # The renders of "S" and "Se" are older than what the field shows: it keeps it.
    assert page.reply("v1", refs[0]) == [ApplyPatch("v1", OPS, False, refs[0], (7,)), FinishEvent("v1", refs[0])]
    assert page.reply("v1", refs[1]) == [ApplyPatch("v1", OPS, False, refs[1], (7,)), FinishEvent("v1", refs[1])]
    # The render of "Sev" answers what the user last did there: it shows, a reset too.
    assert page.reply("v1", refs[2]) == [ApplyPatch("v1", OPS, False, refs[2], ()), FinishEvent("v1", refs[2])]


def test_every_field_with_events_in_flight_is_kept_each_once_in_sending_order():
    page = live()
    title = typed(page, "v1", "set_title", "a", 7)
    typed(page, "v1", "pick", "2", 8, kind="change", recoverable=False)
    typed(page, "v1", "set_title", "ab", 7)
    page.push("v1", "click", "save")  # a click names no field
    typed(page, "v2", "search", "q", 9)  # another view's field is that view's business
    effects = page.frame(protocol.Reply(ref=None, view="v1", ops=OPS))  # a render pushed by the server
    assert effects == [ApplyPatch("v1", OPS, False, None, (7, 8))]
    assert page.reply("v1", title)[0].keep == (8, 7)
    assert page.client.views["v1"].busy_sources() == (8, 7)
    assert page.client.views["v2"].busy_sources() == (9,)


def test_an_error_reply_frees_its_field_like_a_reply():
    page = live()
    first = typed(page, "v1", "set_title", "a", 7)
    second = typed(page, "v1", "set_title", "ab", 7)
    page.frame(protocol.Error(ref=first, view="v1", code="handler_failed", message="boom"))
    assert page.client.views["v1"].busy_sources() == (7,)
    page.frame(protocol.Error(ref=second, view="v1", code="handler_failed", message="boom"))
    assert page.client.views["v1"].busy_sources() == ()
    assert page.frame(protocol.Reply(ref=None, view="v1", ops=OPS))[0].keep == ()


def test_after_a_resume_only_the_events_sent_again_keep_their_fields():
    page = live()
    typed(page, "v1", "set_title", "ab", 7)  # recovery covers it: finished, recovery sends the field
    pick = typed(page, "v1", "pick", "2", 8, kind="change", recoverable=False)  # sent again, same id
    page.closed(1006)
    page.snapshots["v1"] = [FIELD]
    reconnect(page)
    page.welcome()
    page.rendered("v1", resumed=True)
    (batch,) = page.batches()
    assert page.client.views["v1"].busy_sources() == (8,)
    assert page.reply("v1", pick)[0].keep == ()
    assert page.reply("v1", batch.ref)[0].keep == ()


def test_a_mount_patch_and_a_finished_page_keep_nothing():
    page = live()
    typed(page, "v1", "set_title", "ab", 7)
    page.closed(1006)
    reconnect(page)
    (mount,) = of(page.rendered("v1"), ApplyPatch)  # a remount: its patch never moves live state
    assert (mount.mount, mount.keep) == (True, ())
    typed(page, "v1", "set_title", "abc", 7)
    assert page.client.views["v1"].busy_sources() == (7,)
    page.disconnect()  # events in flight are abandoned
    assert page.client.views["v1"].busy_sources() == ()


# --- events in flight are bounded ---------------------------------------------------


def field(page, view, handler, value, source, kind="input", recoverable=True):
    """A field's input (or change) event, named by its ``source``: (its ref, the effects)."""
    ref = page.client.reserve_ref()
    effects = page.run(
        page.client.push_event(page.now, view, kind, handler, {"value": value}, ref, recoverable, source)
    )
    return ref, effects


def unanswered(page):
    """(view, ref) of the events and batches sent on the current transport (since its
    Hello) and not yet finished, oldest first."""
    hellos = [i for i, m in enumerate(page.sent) if isinstance(m, protocol.Hello)]
    keys = []
    for message in page.sent[hellos[-1] if hellos else 0 :]:
        if isinstance(message, (protocol.Event, protocol.Batch)):
            key = (message.view, message.ref)
            if page.done[key] == 0 and key not in keys:
                keys.append(key)
    return keys


def answer_all(page):
    """Answer every event in flight, oldest first, until none is left (each answer may
    let a waiting one go)."""
    while unanswered(page):
        view, ref = unanswered(page)[0]
        page.reply(view, ref)


def test_max_in_flight_stays_below_what_the_servers_exactly_once_record_holds():
    # A resume sends every unanswered event again; the server answers a repeat only while
    # its record (the last DEFAULT_EVENT_RECORD_SIZE ids) still holds it.
    assert 0 < constants.MAX_IN_FLIGHT < constants.DEFAULT_EVENT_RECORD_SIZE
    client = Client(random=random.random)
    assert (client.max_in_flight, client.max_in_flight_chars) == (
        constants.MAX_IN_FLIGHT,
        constants.MAX_IN_FLIGHT_CHARS,
    )
    assert (client.queue_limit, client.queue_chars) == (
        constants.DEFAULT_OFFLINE_QUEUE_LIMIT,
        constants.DEFAULT_OFFLINE_QUEUE_CHARS,
    )
    with pytest.raises(ValueError):
        Client(random=random.random, max_in_flight=0)


def test_events_past_max_in_flight_wait_and_go_in_order_as_replies_come():
    page = live()
    limit = constants.MAX_IN_FLIGHT
    extra = constants.DEFAULT_OFFLINE_QUEUE_LIMIT
    for n in range(limit + extra):
        effects = page.push("v1" if n % 3 else "v2", "click", "inc", {"n": n})
        assert len(of(effects, Send)) == (1 if n < limit else 0), n
    assert len(page.events()) == limit
    assert page.client.in_flight()[0] == limit and len(page.client.queue) == extra
    # Each answer, a reply or an error, lets the oldest waiting event go, whichever view.
    answers = 0
    while unanswered(page):
        view, ref = unanswered(page)[0]
        if answers % 4 == 3:
            effects = page.frame(protocol.Error(ref=ref, view=view, code="boom", message="no"))
        else:
            effects = page.reply(view, ref)
        answers += 1
        assert len(unanswered(page)) <= limit
        assert len(of(effects, Send)) == (1 if answers <= extra else 0)
    assert [e.params["n"] for e in page.events()] == list(range(limit + extra))
    assert all(count == 1 for count in page.done.values()) and len(page.done) == limit + extra


def test_a_field_typed_into_faster_than_replies_come_keeps_one_waiting_event_its_newest():
    page = live(max_in_flight=2)
    refs = []
    for value in ("a", "ab", "abc", "abcd", "abcde"):
        ref, effects = field(page, "v1", "set_title", value, 7)
        refs.append(ref)
        if value == "abcd":
            assert effects == [FinishEvent("v1", refs[2])]  # "abc" is superseded, never sent
    assert [e.params["value"] for e in page.events()] == ["a", "ab"]
    assert [q.ref for q in page.client.queue] == [refs[4]]
    assert page.done[("v1", refs[3])] == 1
    # The field's newest value waits: a render answering "a" leaves what it shows alone.
    effects = page.reply("v1", refs[0])
    assert effects[0] == ApplyPatch("v1", OPS, False, refs[0], (7,))
    assert [e.params["value"] for e in page.events()] == ["a", "ab", "abcde"]
    answer_all(page)
    assert page.client.busy_sources("v1") == ()
    assert [page.done[("v1", ref)] for ref in refs] == [1, 1, 1, 1, 1]


def test_a_waiting_field_event_gives_way_only_where_no_click_waits_after_it():
    page = live(max_in_flight=1)
    page.push("v1", "click", "first")  # in flight
    field(page, "v1", "set_title", "a", 7)
    page.push("v1", "submit", "save")  # sees the title "a": that event keeps its place
    field(page, "v1", "set_title", "ab", 7)
    field(page, "v1", "set_title", "abc", 7)  # replaces "ab"
    field(page, "v1", "pick", "x", 8, kind="change")  # another field
    field(page, "v2", "search", "q", 7)  # another view (sources are per view)
    _, effects = field(page, "v1", "set_title", "abcd", 7)  # replaces "abc", goes after "x"
    assert len(of(effects, FinishEvent)) == 1
    answer_all(page)
    assert [(e.view, e.handler, e.params.get("value")) for e in page.events()] == [
        ("v1", "first", None),
        ("v1", "set_title", "a"),
        ("v1", "save", None),
        ("v1", "pick", "x"),
        ("v2", "search", "q"),
        ("v1", "set_title", "abcd"),
    ]
    assert all(count == 1 for count in page.done.values()) and len(page.done) == 8


def test_field_events_recovery_does_not_cover_or_of_another_handler_all_wait_and_go():
    page = live(max_in_flight=1)
    page.push("v1", "click", "first")
    field(page, "v1", "search", "q", 7, recoverable=False)
    field(page, "v1", "search", "qu", 7, recoverable=False)  # dj-no-recover: each is sent
    field(page, "v1", "set_title", "a", 8)
    field(page, "v1", "check_title", "a", 8, kind="change")  # the same field, another handler
    answer_all(page)
    assert [(e.handler, e.params.get("value")) for e in page.events()] == [
        ("first", None),
        ("search", "q"),
        ("search", "qu"),
        ("set_title", "a"),
        ("check_title", "a"),
    ]


def test_events_waiting_for_room_are_bounded_by_the_queue_limit():
    page = live(max_in_flight=2, queue_limit=3)
    for n in range(4):
        assert of(page.push("v1", "click", "inc", {"n": n}), ReportError) == []
    field(page, "v1", "set_title", "a", 7)  # the queue is full: click 2, click 3, "a"
    ref, effects = field(page, "v1", "set_title", "ab", 7)  # replaces "a": still three
    assert of(effects, ReportError) == []
    refused = page.client.reserve_ref()
    for kind, source in (("click", None), ("input", 8)):  # a click, a field with nothing to replace
        effects = page.run(page.client.push_event(page.now, "v2", kind, "h", {}, refused, True, source))
        assert [(r.view, r.code) for r in of(effects, ReportError)] == [("v2", "queue_full")]
        assert of(effects, FinishEvent) == [FinishEvent("v2", refused)]
    assert len(page.client.queue) == 3
    answer_all(page)
    assert [e.params.get("n", e.params.get("value")) for e in page.events()] == [0, 1, 2, 3, "ab"]


def test_the_characters_in_flight_and_waiting_are_bounded():
    def frame_size(text):
        return len(protocol.encode(protocol.Event(ref=100, view="v1", handler="save", params={"text": text})))

    big, small = "x" * 200, "y"
    assert frame_size(big) * 2 > 400 >= frame_size(big) + frame_size(small)
    page = live(max_in_flight=10, max_in_flight_chars=400, queue_chars=400)
    page.push("v1", "submit", "save", {"text": big})
    page.push("v1", "click", "save", {"text": small})
    assert len(page.events()) == 2  # within 400 characters
    page.push("v1", "submit", "save", {"text": big})  # would pass 400: waits
    page.push("v2", "click", "save", {"text": small})  # waits behind it (order)
    assert len(page.events()) == 2 and len(page.client.queue) == 2
    ref = page.client.reserve_ref()
    effects = page.push("v1", "submit", "save", {"text": big}, ref=ref)  # waiting would pass 400
    assert [r.code for r in of(effects, ReportError)] == ["queue_full"] and "400" in of(effects, ReportError)[0].message
    answer_all(page)
    assert [e.params["text"] for e in page.events()] == [big, small, big, small]
    # An event larger than the flight's characters goes alone, when nothing else is in flight.
    huge = "z" * 1000
    page.push("v1", "submit", "save", {"text": huge})
    assert page.events()[-1].params["text"] == huge
    page.push("v1", "click", "save", {"text": small})
    assert len(page.client.queue) == 1
    answer_all(page)
    assert page.events()[-1].params["text"] == small


def test_a_drop_then_a_resume_sends_each_unanswered_event_again_then_recovery_then_what_waited():
    page = live(max_in_flight=2)
    page.welcome()
    page.push("v1", "click", "a")
    page.push("v1", "click", "b")  # a and b are in flight
    typed_ref, _ = field(page, "v1", "set_title", "ab", 7)  # recovery will carry the field
    page.push("v1", "submit", "c")
    search_ref, _ = field(page, "v1", "search", "q", 8, recoverable=False)
    a, b = page.events()
    page.closed(1006)
    page.push("v1", "click", "offline")
    page.snapshots["v1"] = [FIELD]
    reconnect(page)
    page.welcome(secret="secret-2", resumed=True)
    sent_before = len(page.events())
    effects = page.rendered("v1", resumed=True)
    assert FinishEvent("v1", typed_ref) in effects  # recovery's batch sends the field instead
    assert [(e.ref, e.handler) for e in page.events()[sent_before:]] == [(a.ref, "a"), (b.ref, "b")]  # the same ids
    page.rendered("v2", resumed=True)
    answer_all(page)
    assert [e.handler for e in page.events()[sent_before:]] == ["a", "b", "set_title", "c", "search", "offline"]
    assert page.events()[-2].ref == search_ref
    assert page.done[("v1", typed_ref)] == 1 and typed_ref not in [e.ref for e in page.events()]
    assert all(count == 1 for count in page.done.values())
    assert len(page.done) == 7  # a, b, the field, c, search, offline, the batch


def test_a_drop_then_a_remount_queues_unanswered_and_waiting_clicks_in_order_within_the_bound():
    page = live(max_in_flight=2)
    page.push("v1", "click", "a")
    page.push("v1", "click", "b")
    typed_ref, _ = field(page, "v1", "set_title", "ab", 7)
    page.push("v1", "submit", "c")
    search_ref, _ = field(page, "v1", "search", "q", 8, recoverable=False)
    page.closed(1006)
    page.push("v1", "click", "offline")
    page.snapshots["v1"] = [FIELD]
    reconnect(page)
    sent_before = len(page.events())
    effects = page.rendered("v1")  # the session was gone
    # The field: recovery carries it; the search field: nothing can after a remount.
    assert FinishEvent("v1", typed_ref) in effects and FinishEvent("v1", search_ref) in effects
    assert [e.handler for e in page.events()[sent_before:]] == ["set_title", "a"]  # two in flight
    page.rendered("v2")
    while unanswered(page):
        assert len(unanswered(page)) <= 2
        view, ref = unanswered(page)[0]
        page.reply(view, ref)
    assert [e.handler for e in page.events()[sent_before:]] == ["set_title", "a", "b", "c", "offline"]
    assert all(count == 1 for count in page.done.values())
    assert len(page.done) == 7


def test_giving_up_finishes_waiting_events_once_and_says_they_were_not_sent():
    for end in ("disconnect", "failed"):
        page = live(max_in_flight=1, conn_settings=Settings(backoff=Backoff(max_attempts=1)))
        page.push("v1", "click", "a")
        page.push("v1", "click", "b")
        field(page, "v1", "set_title", "x", 7)
        if end == "disconnect":
            effects = page.disconnect()
        else:
            page.closed(1006)
            page.fire(TIMER_RETRY)
            effects = page.closed(1006)
            assert page.state == FAILED
        assert len(of(effects, FinishEvent)) == 3, end
        assert [r.code for r in of(effects, ReportError)] == ["not_sent", "not_sent"], end
        assert all(count == 1 for count in page.done.values()) and len(page.done) == 3
        assert page.client.queue == [] and page.client.in_flight() == (0, 0)


def test_params_json_cannot_carry_are_refused_not_raised():
    page = live()
    ref = page.client.reserve_ref()
    effects = page.push("v1", "click", "inc", {"when": object()}, ref=ref)
    assert of(effects, FinishEvent) == [FinishEvent("v1", ref)]
    assert [r.code for r in of(effects, ReportError)] == ["bad_params"]
    page.push("v1", "click", "inc")
    assert len(page.events()) == 1


# --- frames ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, code",
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"t": "join", "ref": 1, "view": "v1", "name": "x"}', "unknown_type"),  # a client message
        ('{"t": "reply"}', "missing_field"),
        ('{"t": "reply", "view": "v1", "ops": {}}', "bad_field"),
        ('{"t": "pong", "ref": true}', "bad_field"),
        ('{"t": "pong", "ref": 1, "x": 0}', "unknown_field"),
        ("[" * 50_000, "bad_json"),
    ],
)
def test_an_invalid_frame_is_reported_not_raised(text, code):
    page = live()
    effects = page.frame(text)
    reports = of(effects, ReportError)
    assert [(r.view, r.code) for r in reports] == [(None, code)]
    assert reports[0].message
    assert of(effects, ApplyPatch) == []
    assert page.state == CONNECTED
    # The connection goes on as before.
    page.push("v1", "click", "inc")
    assert len(page.events()) == 1


def test_a_frame_that_is_not_text_is_reported():
    page = live()
    effects = page.run(page.client.frame(page.now, page.gen, b'{"t": "pong", "ref": 1}'))
    assert [r.code for r in of(effects, ReportError)] == ["bad_frame"]


def test_frames_from_an_old_transport_are_ignored():
    page = live()
    old = page.gen
    page.closed(1006)
    reconnect(page)
    assert page.frame(protocol.Rendered(ref=page.join_refs["v1"], view="v1", ops=OPS), gen=old) == []
    assert page.frame("garbage", gen=old) == []
    assert page.frame(protocol.Error(ref=None, view=None, code="x", message="y"), gen=old) == []


def test_a_pong_answers_the_heartbeat():
    page = live()
    page.fire(TIMER_HEARTBEAT)
    (ping,) = [m for m in page.sent if isinstance(m, protocol.Ping)]
    assert page.tick(30).frame(protocol.Pong(ref=ping.ref)) == []
    page.fire(TIMER_PONG)
    assert page.state == CONNECTED
    page.fire(TIMER_HEARTBEAT)
    pings = [m for m in page.sent if isinstance(m, protocol.Ping)]
    assert len(pings) == 2 and pings[1].ref != pings[0].ref
    page.fire(TIMER_PONG)  # this one unanswered
    assert page.state == RECONNECTING


def test_a_failed_connection_gives_up_queued_events():
    page = live(conn_settings=Settings(backoff=Backoff(max_attempts=1)))
    page.closed(1006)
    page.push("v1", "click", "inc")
    page.fire(TIMER_RETRY)
    effects = page.closed(1006)
    assert page.state == FAILED
    assert len(of(effects, FinishEvent)) == 1 and [r.code for r in of(effects, ReportError)] == ["not_sent"]


# --- any interleaving ---------------------------------------------------------------

PUSH = st.tuples(
    st.just("push"),
    st.sampled_from(["v1", "v2"]),
    st.sampled_from(["click", "submit", "input", "change"]),
    st.sampled_from([None, 1, 2]),  # the field, for input and change
    st.booleans(),  # recovery covers it (input and change)
)
ANSWER = st.tuples(st.just("answer"), st.sampled_from(["v1", "v2"]), st.sampled_from(["reply", "error"]))
RENDER = st.tuples(st.just("render"), st.sampled_from(["v1", "v2"]), st.booleans())  # resumed or not
LIFECYCLE = st.sampled_from(
    ["drop", "offline", "reconnect", "refuse", "retry", "heartbeat", "pong", "disconnect", "start"]
    + ["reconnect"] * 3  # mostly back soon: enough time connected to fill the flight
)
# Pushes weigh most, then answers: events pile up past the bound, as with a slow server.
STEPS = st.sampled_from([PUSH] * 4 + [ANSWER] * 2 + [RENDER, LIFECYCLE]).flatmap(lambda steps: steps)


def transports(page):
    """The messages sent, split at each Hello (one list per transport)."""
    split = [[]]
    for message in page.sent:
        if isinstance(message, protocol.Hello):
            split.append([])
        split[-1].append(message)
    return split


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.lists(STEPS, min_size=10, max_size=80))
def test_every_event_is_sent_at_most_once_in_order_and_finished_exactly_once(queue_limit, max_in_flight, steps):
    page = Page(queue_limit=queue_limit, max_in_flight=max_in_flight)
    page.start()
    page.opened()
    pushed = []  # (view, ref) in push order
    rendered = set()  # views mounted on the current transport
    for step in steps:
        before = len(page.sent)
        finished = {key for key, count in page.done.items() if count}
        if step[0] == "push":
            view, kind, source, recoverable = step[1:]
            if kind in ("click", "submit"):
                source, recoverable = None, False
            ref = page.client.reserve_ref()
            page.run(page.client.push_event(page.now, view, kind, "h", {"ref": ref}, ref, recoverable, source))
            pushed.append((view, ref))
        elif step[0] == "answer":
            waiting = [key for key in unanswered(page) if key[0] == step[1]]
            if not waiting or page.state != CONNECTED:
                continue
            if step[2] == "reply":
                page.reply(step[1], waiting[0][1])
            else:
                page.frame(protocol.Error(ref=waiting[0][1], view=step[1], code="boom", message="no"))
        elif step[0] == "render":
            if page.state != CONNECTED or step[1] in rendered:
                continue
            page.rendered(step[1], resumed=step[2])
            rendered.add(step[1])
        elif step == "drop":
            page.closed(1006)
        elif step == "refuse":
            page.closed(4001)
        elif step == "offline":
            page.went_offline()
        elif step == "reconnect":
            if TIMER_RETRY in page.timers:
                page.fire(TIMER_RETRY)
            if page.state in (CONNECTING, RECONNECTING):
                page.opened()
        elif step == "retry":
            page.run(page.client.retry(page.now))
        elif step == "heartbeat":
            if TIMER_HEARTBEAT in page.timers:
                page.fire(TIMER_HEARTBEAT)
        elif step == "pong":
            if TIMER_PONG in page.timers:
                page.fire(TIMER_PONG)
        elif step == "disconnect":
            page.disconnect()
        elif step == "start":
            page.start()
        if page.state != CONNECTED:
            rendered = set()
        if any(isinstance(m, protocol.Join) for m in page.sent[before:]):
            rendered = set()
        for message in page.sent[before:]:
            if isinstance(message, protocol.Event):
                assert message.view in rendered  # only to views mounted on the current transport
                assert (message.view, message.ref) not in finished  # never after its answer
        assert all(count <= 1 for count in page.done.values()), page.done
        # The bound: never more unanswered on a transport than max_in_flight.
        assert len(unanswered(page)) <= max_in_flight
        assert page.client.in_flight()[0] <= max_in_flight
        page.tick()

    page.disconnect()
    for sent in transports(page):
        events = [m for m in sent if isinstance(m, protocol.Event)]
        refs = [e.ref for e in events]
        assert len(refs) == len(set(refs))  # nothing sent twice on one transport
        for view in ("v1", "v2"):
            in_view = [e.ref for e in events if e.view == view]
            assert in_view == sorted(in_view)  # in the order the user made them
        assert all(e.params == {"ref": e.ref} for e in events)
    # Every event the user made was answered, superseded or given up on, exactly once.
    for key in pushed:
        assert page.done[key] == 1, key
    assert set(page.done) == set(pushed)


def test_a_connection_lost_before_its_mount_finished_still_makes_the_next_mount_a_reconnect():
    """Auto-recover runs on every reconnect, including one that follows a connection
    which dropped while its join was in flight."""
    client = Client(Settings(), random=random.Random(1).random)
    client.add_view("v", "editor")
    effects = client.start(0)
    generation = next(e.generation for e in effects if isinstance(e, OpenTransport))
    client.opened(1, generation, {"v": ""})
    client.closed(2, generation, 1006)  # the join never got its answer
    effects = client.retry(3)
    generation = next(e.generation for e in effects if isinstance(e, OpenTransport))
    sent = [e for e in client.opened(4, generation, {"v": ""}) if isinstance(e, Send)]
    join = protocol.decode_client(sent[-1].frame)
    rendered = protocol.encode(protocol.Rendered(ref=join.ref, view="v", ops=[]))
    recover = [e for e in client.frame(5, generation, rendered) if isinstance(e, RecoverView)]
    assert recover == [RecoverView("v", "remount")]
    snapshot = [{"tag": "DIV", "auto": "restore", "index": 1, "params": {"doc_id": "1"}}]
    [batch] = [protocol.decode_client(e.frame) for e in client.recovered(6, "v", snapshot)]
    assert batch.events == [["restore", {"doc_id": "1"}]]


def test_a_mount_that_fails_on_the_server_reconnects_and_mounts_again():
    client = Client(Settings(), random=random.Random(2).random)
    client.add_view("v", "editor")
    generation = next(e.generation for e in client.start(0) if isinstance(e, OpenTransport))
    join = protocol.decode_client([e for e in client.opened(1, generation, {"v": ""}) if isinstance(e, Send)][-1].frame)
    failed = protocol.encode(protocol.Error(ref=join.ref, view="v", code="mount_failed", message="boom"))
    effects = client.frame(2, generation, failed)
    assert client.state == "reconnecting"
    assert any(isinstance(e, ReportError) and e.code == "mount_failed" for e in effects)
    assert any(isinstance(e, StartTimer) and e.key == "retry" for e in effects)


def test_a_refused_mount_waits_for_the_servers_close_instead_of_reconnecting():
    client = Client(Settings(), random=random.Random(3).random)
    client.add_view("v", "editor")
    generation = next(e.generation for e in client.start(0) if isinstance(e, OpenTransport))
    join = protocol.decode_client([e for e in client.opened(1, generation, {"v": ""}) if isinstance(e, Send)][-1].frame)
    refused = protocol.encode(protocol.Error(ref=join.ref, view="v", code="bad_token", message="not valid"))
    client.frame(2, generation, refused)
    assert client.state == "connected"  # until the close that follows
    client.closed(3, generation, 4001, "not valid")
    assert client.state == "failed"


def test_mounted_is_true_only_once_every_view_is_mounted_and_recovered():
    client = Client(Settings(), random=random.Random(4).random)
    client.add_view("a", "editor")
    client.add_view("b", "editor")
    generation = next(e.generation for e in client.start(0) if isinstance(e, OpenTransport))
    sent = [protocol.decode_client(e.frame) for e in client.opened(1, generation, {}) if isinstance(e, Send)]
    joins = [message for message in sent if isinstance(message, protocol.Join)]
    assert client.state == "connected" and not client.mounted()
    for join in joins:
        client.frame(2, generation, protocol.encode(protocol.Rendered(ref=join.ref, view=join.view, ops=[])))
        assert not client.mounted()  # recovery not sent yet
        client.recovered(3, join.view, [])
    assert client.mounted()
    client.closed(4, generation, 1006)
    assert not client.mounted()
