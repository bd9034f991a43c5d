"""sessions.py and stores.py through LiveConnection: a resume keeps the state, every event is
applied once whichever way the connection drops (and however far the page outruns the
server: the runtime's core against a real connection), only a session's current secret resumes
it, a resume takes the session from a connection that still holds it, and the stores keep
what they must within their bounds. Then pagehtml.py: HTML a page sends is measured before
any parser sees it, and a page too deep to parse slows no other client."""

import asyncio
import collections
import copy
import datetime
import json
import random
import sqlite3
import statistics
import time

import pytest
from djreconnect import constants, protocol
from djreconnect.client import Client
from djreconnect.connection import Settings as ConnectionSettings
from djreconnect.effects import FinishEvent, OpenTransport, RecoverView, ReportError
from djreconnect.effects import Send as ClientSend
from djreconnect.patch import OP_HTML
from djreconnect_server.demo import TEMPLATES
from djreconnect_server.demo.editor import EditorView
from djreconnect_server.diff import parse_fragment, parse_render
from djreconnect_server.live import LiveConnection
from djreconnect_server.pagehtml import VOID, PageHTMLRefused, check_page_html, measure_depth
from djreconnect_server.sessions import (
    EventRecord,
    Session,
    SessionRegistry,
    StateError,
    ViewState,
    new_token,
    secret_hash,
)
from djreconnect_server.settings import Settings
from djreconnect_server.signing import MountSigner
from djreconnect_server.stores import MemoryStore, SQLiteStore, StoreLimits
from djreconnect_server.templating import Templates
from djreconnect_server.views import LiveView, event_handler
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from .asyncrun import run
from .test_diff import COMMENT, TEXT, serialize
from .test_live import KEY, VIEW_ID, Page, assert_page_shows_render

RECORD_SIZE = constants.DEFAULT_EVENT_RECORD_SIZE


class CounterView(LiveView):
    """A small view: cheap to render, so that many events cost little."""

    template_name = "counter.html"

    def mount(self, request, **kwargs):
        self.count = 0

    @event_handler()
    def add(self, by: int = 1):
        self.count += by


class GatedView(CounterView):
    """A counter whose handler waits for the test to open ``gate`` (a server at work)."""

    view_name = "gated"
    gate = None
    entered = 0

    @event_handler()
    async def add_later(self, by: int = 1):
        type(self).entered += 1
        await type(self).gate.wait()
        self.count += by


class DatedView(CounterView):
    """A view whose state holds a datetime, which is not JSON, and a private cache."""

    view_name = "dated"

    def mount(self, request, **kwargs):
        CounterView.mount(self, request)
        self.opened = datetime.datetime(2024, 5, 17, 9, 30)
        self._cache = object()  # private: not state, never stored


class StoredDatedView(DatedView):
    """The same state, stored through dump_state/load_state."""

    view_name = "storeddated"

    def dump_state(self):
        return {"count": self.count, "opened": self.opened.isoformat()}

    def load_state(self, state):
        self.count = state["count"]
        self.opened = datetime.datetime.fromisoformat(state["opened"])


VIEWS = (EditorView, CounterView, GatedView, DatedView, StoredDatedView)


@pytest.fixture
def settings(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "djreconnect-0.1.0-py3-none-any.whl").write_bytes(b"")
    # A work budget no test here reaches (the budget is not what they test).
    return Settings(KEY, wheels_dir=wheels, max_work_per_second=10**6, max_work_burst=10**6)


@pytest.fixture
def templates(settings, tmp_path):
    extra = tmp_path / "templates"
    extra.mkdir()
    (extra / "counter.html").write_text('<div dj-view="{{ dj_view_id }}"><p id="count">{{ count }}</p></div>')
    return Templates(settings, [TEMPLATES, extra])


@pytest.fixture
def signer():
    return MountSigner(KEY)


@pytest.fixture
def env(settings, templates, signer):
    """What a LiveConnection is made of, but its session registry."""
    registry = {cls.view_name: (cls, True) for cls in VIEWS}
    return registry, templates, signer, settings


def build_view(name, state):
    """A store's view factory, as DJReconnect.build_view: None for a name no view has."""
    for cls in VIEWS:
        if cls.view_name == name:
            view = cls()
            view.load_state(state)
            return view
    return None


def connect(env, sessions):
    return LiveConnection(*env, request=None, sessions=sessions)


def send(live, message):
    """Feed one frame (a message, a dict or raw text) and decode what comes back."""
    if isinstance(message, protocol.Message):
        text = protocol.encode(message)
    else:
        text = message if isinstance(message, str) else json.dumps(message)
    return [protocol.decode_server(frame) for frame in run(live.receive(text))]


def hello(live, session=None, secret=None):
    [welcome] = send(live, protocol.Hello(ref=1, session=session, secret=secret))
    assert isinstance(welcome, protocol.Welcome), welcome
    return welcome


def click(ref, amount="1", view=VIEW_ID):
    return protocol.Event(ref=ref, view=view, handler="increment", params={"amount": amount})


def clicks(live, view=VIEW_ID):
    return live.views[view].view.clicks


_OWN = object()


class Tab:
    """A browser tab with the editor: its page, its session, and the secret it holds."""

    def __init__(self, env, sessions):
        self.env = env
        self.sessions = sessions
        self.page = Page(env[1], env[2])
        self.live = connect(env, sessions)
        welcome = hello(self.live)
        assert (welcome.resumed, welcome.reason) == (False, protocol.SESSION_NEW)
        self.session, self.secret = welcome.session, welcome.secret
        [rendered] = self.page.join(self.live, ref=2)
        assert rendered.version == 1 and not rendered.resumed
        self.version = rendered.version

    def click(self, ref, amount="1"):
        """A click whose reply the page applies."""
        [reply] = send(self.live, click(ref, amount))
        assert isinstance(reply, protocol.Reply) and reply.ref == ref, reply
        self.page.apply(reply.ops)
        self.version = reply.version
        return reply

    def drop(self):
        run(self.live.detach())

    def resume(self, version=_OWN, **join):
        """A new connection: Hello with the tab's secret, then the editor's Join; returns
        the Rendered. The page's version is the tab's unless ``version`` says otherwise."""
        self.live = connect(self.env, self.sessions)
        welcome = hello(self.live, self.session, self.secret)
        assert welcome.session == self.session and welcome.resumed and welcome.reason == "", welcome
        assert welcome.secret != self.secret  # rotated: the old one is spent
        self.secret = welcome.secret
        [rendered] = self.page.join(self.live, ref=2, version=self.version if version is _OWN else version, **join)
        assert isinstance(rendered, protocol.Rendered) and rendered.resumed, rendered
        self.page.apply(rendered.ops)
        self.version = rendered.version
        return rendered


# --- resume --------------------------------------------------------------------------


def test_a_resume_keeps_the_state_and_patches_from_what_the_page_shows(env):
    sessions = SessionRegistry(MemoryStore())
    tab = Tab(env, sessions)
    shown = {tab.version: copy.deepcopy(tab.page.root)}  # the page at each render
    for ref in (3, 4, 5):
        tab.click(ref)
        shown[tab.version] = copy.deepcopy(tab.page.root)
    assert sorted(shown) == [1, 2, 3, 4]
    view = tab.live.views[VIEW_ID].view
    tab.drop()
    assert tab.live.session is None and len(sessions.store) == 1 and sessions.attached == {}

    # The page has the last render: nothing to patch, nothing remounted.
    rendered = tab.resume()
    assert rendered == protocol.Rendered(ref=2, view=VIEW_ID, ops=[], version=4, resumed=True)
    assert tab.live.views[VIEW_ID].view is view and clicks(tab.live) == 3
    assert_page_shows_render(tab.page, tab.live)

    # The page missed the last reply: patched from the render before, which the server
    # keeps, whatever HTML the page sends.
    tab.drop()
    tab.page.root = copy.deepcopy(shown[3])
    rendered = tab.resume(version=3, html="<p>not what the page shows</p>")
    assert rendered.ops and rendered.version == 4
    assert_page_shows_render(tab.page, tab.live)

    # A render the server no longer has (or none): patched from the page's own HTML.
    for version in (1, None):
        tab.drop()
        tab.page.root = copy.deepcopy(shown[1])
        rendered = tab.resume(version=version)
        assert rendered.ops and rendered.version == 4
        assert_page_shows_render(tab.page, tab.live)
    assert clicks(tab.live) == 3 and tab.live.views[VIEW_ID].view is view


def test_a_resume_mounts_afresh_what_the_session_does_not_have(env, templates, signer):
    sessions = SessionRegistry(MemoryStore())
    tab = Tab(env, sessions)
    tab.click(3)
    [mounted] = Page(templates, signer, CounterView).join(tab.live, ref=4, view="c")
    assert isinstance(mounted, protocol.Rendered)
    [added] = send(tab.live, protocol.Event(ref=5, view="c", handler="add", params={"by": 2}))
    assert added.ref == 5 and tab.live.views["c"].view.count == 2
    tab.drop()
    tab.live = connect(env, sessions)
    tab.secret = hello(tab.live, tab.session, tab.secret).secret
    # A view the session never had: mounted afresh, whatever version the page claims.
    [fresh] = Page(templates, signer).join(tab.live, ref=2, view="editor-2", version=2)
    assert isinstance(fresh, protocol.Rendered) and not fresh.resumed and fresh.version == 1
    assert clicks(tab.live, "editor-2") == 0
    # A view id the session has, under another view's name: a fresh editor, not the counter.
    [other] = Page(templates, signer).join(tab.live, ref=3, view="c", version=2)
    assert not other.resumed and clicks(tab.live, "c") == 0
    # The session's own view is resumed all the same.
    [rendered] = tab.page.join(tab.live, ref=4, version=tab.version)
    assert rendered.resumed and rendered.ops == [] and clicks(tab.live) == 1


def test_hello_comes_first_and_once(env):
    sessions = SessionRegistry(MemoryStore())
    live = connect(env, sessions)
    session = hello(live).session
    [error] = send(live, protocol.Hello(ref=2))
    assert (error.code, error.ref) == ("bad_frame", 2)
    assert live.session.id == session
    # A connection that sends no Hello gets a session with its first Join; a Hello then
    # is refused too.
    late = connect(env, sessions)
    [rendered] = Page(env[1], env[2]).join(late)
    assert isinstance(rendered, protocol.Rendered) and late.session is not None
    [error] = send(late, protocol.Hello(ref=3, session=session, secret="whatever"))
    assert error.code == "bad_frame" and late.session.id != session


# --- exactly once ----------------------------------------------------------------------


def test_an_event_lost_before_it_reached_the_server_is_applied_once_when_sent_again(env):
    sessions = SessionRegistry(MemoryStore())
    tab = Tab(env, sessions)
    tab.click(3)
    # Click 4 is sent; the connection drops before it arrives.
    tab.drop()
    assert tab.resume().ops == []
    reply = tab.click(4)  # the runtime sends it again
    assert reply.ops and clicks(tab.live) == 2
    # The reply to the resend is lost too: a second resend is answered, not applied.
    [again] = send(tab.live, click(4))
    assert again == protocol.Reply(ref=4, view=VIEW_ID, ops=[], version=tab.version)
    assert clicks(tab.live) == 2
    assert_page_shows_render(tab.page, tab.live)


def test_an_event_applied_whose_reply_was_lost_is_answered_from_the_record(env):
    sessions = SessionRegistry(MemoryStore())
    tab = Tab(env, sessions)
    tab.click(3)
    before = tab.version
    # Click 4 is applied; its reply never reaches the page.
    [lost] = send(tab.live, click(4))
    assert isinstance(lost, protocol.Reply) and lost.ops
    tab.drop()
    rendered = tab.resume()  # the page says it has the render before the click
    assert rendered.ops and rendered.version == before + 1
    assert_page_shows_render(tab.page, tab.live)
    [answer] = send(tab.live, click(4))  # sent again: it got no reply
    assert answer == protocol.Reply(ref=4, view=VIEW_ID, ops=[], version=before + 1)
    assert clicks(tab.live) == 2


def test_an_event_at_work_when_the_resume_comes_is_applied_once(env, templates, signer):
    sessions = SessionRegistry(MemoryStore())
    page = Page(templates, signer, GatedView)

    async def scenario():
        old = connect(env, sessions)
        [welcome] = [protocol.decode_server(f) for f in await old.receive(protocol.encode(protocol.Hello(ref=1)))]
        join = {"t": "join", "ref": 2, "view": "g", "name": "gated", "token": page.token, "html": ""}
        await old.receive(json.dumps(join))
        GatedView.gate, GatedView.entered = asyncio.Event(), 0
        event = protocol.encode(protocol.Event(ref=3, view="g", handler="add_later", params={"by": 5}))
        at_work = asyncio.ensure_future(old.receive(event))
        while not GatedView.entered:
            await asyncio.sleep(0)
        # The page resumes while the server still works on the event.
        new = connect(env, sessions)
        resuming = asyncio.ensure_future(
            new.receive(protocol.encode(protocol.Hello(ref=1, session=welcome.session, secret=welcome.secret)))
        )
        await asyncio.sleep(0.05)
        assert not resuming.done()  # the resume waits for the frame being handled
        GatedView.gate.set()
        [old_answer] = [protocol.decode_server(f) for f in await at_work]  # it never reaches the page
        [resumed] = [protocol.decode_server(f) for f in await resuming]
        assert resumed.resumed and old.session is None
        version = old_answer.version
        join["version"] = version - 1  # the page never saw the event's render
        [rendered] = [protocol.decode_server(f) for f in await new.receive(json.dumps(join))]
        assert rendered.resumed and rendered.ops and rendered.version == version
        [answer] = [protocol.decode_server(f) for f in await new.receive(event)]
        assert answer == protocol.Reply(ref=3, view="g", ops=[], version=version)
        assert new.views["g"].view.count == 5 and GatedView.entered == 1

    run(scenario())


def test_an_id_used_again_for_another_event_is_refused(env):
    sessions = SessionRegistry(MemoryStore())
    tab = Tab(env, sessions)
    tab.click(3)
    version = tab.version
    for frame in (
        click(3, amount="5"),  # the same handler, other params
        protocol.Event(ref=3, view=VIEW_ID, handler="validate_title", params={"value": "x"}),
        protocol.Batch(ref=3, view=VIEW_ID, events=[["increment", {"amount": "2"}]]),
    ):
        [error] = send(tab.live, frame)
        assert (error.ref, error.view, error.code) == (3, VIEW_ID, protocol.ID_REUSED), error
        assert error.message
    # Nothing was applied, and so after a resume.
    assert clicks(tab.live) == 1 and tab.live.views[VIEW_ID].view.title == ""
    assert tab.live.views[VIEW_ID].version == version
    tab.drop()
    tab.resume()
    [error] = send(tab.live, click(3, amount="5"))
    assert error.code == protocol.ID_REUSED and clicks(tab.live) == 1


def test_a_repeated_batch_is_answered_from_the_record(env):
    sessions = SessionRegistry(MemoryStore())
    tab = Tab(env, sessions)
    batch = protocol.Batch(ref=3, view=VIEW_ID, events=[["increment", {}], ["set_category", {"value": "nope"}]])
    error, reply = send(tab.live, batch)
    assert (error.code, error.ref) == ("bad_params", 3) and reply.ref == 3 and reply.ops
    # Sent again: the same refusal, the same reply but no ops, nothing applied.
    again_error, again_reply = send(tab.live, batch)
    assert (again_error.code, again_error.message) == (error.code, error.message)
    assert again_reply == protocol.Reply(ref=3, view=VIEW_ID, ops=[], version=reply.version)
    assert clicks(tab.live) == 1


def test_an_id_older_than_the_record_is_refused_as_expired(env, templates, signer):
    sessions = SessionRegistry(MemoryStore())
    live = connect(env, sessions)
    hello(live)
    Page(templates, signer, CounterView).join(live, ref=1, view="c")

    def add(ref):
        return protocol.Event(ref=ref, view="c", handler="add", params={"by": 1})

    first = 10
    for ref in range(first, first + RECORD_SIZE + 1):
        [reply] = send(live, add(ref))
        assert isinstance(reply, protocol.Reply) and reply.ref == ref
    count = live.views["c"].view.count
    assert count == RECORD_SIZE + 1
    record = live.session.record
    assert len(record.entries) == RECORD_SIZE
    # The first id is forgotten: it may have been applied, so it is refused, not applied.
    [error] = send(live, add(first))
    assert (error.ref, error.code) == (first, protocol.ID_EXPIRED) and error.message
    # The next is still remembered, and answered; a new id is applied.
    [repeat] = send(live, add(first + 1))
    assert repeat == protocol.Reply(ref=first + 1, view="c", ops=[], version=live.views["c"].version)
    assert live.views["c"].view.count == count
    [reply] = send(live, add(first + RECORD_SIZE + 1))
    assert reply.ops and live.views["c"].view.count == count + 1
    assert len(record.entries) == RECORD_SIZE


class PageRuntime:
    """The runtime's core (``djreconnect.client.Client``) on a page with one counter view,
    wired to LiveConnections of ``sessions``: what it sends is applied at once, and the
    replies reach it only when the test delivers them (a slow link, or a slow server)."""

    def __init__(self, env, sessions, templates, signer):
        self.env, self.sessions = env, sessions
        self.page = Page(templates, signer, CounterView)
        self.client = Client(ConnectionSettings(), random=random.Random(7).random)
        self.client.add_view("c", self.page.name, self.page.token)
        self.now = 0
        self.live = None
        self.generation = None
        self.undelivered = []  # frames the server wrote that the page has not received
        self.errors = []  # codes of the ReportErrors the page was told
        self.finished = collections.Counter()  # ref -> FinishEvents
        self.open()

    def run(self, effects):
        for effect in effects:
            if isinstance(effect, OpenTransport):
                self.generation = effect.generation
            elif isinstance(effect, ClientSend):
                self.undelivered.extend(run(self.live.receive(effect.frame)))
            elif isinstance(effect, RecoverView):
                self.run(self.client.recovered(self.now, effect.view, []))
            elif isinstance(effect, FinishEvent):
                self.finished[effect.ref] += 1
            elif isinstance(effect, ReportError):
                self.errors.append(effect.code)

    def open(self):
        """A new connection (the first, or a resume after a drop), with its joins answered."""
        self.now += 60_000  # past any retry delay
        if self.generation is None:
            self.run(self.client.start(self.now))
        else:
            self.run(self.client.timer(self.now, "retry"))
        self.live = connect(self.env, self.sessions)
        self.run(self.client.opened(self.now, self.generation, {"c": serialize(self.page.root.children)}))
        self.deliver()

    def deliver(self, count=None):
        """Let ``count`` of the server's frames reach the page (all, and what they cause)."""
        while self.undelivered and count != 0:
            self.run(self.client.frame(self.now, self.generation, self.undelivered.pop(0)))
            count = None if count is None else count - 1

    def drop(self):
        self.run(self.client.closed(self.now, self.generation, 1006))
        self.undelivered = []  # lost with the connection
        run(self.live.detach())


def test_a_page_clicking_faster_than_replies_come_has_each_click_applied_once_after_a_resume(env, templates, signer):
    """Ten clicks a step against one reply a step: the page keeps no more events in flight
    than the server's exactly-once record holds, so after a drop the resume answers every
    one it sends again from the record (none expired), and each click kept counts once."""
    sessions = SessionRegistry(MemoryStore())
    tab = PageRuntime(env, sessions, templates, signer)
    pushed = []
    for step in range(40):
        for _ in range(10):
            ref = tab.client.reserve_ref()
            tab.run(tab.client.push_event(tab.now, "c", "click", "add", {"by": 1}, ref))
            pushed.append(ref)
        tab.deliver(1)
        assert len(tab.client.views["c"].in_flight) <= constants.MAX_IN_FLIGHT
    assert len(tab.client.views["c"].in_flight) == constants.MAX_IN_FLIGHT  # the page outran the server
    refused = tab.errors.count("queue_full")
    assert refused > 0 and set(tab.errors) == {"queue_full"}  # reported, one by one
    tab.drop()
    tab.open()  # resumes: the unanswered events go again, then what waited
    assert tab.live.session is not None and tab.client.views["c"].mode == "resume"
    assert protocol.ID_EXPIRED not in tab.errors
    assert tab.client.views["c"].in_flight == [] and tab.client.queue == []
    assert tab.live.views["c"].view.count == len(pushed) - refused
    assert all(tab.finished[ref] == 1 for ref in pushed)


# --- secrets -------------------------------------------------------------------------


def test_only_the_current_secret_resumes_a_session(env):
    sessions = SessionRegistry(MemoryStore())
    victim = Tab(env, sessions)
    victim.click(3)
    victim.click(4)
    spent = victim.secret
    victim.drop()
    victim.resume()  # rotates the secret: ``spent`` works no more
    victim.drop()
    other = Tab(env, sessions)  # another session, attached
    attempts = {
        "a wrong secret": (victim.session, new_token()),
        "a spent secret": (victim.session, spent),
        "another session's secret": (victim.session, other.secret),
        "the hash of its secret": (victim.session, secret_hash(victim.secret)),
        "no secret": (victim.session, None),
        "an unknown session": (new_token(), victim.secret),
    }
    given = set()
    for what, (session_id, secret) in attempts.items():
        live = connect(env, sessions)
        welcome = hello(live, session_id, secret)
        assert (welcome.resumed, welcome.reason) == (False, protocol.SESSION_UNKNOWN), what
        assert welcome.session not in {victim.session, other.session} | given, what
        given.add(welcome.session)
        assert live.views == {}
        [error] = send(live, click(9))  # nothing of the victim's to act on
        assert error.code == "not_mounted", what
        run(live.detach())
    # The other session was not disturbed ...
    assert other.live.session is not None and other.live.close_code is None
    other.click(5)
    # ... and the victim's session is whole, and resumed by its own secret.
    assert victim.resume().ops == []
    assert clicks(victim.live) == 2 and victim.live.views[VIEW_ID].version == 3


def test_a_wrong_secret_does_not_take_an_attached_session_over(env):
    sessions = SessionRegistry(MemoryStore())
    victim = Tab(env, sessions)
    kicked = []
    victim.live.kick = lambda code, reason: kicked.append(code)
    welcome = hello(connect(env, sessions), victim.session, new_token())
    assert not welcome.resumed and welcome.session != victim.session
    assert kicked == [] and victim.live.close_code is None
    assert sessions.attached[victim.session].connection is victim.live
    victim.click(3)


# --- takeover --------------------------------------------------------------------------


def test_a_resume_takes_the_session_from_a_connection_still_holding_it(env):
    sessions = SessionRegistry(MemoryStore())
    tab = Tab(env, sessions)
    tab.click(3)
    old = tab.live
    kicked = []
    old.kick = lambda code, reason: kicked.append((code, reason))
    # A half-open drop: the page reconnects while the server still holds the old connection.
    assert tab.resume().ops == []
    assert old.session is None and old.views == {}
    assert old.close_code == constants.CLOSE_NORMAL and old.close_reason
    assert kicked == [(constants.CLOSE_NORMAL, old.close_reason)]
    assert send(old, click(9)) == []  # the old connection answers nothing more
    run(old.detach())  # its transport ends: the session stays with the new one
    assert sessions.attached[tab.session].connection is tab.live and len(sessions.store) == 0
    tab.click(4)
    assert clicks(tab.live) == 2


# --- stores: memory -------------------------------------------------------------------


class Clock:
    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


def stored_session(html="<p>0</p>", clicks=0):
    """A session with one editor view, and its secret."""
    session = Session()
    secret = session.rotate_secret()
    view = EditorView()
    view.mount(None)
    view.clicks = clicks
    session.views[VIEW_ID] = ViewState("editor", view, html, 1)
    return session, secret


def taken(store, session, secret):
    return run(store.take(session.id, secret))


def test_memory_store_keeps_a_session_for_its_retention_only():
    clock = Clock()
    store = MemoryStore(StoreLimits(retention_s=10), clock=clock)
    session, secret = stored_session()
    run(store.keep(session))
    clock.now = 9.5
    assert taken(store, session, "wrong") is None and len(store) == 1  # a wrong secret takes nothing
    assert taken(store, session, secret) is session and len(store) == 0
    run(store.keep(session))  # kept again: retained from now
    clock.now = 19.25
    assert len(store) == 1 and taken(store, session, "wrong") is None
    clock.now = 19.5
    assert taken(store, session, secret) is None and len(store) == 0 and store.bytes == 0


def test_memory_store_evicts_the_least_recently_kept_past_its_count():
    clock = Clock()
    store = MemoryStore(StoreLimits(max_sessions=3), clock=clock)
    kept = [stored_session() for _ in range(5)]
    for session, _ in kept[:4]:
        clock.now += 1
        run(store.keep(session))
    assert len(store) == 3 and store.evicted == 1
    assert taken(store, *kept[0]) is None
    # Taken and kept again, the second is the most recent: the third goes next.
    assert taken(store, *kept[1]) is kept[1][0]
    run(store.keep(kept[1][0]))
    run(store.keep(kept[4][0]))
    assert len(store) == 3 and store.evicted == 2
    assert taken(store, *kept[2]) is None
    for session, secret in (kept[3], kept[1], kept[4]):
        assert taken(store, session, secret) is session


def test_memory_store_evicts_the_least_recently_kept_past_its_bytes():
    small, small_secret = stored_session("<p>%s</p>" % ("s" * 1000))
    big, big_secret = stored_session("<p>%s</p>" % ("b" * 5000))
    # Session.size() measures what a session holds: its renders count byte for byte.
    assert big.size() - small.size() == 4000
    other, other_secret = stored_session("<p>%s</p>" % ("o" * 1000))
    store = MemoryStore(StoreLimits(max_bytes=small.size() + big.size()))
    run(store.keep(small))
    run(store.keep(big))
    assert len(store) == 2 and store.bytes == small.size() + big.size()
    run(store.keep(other))  # one byte budget for the three: the oldest goes
    assert store.evicted == 1 and store.bytes == big.size() + other.size() <= store.limits.max_bytes
    assert taken(store, small, small_secret) is None
    assert taken(store, big, big_secret) is big and taken(store, other, other_secret) is other
    # A session bigger than the whole budget is not kept at all.
    huge, huge_secret = stored_session("<p>%s</p>" % ("h" * 20000))
    run(store.keep(huge))
    assert len(store) == 0 and store.bytes == 0 and taken(store, huge, huge_secret) is None


def test_a_session_bigger_than_the_whole_budget_evicts_no_other():
    kept, secret = stored_session()
    huge, _ = stored_session("<p>%s</p>" % ("h" * 20000))
    store = MemoryStore(StoreLimits(max_bytes=kept.size() * 2))
    run(store.keep(kept))
    run(store.keep(huge))
    assert taken(store, kept, secret) is kept


# --- stores: SQLite ----------------------------------------------------------------------


def test_sqlite_store_resumes_a_session_after_a_restart(env, tmp_path):
    path = str(tmp_path / "sessions.db")
    sessions = SessionRegistry(SQLiteStore(path, build_view))
    tab = Tab(env, sessions)
    for ref in (3, 4, 5):
        tab.click(ref)
    tab.live.views[VIEW_ID].view.tags = ["web"]  # any JSON state comes back
    before = copy.deepcopy(tab.live.views[VIEW_ID].view.state())
    run(sessions.close())  # the process stops: its sessions are kept, the file closed

    tab.sessions = SessionRegistry(SQLiteStore(path, build_view))  # the process starts again
    assert tab.resume().ops == []
    view = tab.live.views[VIEW_ID].view
    assert view.state() == before and clicks(tab.live) == 3
    # The exactly-once record came back too.
    [answer] = send(tab.live, click(5))
    assert answer == protocol.Reply(ref=5, view=VIEW_ID, ops=[], version=tab.version)
    tab.click(6)
    assert clicks(tab.live) == 4
    assert_page_shows_render(tab.page, tab.live)


def test_sqlite_store_keeps_what_was_acknowledged_through_a_crash(env, tmp_path):
    path = str(tmp_path / "sessions.db")
    tab = Tab(env, SessionRegistry(SQLiteStore(path, build_view)))
    tab.click(3)
    tab.click(4)
    # The process dies: no detach, no close. Every reply was preceded by a save.
    tab.sessions = SessionRegistry(SQLiteStore(path, build_view))
    assert tab.resume().ops == []
    assert clicks(tab.live) == 2
    [answer] = send(tab.live, click(4))
    assert answer.ops == [] and clicks(tab.live) == 2


def test_sqlite_store_keeps_an_attached_session_idle_past_the_retention_through_a_crash(env, tmp_path):
    # A page stays connected longer than the retention without sending anything; other
    # sessions come and go meanwhile (each write clears expired rows); then the process dies.
    clock = Clock(1000.0)
    path = str(tmp_path / "sessions.db")
    limits = StoreLimits(retention_s=10)
    tab = Tab(env, SessionRegistry(SQLiteStore(path, build_view, limits, clock=clock)))
    tab.click(3)
    clock.now = 1500.0
    store = tab.sessions.store
    run(store.keep(stored_session()[0]))  # another page's session is kept: expired rows go
    assert len(store) == 1  # the attached one is not counted as retained, and not dropped
    # The process starts again: what was attached when it died is retained from now.
    clock.now = 1600.0
    tab.sessions = SessionRegistry(SQLiteStore(path, build_view, limits, clock=clock))
    assert tab.resume().ops == []
    assert clicks(tab.live) == 1


def test_sqlite_store_retains_what_a_crashed_process_had_attached_for_the_retention_only(tmp_path):
    clock = Clock(1000.0)
    path = str(tmp_path / "sessions.db")
    limits = StoreLimits(retention_s=10)
    store = SQLiteStore(path, build_view, limits, clock=clock)
    session, secret = stored_session(clicks=2)
    run(store.save(session))  # attached, then the process dies
    clock.now = 2000.0
    again = SQLiteStore(path, build_view, limits, clock=clock)
    assert len(again) == 1  # retained again, counted against the bounds
    clock.now = 2010.0
    assert taken(again, session, secret) is None  # retention_s after the restart, it is gone


def test_sqlite_store_waiting_for_its_file_does_not_stall_the_event_loop(tmp_path):
    # Another program holds the file's write lock for a while (a backup, a checkpoint on a
    # slow disk): the save waits for it, the rest of the process keeps running.
    path = str(tmp_path / "sessions.db")
    store = SQLiteStore(path, build_view)
    session, _ = stored_session(clicks=1)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")

    async def scenario():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        running = asyncio.create_task(ticker())
        saving = asyncio.create_task(store.save(session))
        await asyncio.sleep(0.5)
        assert not saving.done()  # still waiting for the lock
        ticked = ticks
        other.execute("COMMIT")  # released by this very loop: it must still be running
        await asyncio.wait_for(saving, 5)
        running.cancel()
        return ticked

    assert run(scenario()) >= 20  # the loop ran all along (50 ticks of 10 ms at best)
    other.close()
    rows = store.db.execute("SELECT attached FROM djreconnect_sessions WHERE id = ?", (session.id,)).fetchall()
    assert rows == [(1,)]
    run(store.close())


def test_sqlite_store_expires_a_session_after_its_retention(tmp_path):
    clock = Clock(1000.0)
    path = str(tmp_path / "sessions.db")
    store = SQLiteStore(path, build_view, StoreLimits(retention_s=10), clock=clock)
    first, first_secret = stored_session(clicks=4)
    second, second_secret = stored_session(clicks=5)
    run(store.keep(first))
    run(store.keep(second))
    clock.now = 1009.9
    assert taken(store, first, "wrong") is None
    back = taken(store, first, first_secret)
    assert back is not None and back.views[VIEW_ID].view.clicks == 4
    clock.now = 1010.0
    assert taken(store, second, second_secret) is None
    run(store.keep(stored_session()[0]))  # a write clears expired rows from the file
    rows = store.db.execute("SELECT COUNT(*) FROM djreconnect_sessions WHERE id = ?", (second.id,)).fetchone()
    assert rows == (0,)


def stored_bytes(session):
    return len(json.dumps(session.to_dict(), separators=(",", ":")))


def test_sqlite_store_evicts_the_least_recently_kept_past_its_count_and_bytes(tmp_path):
    clock = Clock(1000.0)
    store = SQLiteStore(str(tmp_path / "count.db"), build_view, StoreLimits(max_sessions=2), clock=clock)
    kept = [stored_session() for _ in range(3)]
    for session, _ in kept:
        clock.now += 1
        run(store.keep(session))
    assert len(store) == 2 and store.evicted == 1
    assert taken(store, *kept[0]) is None
    assert all(taken(store, *pair) is not None for pair in kept[1:])

    small, small_secret = stored_session("<p>%s</p>" % ("s" * 1000))
    big, big_secret = stored_session("<p>%s</p>" % ("b" * 5000))
    other, other_secret = stored_session("<p>%s</p>" % ("o" * 1000))
    limits = StoreLimits(max_bytes=stored_bytes(small) + stored_bytes(big))
    store = SQLiteStore(str(tmp_path / "bytes.db"), build_view, limits, clock=clock)
    for session in (small, big):
        clock.now += 1
        run(store.keep(session))
    assert len(store) == 2 and store.evicted == 0
    clock.now += 1
    run(store.keep(other))
    assert len(store) == 2 and store.evicted == 1
    assert taken(store, small, small_secret) is None
    assert taken(store, big, big_secret) is not None and taken(store, other, other_secret) is not None


def test_sqlite_store_keeps_others_when_a_session_is_bigger_than_the_whole_budget(tmp_path):
    clock = Clock(1000.0)
    kept, secret = stored_session()
    huge, _ = stored_session("<p>%s</p>" % ("h" * 20000))
    limits = StoreLimits(max_bytes=stored_bytes(kept) * 2)
    store = SQLiteStore(str(tmp_path / "sessions.db"), build_view, limits, clock=clock)
    run(store.keep(kept))
    clock.now += 1
    run(store.keep(huge))
    assert taken(store, kept, secret) is not None


def test_sqlite_store_keeps_a_hash_of_the_secret_never_the_secret(tmp_path):
    path = tmp_path / "sessions.db"
    store = SQLiteStore(str(path), build_view)
    session, secret = stored_session(clicks=7)
    run(store.keep(session))
    files = b"".join(p.read_bytes() for p in tmp_path.glob("sessions.db*"))  # the file, its WAL
    assert session.id.encode() in files  # the session is in there ...
    assert secret.encode() not in files  # ... but not its secret
    with sqlite3.connect(str(path)) as db:
        (stored,) = db.execute("SELECT secret FROM djreconnect_sessions WHERE id = ?", (session.id,)).fetchone()
    assert stored == secret_hash(secret) != secret
    assert taken(store, session, stored) is None  # the hash is no secret
    assert taken(store, session, secret).views[VIEW_ID].view.clicks == 7


def test_a_view_whose_state_is_not_json_is_refused_naming_the_view_and_attribute(tmp_path):
    store = SQLiteStore(str(tmp_path / "sessions.db"), build_view)
    session = Session()
    secret = session.rotate_secret()
    view = DatedView()
    view.mount(None)
    session.views["d"] = ViewState("dated", view, "<p>0</p>", 1)
    with pytest.raises(StateError) as refused:
        run(store.keep(session))
    message = str(refused.value)
    assert "DatedView.opened" in message and "dump_state" in message
    assert "_cache" not in message
    assert len(store) == 0 and taken(store, session, secret) is None  # nothing half written
    # The default is the public attributes; a view with other state says how to store it.
    stored = StoredDatedView()
    stored.mount(None)
    stored.count = 3
    session.views["d"] = ViewState("storeddated", stored, "<p>3</p>", 1)
    run(store.keep(session))
    back = taken(store, session, secret).views["d"].view
    assert isinstance(back, StoredDatedView) and (back.count, back.opened) == (3, stored.opened)


def test_a_page_is_told_when_its_views_state_cannot_be_stored(env, templates, signer, tmp_path):
    sessions = SessionRegistry(SQLiteStore(str(tmp_path / "sessions.db"), build_view))
    live = connect(env, sessions)
    hello(live)
    rendered, refused = Page(templates, signer, DatedView).join(live, ref=2, view="d")
    # The view is served; the page hears, in words naming the view and attribute, that
    # its state will not outlive this process.
    assert isinstance(rendered, protocol.Rendered) and rendered.ref == 2
    assert refused.code == "state_not_storable" and "DatedView.opened" in refused.message
    reply, refused_again = send(live, protocol.Event(ref=3, view="d", handler="add", params={"by": 2}))
    assert reply.ref == 3 and reply.ops and live.views["d"].view.count == 2
    assert refused_again.code == "state_not_storable"


# --- the exactly-once record --------------------------------------------------------------

record_steps = st.lists(
    st.one_of(
        st.tuples(st.just("event"), st.integers(min_value=-2, max_value=30), st.sampled_from("abc")),
        st.tuples(st.just("reload"), st.none(), st.none()),  # stored and read back, as a store does
    ),
    max_size=120,
)


@hypothesis_settings(max_examples=400, deadline=None)
@given(limit=st.integers(min_value=1, max_value=8), steps=record_steps)
def test_the_record_tells_new_ids_once_repeats_by_digest_and_forgotten_ids_as_expired(limit, steps):
    record = EventRecord(limit)
    added = {}  # id -> (digest, errors) it was first seen with
    forgotten = set()
    for position, (kind, ref, digest) in enumerate(steps):
        if kind == "reload":
            record = EventRecord.from_list(json.loads(json.dumps(record.to_list())), record.forgotten_up_to, limit)
            continue
        verdict, errors = record.check(ref, digest)
        if verdict == EventRecord.NEW:
            assert ref not in added, "id %d reported new twice" % ref
            errors = [["bad_params", "step %d" % position]] if position % 3 == 0 else []
            added[ref] = (digest, errors)
            record.add(ref, digest, errors)
        elif verdict == EventRecord.REPEAT:
            assert ref not in forgotten and added[ref] == (digest, errors)
        elif verdict == EventRecord.REUSED:
            assert ref not in forgotten and added[ref][0] != digest and errors == []
        else:
            assert verdict == EventRecord.EXPIRED
            assert ref not in added or ref in forgotten
        assert ref not in forgotten or verdict == EventRecord.EXPIRED
        forgotten |= set(added) - set(record.entries)
        assert len(record.entries) <= limit


# --- page HTML ------------------------------------------------------------------------------


def parsed_depth(html):
    """How deep the server's HTML parser nests ``html``: the longest chain of elements
    that can hold others (a void element is a leaf: it never nests)."""

    def depth(nodes):
        deepest = 0
        for node in nodes:
            if node.tag in (TEXT, COMMENT) or node.tag in VOID:
                continue
            deepest = max(deepest, 1 + depth(list(node.iter(include_text=True))))
        return deepest

    return depth(parse_fragment(html).nodes)


# Elements of every kind the parser treats specially (auto-closed, formatting, raw text,
# foreign content, select content), nested as they are written.
NESTED_TAGS = (
    "div p span b i a em strong u s code nobr font ul ol li dl dt dd h1 h2 pre section article nav"
    " form label fieldset legend button select option optgroup textarea template script title noscript"
    " object marquee ruby rt rp center details summary blockquote figure iframe xmp svg math mi desc"
    " foreignObject"
).split()
leaves = st.sampled_from(["x", " ", "<br>", "<img src=a>", "<input>", "<hr>", "<!-- c -->", "&amp;"])


def nested_html(tags):
    def element(children):
        return st.tuples(st.sampled_from(tags), st.lists(children, max_size=4)).map(
            lambda parts: "<%s>%s</%s>" % (parts[0], "".join(parts[1]), parts[0])
        )

    return st.lists(st.recursive(leaves, element, max_leaves=40), max_size=4).map("".join)


@hypothesis_settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html=nested_html(NESTED_TAGS), limit=st.integers(min_value=1, max_value=12))
def test_measured_depth_is_never_below_the_parsers(html, limit):
    real = parsed_depth(html)
    assert measure_depth(html, 10**6) >= real
    # Stopped at ``limit``, it still says "deeper" whenever the parser nests deeper.
    assert measure_depth(html, limit) >= min(real, limit + 1)


# Tag soup: stray and misplaced end tags, tables, omitted end tags.
SOUP_TAGS = NESTED_TAGS + "table tbody tr td th caption".split()
soup = st.lists(
    st.one_of(
        leaves,
        st.sampled_from(SOUP_TAGS).map("<{}>".format),
        st.sampled_from(SOUP_TAGS).map("</{}>".format),
    ),
    max_size=60,
).map("".join)


@hypothesis_settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html=soup)
@example(html="<optgroup><div></optgroup>" * 3)
@example(html="<table><td>" * 3)
def test_measured_depth_is_never_below_the_parsers_in_tag_soup(html):
    assert measure_depth(html, 10**6) >= parsed_depth(html)


@pytest.mark.parametrize("unit, count", [("<optgroup><div></optgroup>", 200), ("<table><td>", 128)])
def test_html_nested_past_the_bound_is_refused_however_it_is_written(unit, count):
    html = unit * count
    assert parsed_depth(html) > 256
    with pytest.raises(PageHTMLRefused, match="nested deeper"):
        check_page_html(html, 1 << 20, 256)


def median(samples):
    return statistics.median(samples)


def p99(samples):
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def test_a_page_too_deep_to_parse_is_rendered_whole_and_slows_no_one(tmp_path, capsys):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "djreconnect-0.1.0-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "counter.html").write_text('<div dj-view="{{ dj_view_id }}"><p>{{ count }}</p></div>')
    settings = Settings(KEY, wheels_dir=wheels)  # the default limits: 1 MiB frames, depth 256, work budget
    templates = Templates(settings, [TEMPLATES, tmp_path])
    env = ({cls.view_name: (cls, True) for cls in (EditorView, CounterView)}, templates, MountSigner(KEY), settings)
    sessions = SessionRegistry(MemoryStore())
    nested = 50_000
    pad = settings.max_frame_bytes - 200 - nested * len("<div></div>")
    deep = "<div>" * nested + "x" * pad + "</div>" * nested
    attack = json.dumps({"t": "join", "ref": 1, "view": "deep", "name": "editor", "html": deep})
    assert settings.max_frame_bytes - 200 < len(attack) <= settings.max_frame_bytes  # a 1 MiB frame
    rounds, events = 4, 300

    async def round_trips(live, first_ref):
        """A brisk user's clicks (not a flood): how long each takes to be answered."""
        times = []
        for ref in range(first_ref, first_ref + events):
            started = time.perf_counter()
            frames = await live.receive(protocol.encode(protocol.Event(ref=ref, view="c", handler="add")))
            times.append(time.perf_counter() - started)
            assert protocol.decode_server(frames[0]).ref == ref
            await asyncio.sleep(0.001)
        return times

    async def deep_joins():
        """Joins of the deep page, each on a new connection (a new work budget)."""
        answers = []
        for _ in range(rounds):
            live = LiveConnection(*env, request=None, sessions=sessions)
            started = time.perf_counter()
            [frame] = await live.receive(attack)
            answers.append((time.perf_counter() - started, protocol.decode_server(frame), live))
        return answers

    async def scenario():
        bystander = LiveConnection(*env, request=None, sessions=sessions)
        await bystander.receive(json.dumps({"t": "join", "ref": 1, "view": "c", "name": "counter", "html": ""}))
        alone = await round_trips(bystander, 10)
        beside, answers = await asyncio.gather(round_trips(bystander, 10 + events), deep_joins())
        assert bystander.views["c"].view.count == 2 * events
        return alone, beside, answers

    alone, beside, answers = run(scenario())
    for took, rendered, live in answers:
        # The page's HTML was not parsed: the view's root is replaced by the render.
        assert isinstance(rendered, protocol.Rendered), rendered
        current = parse_render(templates.render(live.views["deep"].view)).html
        assert rendered.ops == [[OP_HTML, [], current]]
        assert took < 5.0, "a join of %d nested elements took %.1f s" % (nested, took)
    with capsys.disabled():
        print(
            "\n  deep join (%d nested divs, %d KiB frame): answered in %s ms"
            % (nested, len(attack) >> 10, ", ".join("%.0f" % (took * 1000) for took, _, _ in answers))
        )
        print(
            "  a bystander's round trip (%d events): alone p50 %.2f ms p99 %.2f ms;"
            " beside the deep joins p50 %.2f ms p99 %.2f ms"
            % (events, *(1000 * value for value in (median(alone), p99(alone), median(beside), p99(beside))))
        )
    assert p99(beside) < 0.25, "a bystander's p99 round trip was %.0f ms" % (p99(beside) * 1000)
