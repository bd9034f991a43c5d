"""live.py: a LiveConnection driven frame by frame with the demo editor and its real template."""

import asyncio
import copy
import itertools
import json
import time

import pytest
from djreconnect import protocol
from djreconnect.patch import apply_ops
from djreconnect_server.demo import TEMPLATES
from djreconnect_server.demo.editor import EditorView
from djreconnect_server.live import LiveConnection
from djreconnect_server.settings import Settings
from djreconnect_server.signing import MountSigner
from djreconnect_server.templating import Templates
from djreconnect_server.views import HandlerError, LiveView, event_handler
from selectolax.lexbor import LexborHTMLParser

from .asyncrun import run
from .test_diff import Node, TreeDom, serialize, tree_of

KEY = "a-test-secret-key-of-some-length"
VIEW_ID = "editor-1"


class BrokenEditorView(EditorView):
    """The editor with a handler that changes state, then fails."""

    view_name = "broken"

    @event_handler()
    def explode(self, value=""):
        self.title = value
        raise RuntimeError("boom")


class ParamsView(LiveView):
    """A view whose mount takes params from its grant, with strict and async handlers."""

    template_name = "params.html"

    def mount(self, request, doc_id="none", **kwargs):
        self.doc_id = doc_id
        self.count = 0

    @event_handler()
    def add(self, by):
        self.count += by

    @event_handler()
    async def add_later(self, by):
        await asyncio.sleep(0)
        self.count += by


class WaitingView(LiveView):
    """Handlers that wait on I/O (a sleep stands for a database) or burn CPU."""

    view_name = "waiting"
    template_name = "params.html"

    def mount(self, request, **kwargs):
        self.doc_id = "waiting"
        self.count = 0

    @event_handler()
    async def wait(self, ms: int):
        await asyncio.sleep(ms / 1000)
        self.count += 1

    @event_handler()
    def burn(self, ms: int):
        until = time.perf_counter() + ms / 1000
        while time.perf_counter() < until:
            pass
        self.count += 1


class FailingMountView(LiveView):
    template_name = "params.html"

    def mount(self, request, **kwargs):
        raise RuntimeError("no database")


@pytest.fixture
def settings(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "djreconnect-0.1.0-py3-none-any.whl").write_bytes(b"")
    return Settings(KEY, wheels_dir=wheels, max_frame_bytes=4096)


@pytest.fixture
def templates(settings, tmp_path):
    extra = tmp_path / "templates"
    extra.mkdir()
    (extra / "params.html").write_text(
        '<div dj-view="{{ dj_view_id }}"><p id="doc">{{ doc_id }}</p><p id="count">{{ count }}</p></div>'
    )
    return Templates(settings, [TEMPLATES, extra])


@pytest.fixture
def signer():
    return MountSigner(KEY)


@pytest.fixture
def live(settings, templates, signer):
    # (view class, public): public views may be mounted without a grant.
    registry = {
        cls.view_name: (cls, True) for cls in (EditorView, BrokenEditorView, ParamsView, FailingMountView, WaitingView)
    }
    return LiveConnection(registry, templates, signer, settings, request=None)


def send(live, message):
    """Feed one frame (a dict or raw text) and decode what comes back."""
    text = message if isinstance(message, str) else json.dumps(message)
    return [protocol.decode_server(frame) for frame in run(live.receive(text))]


def page_root(html):
    """The view root of a rendered page, as the browser's DOM holds it."""
    tree = LexborHTMLParser(html)
    view = tree.css_first("[dj-view]")
    root = view.css_first("[dj-root]") or view
    return Node("div", {}, [tree_of(node) for node in root.iter(include_text=True)])


class Page:
    """A browser tab showing a server-rendered view."""

    def __init__(self, templates, signer, cls=EditorView, params=None):
        view = cls()
        view.mount(None, **(params or {}))
        self.token = signer.sign(cls.view_name, params or {})
        self.html = templates.render(view, {"dj_tokens": {cls.view_name: self.token}})
        self.root = page_root(self.html)
        self.name = cls.view_name

    def join(self, live, ref=1, view=VIEW_ID, **overrides):
        frame = {
            "t": "join",
            "ref": ref,
            "view": view,
            "name": self.name,
            "token": self.token,
            "html": serialize(self.root.children),
        }
        frame.update(overrides)
        return send(live, frame)

    def apply(self, ops):
        apply_ops(ops, TreeDom(), self.root)

    def text(self, selector):
        tree = LexborHTMLParser("<body>%s</body>" % serialize(self.root.children))
        return tree.css_first(selector)


def expected_root(live, view_id=VIEW_ID):
    """The view root of a fresh render of the session's current state."""
    state = live.views[view_id]
    return page_root(live.templates.render(state.view))


def assert_page_shows_render(page, live, view_id=VIEW_ID):
    assert serialize(page.root.children, sort_attrs=True) == serialize(
        expected_root(live, view_id).children, sort_attrs=True
    )


# Event ids are unique in a session (a repeated id is answered from the session's record,
# not applied again): events that name no ref take the next one of these.
_REFS = itertools.count(1000)


def event(handler, ref=None, view=VIEW_ID, **params):
    ref = next(_REFS) if ref is None else ref
    return {"t": "event", "ref": ref, "view": view, "handler": handler, "params": params}


def snapshot(live, view_id=VIEW_ID):
    state = live.views[view_id]
    return copy.deepcopy(state.view.state()), state.html, state.version


# --- join --------------------------------------------------------------------------


def test_join_with_the_server_render_needs_no_ops(live, templates, signer):
    page = Page(templates, signer)
    [rendered] = page.join(live)
    # A fresh mount is the view's first render; nothing of a session is resumed.
    assert rendered == protocol.Rendered(ref=1, view=VIEW_ID, ops=[], version=1, resumed=False)
    assert isinstance(live.views[VIEW_ID].view, EditorView)
    assert live.views[VIEW_ID].version == 1


def test_join_with_a_stale_page_patches_it_to_the_render(live, templates, signer):
    page = Page(templates, signer)
    stale = page_root(
        page.html.replace('id="title" name="title"', 'id="title" name="title" class="old"').replace(
            "Clicked 0 times", "Clicked 9 times"
        )
    )
    page.root = stale
    [rendered] = page.join(live)
    assert isinstance(rendered, protocol.Rendered)
    assert len(rendered.ops) == 2
    page.apply(rendered.ops)
    assert_page_shows_render(page, live)


def test_join_with_an_empty_root_renders_everything(live, templates, signer):
    page = Page(templates, signer)
    page.root = Node("div")
    [rendered] = page.join(live)
    assert [op[0] for op in rendered.ops] == ["splice"]
    page.apply(rendered.ops)
    assert_page_shows_render(page, live)


def test_join_uses_the_grants_params(live, templates, signer):
    page = Page(templates, signer, ParamsView, {"doc_id": "doc-42"})
    [rendered] = page.join(live)
    assert rendered.ops == []
    assert live.views[VIEW_ID].view.doc_id == "doc-42"


def test_join_without_a_token_mounts_with_no_params(live, templates, signer):
    page = Page(templates, signer, ParamsView)
    [rendered] = page.join(live, token="")
    assert isinstance(rendered, protocol.Rendered)
    assert live.views[VIEW_ID].view.doc_id == "none"


# --- events ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler, params, check",
    [
        ("validate_title", {"value": 'A "title" <with> & marks'}, lambda v: v.title == 'A "title" <with> & marks'),
        ("preview", {"value": "line one\nline two"}, lambda v: v.body == "line one\nline two"),
        ("increment", {"amount": "3"}, lambda v: v.clicks == 3),
        ("set_published", {"value": True}, lambda v: v.published is True),
        ("set_category", {"value": "opinion"}, lambda v: v.category == "opinion"),
        ("set_visibility", {"value": "private"}, lambda v: v.visibility == "private"),
        ("set_priority", {"value": "5"}, lambda v: v.priority == 5),
        ("set_priority", {"value": ""}, lambda v: v.priority is None),
        ("set_tags", {"value": ["web", "ux"]}, lambda v: v.tags == ["web", "ux"]),
        ("restore_editor", {"doc_id": "doc-9", "cursor": "4:2"}, lambda v: (v.doc_id, v.cursor) == ("doc-9", "4:2")),
        ("save_form", {"title": "t", "body": "b"}, lambda v: v.saves == 1 and v.saved == {"title": "t", "body": "b"}),
    ],
)
def test_event_reply_patches_the_page_to_the_new_render(live, templates, signer, handler, params, check):
    page = Page(templates, signer)
    page.join(live)
    [reply] = send(live, event(handler, ref=7, **params))
    assert isinstance(reply, protocol.Reply)
    assert reply.ref == 7 and reply.view == VIEW_ID
    assert reply.ops, "a state change must change the page"
    assert check(live.views[VIEW_ID].view)
    page.apply(reply.ops)
    assert_page_shows_render(page, live)


def test_event_ops_are_small_and_targeted(live, templates, signer):
    page = Page(templates, signer)
    page.join(live)
    [reply] = send(live, event("validate_title", value="Hello"))
    page.apply(reply.ops)
    assert page.text("#title").attributes["value"] == "Hello"
    assert '"title": "Hello"' in page.text("#server-state").text()
    assert all(op[0] != "splice" or op[3] <= 1 for op in reply.ops)
    assert len(json.dumps(reply.ops)) < len(serialize(page.root.children)) / 5


def test_checkbox_and_selects_are_patched_by_attribute(live, templates, signer):
    page = Page(templates, signer)
    page.join(live)
    [reply] = send(live, event("set_published", value=True))
    page.apply(reply.ops)
    assert "checked" in page.text("#published").attributes
    [reply] = send(live, event("set_tags", ref=3, value=["python", "ux"]))
    page.apply(reply.ops)
    selected = [
        o.attributes["value"]
        for o in LexborHTMLParser("<body>%s</body>" % serialize(page.root.children)).css("#tags option")
        if "selected" in o.attributes
    ]
    assert selected == ["python", "ux"]
    [reply] = send(live, event("set_published", ref=4, value=False))
    assert ["attr"] == sorted({op[0] for op in reply.ops if op[2] == "checked"})
    page.apply(reply.ops)
    assert "checked" not in page.text("#published").attributes
    assert_page_shows_render(page, live)


def test_a_series_of_events_keeps_the_page_in_step(live, templates, signer):
    page = Page(templates, signer)
    page.join(live)
    for ref, (handler, params) in enumerate(
        [
            ("preview", {"value": "x"}),
            ("preview", {"value": ""}),
            ("increment", {}),
            ("increment", {}),
            ("validate_title", {"value": "t"}),
            ("save_form", {"title": "t"}),
            ("preview", {"value": "\n\nlead"}),
        ],
        start=2,
    ):
        version = live.views[VIEW_ID].version
        [reply] = send(live, event(handler, ref=ref, **params))
        assert reply.ref == ref
        # Every changed render is the next version; an unchanged one keeps its number.
        assert reply.version == live.views[VIEW_ID].version == version + (1 if reply.ops else 0)
        page.apply(reply.ops)
        assert_page_shows_render(page, live)
    assert "Clicked 2 times" in serialize(page.root.children)


def test_an_event_that_changes_nothing_gives_no_ops(live, templates, signer):
    page = Page(templates, signer)
    page.join(live)
    [reply] = send(live, event("validate_title", ref=2, value=""))
    # The same render: no ops, and the page stays at the render it has.
    assert reply == protocol.Reply(ref=2, view=VIEW_ID, ops=[], version=1)
    assert live.views[VIEW_ID].version == 1


def test_async_handler_is_awaited(live, templates, signer):
    page = Page(templates, signer, ParamsView)
    page.join(live)
    [reply] = send(live, event("add_later", by=5))
    assert live.views[VIEW_ID].view.count == 5
    page.apply(reply.ops)
    assert page.text("#count").text() == "5"


@pytest.mark.parametrize("ref", [0, -1, -(2**40)])
def test_an_event_ref_below_one_is_a_bad_frame_not_an_expired_id(live, templates, signer, ref):
    page = Page(templates, signer)
    page.join(live)
    before = snapshot(live)
    [refused] = send(live, event("validate_title", ref=ref, value="x"))
    assert (refused.code, refused.ref) == ("bad_frame", ref)
    assert "positive integer" in refused.message
    assert snapshot(live) == before
    [reply] = send(live, event("validate_title", ref=1, value="x"))  # the page goes on
    assert reply.ref == 1 and live.views[VIEW_ID].view.title == "x"


def test_the_work_budget_charges_a_handlers_own_time_not_its_waits(live, templates, signer):
    Page(templates, signer, WaitingView).join(live)
    budget = live.budget
    # A balance no test event exhausts, refilled by a unit a second: what it loses is
    # what was charged (within a unit or two).
    budget.rate, budget.burst, budget.tokens = 1.0, 10**6, 10**6
    before = budget.tokens
    for _ in range(3):
        send(live, event("wait", ms=200))
    waited = before - budget.tokens
    # 600 ms of waiting on I/O: three events and their renders, a few units, not 600.
    assert live.views[VIEW_ID].view.count == 3 and waited < 30
    before = budget.tokens
    send(live, event("burn", ms=60))
    assert before - budget.tokens >= 60  # a millisecond of the handler's own code is a unit


def test_two_views_on_one_connection_are_independent(live, templates, signer):
    first, second = Page(templates, signer), Page(templates, signer)
    first.join(live, view="a")
    second.join(live, view="b", ref=2)
    [reply] = send(live, event("increment", view="b", ref=3))
    assert reply.view == "b"
    assert live.views["a"].view.clicks == 0 and live.views["b"].view.clicks == 1


# --- ping, leave -------------------------------------------------------------------


def test_ping_gets_pong(live):
    assert send(live, {"t": "ping", "ref": 41}) == [protocol.Pong(ref=41)]


def test_leave_unmounts(live, templates, signer):
    Page(templates, signer).join(live)
    assert send(live, {"t": "leave", "view": VIEW_ID}) == []
    assert VIEW_ID not in live.views
    [error] = send(live, event("increment"))
    assert error.code == "not_mounted"


# --- refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame, code",
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        (json.dumps({"t": "subscribe", "ref": 1}), "unknown_type"),
        (json.dumps({"ref": 1}), "unknown_type"),
        (json.dumps({"t": "event", "ref": 1, "view": VIEW_ID}), "missing_field"),
        (json.dumps({"t": "event", "ref": "1", "view": VIEW_ID, "handler": "increment"}), "bad_field"),
        (json.dumps({"t": "ping", "ref": 1, "extra": True}), "unknown_field"),
        (json.dumps({"t": "ping", "ref": 1, "pad": "x" * 5000}), "too_big"),
    ],
)
def test_malformed_frames_get_errors_and_change_nothing(live, templates, signer, frame, code):
    Page(templates, signer).join(live)
    before = snapshot(live)
    [error] = send(live, frame)
    assert isinstance(error, protocol.Error)
    assert error.code == code and error.ref is None
    assert snapshot(live) == before


@pytest.mark.parametrize(
    "handler, params, code",
    [
        ("no_such_handler", {}, "unknown_handler"),
        ("mount", {}, "unknown_handler"),
        ("render", {}, "unknown_handler"),
        ("get_context", {}, "unknown_handler"),
        ("__init__", {}, "unknown_handler"),
        ("state_json", {}, "unknown_handler"),
        ("set_category", {"value": "gossip"}, "bad_params"),
        ("set_priority", {"value": "high"}, "bad_params"),
        ("set_tags", {"value": ["python", "cobol"]}, "bad_params"),
        ("increment", {"amount": "many"}, "bad_params"),
    ],
)
def test_refused_events_get_errors_and_change_nothing(live, templates, signer, handler, params, code):
    Page(templates, signer).join(live)
    before = snapshot(live)
    [error] = send(live, event(handler, ref=9, **params))
    assert error == protocol.Error(ref=9, view=VIEW_ID, code=code, message=error.message)
    assert error.message
    assert snapshot(live) == before


def test_params_that_do_not_fit_the_signature_are_bad_params(live, templates, signer):
    Page(templates, signer, ParamsView).join(live)
    before = snapshot(live)
    for params in ({}, {"by": 1, "more": 2}):
        [error] = send(live, event("add", **params))
        assert error.code == "bad_params"
    assert snapshot(live) == before


def test_event_for_a_view_not_mounted(live, templates, signer):
    Page(templates, signer).join(live)
    before = snapshot(live)
    [error] = send(live, event("increment", view="nowhere", ref=5))
    assert error == protocol.Error(ref=5, view="nowhere", code="not_mounted", message=error.message)
    assert snapshot(live) == before and list(live.views) == [VIEW_ID]


def test_unknown_view_name(live, templates, signer):
    page = Page(templates, signer)
    [error] = page.join(live, name="admin")
    assert (error.code, error.ref, error.view) == ("unknown_view", 1, VIEW_ID)
    assert live.views == {}


def test_unknown_view_name_does_not_replace_a_mounted_view(live, templates, signer):
    page = Page(templates, signer)
    page.join(live)
    send(live, event("increment"))
    before = snapshot(live)
    [error] = page.join(live, ref=3, name="admin")
    assert error.code == "unknown_view"
    assert snapshot(live) == before


@pytest.mark.parametrize(
    "token_of",
    [
        lambda signer, token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda signer, token: signer.sign("broken", {}),
        lambda signer, token: MountSigner("some-other-secret-key").sign("editor", {}),
        lambda signer, token: "not-a-token",
    ],
    ids=["tampered", "other-view", "other-key", "garbage"],
)
def test_bad_tokens_are_refused(live, templates, signer, token_of):
    page = Page(templates, signer)
    [error] = page.join(live, token=token_of(signer, page.token))
    assert (error.code, error.ref, error.view) == ("bad_token", 1, VIEW_ID)
    assert live.views == {}


def test_a_bad_token_does_not_replace_a_mounted_view(live, templates, signer):
    page = Page(templates, signer)
    page.join(live)
    send(live, event("increment"))
    before = snapshot(live)
    [error] = page.join(live, ref=3, token="forged")
    assert error.code == "bad_token"
    assert snapshot(live) == before


def test_a_failing_mount_is_an_error_and_mounts_nothing(live):
    [error] = send(live, {"t": "join", "ref": 1, "view": "v", "name": "failingmount"})
    assert (error.code, error.ref, error.view) == ("mount_failed", 1, "v")
    assert "no database" not in error.message
    assert live.views == {}


def test_a_failing_handler_gives_an_error_and_an_unsolicited_reply(live, templates, signer):
    page = Page(templates, signer, BrokenEditorView)
    page.join(live)
    failed, update = send(live, event("explode", ref=4, value="half done"))
    assert failed == protocol.Error(ref=4, view=VIEW_ID, code="handler_failed", message=failed.message)
    assert "boom" not in failed.message
    assert isinstance(update, protocol.Reply) and update.ref is None and update.view == VIEW_ID
    # The state the handler changed before failing is what the page shows.
    page.apply(update.ops)
    assert page.text("#title").attributes["value"] == "half done"
    assert_page_shows_render(page, live)
    # The connection carries on.
    [reply] = send(live, event("increment", ref=5))
    assert reply.ref == 5
    page.apply(reply.ops)
    assert_page_shows_render(page, live)


def test_handler_error_is_the_views_answer(live, templates, signer):
    class Picky(EditorView):
        view_name = "picky"

        @event_handler()
        def pick(self, value=""):
            raise HandlerError("not_allowed", "no picking")

    live.registry["picky"] = (Picky, True)
    page = Page(templates, signer, Picky)
    page.join(live)
    [error] = send(live, event("pick", ref=6))
    assert (error.code, error.message, error.ref) == ("not_allowed", "no picking", 6)


def test_a_batch_runs_every_event_in_order_and_answers_with_one_render(live, templates, signer):
    page = Page(templates, signer)
    page.join(live)
    batch = {
        "t": "batch",
        "ref": 9,
        "view": VIEW_ID,
        "events": [
            ["validate_title", {"value": "first"}],
            ["set_category", {"value": "not-a-category"}],  # refused; the rest still runs
            ["validate_title", {"value": "second"}],
            ["increment", {}],
        ],
    }
    *errors, reply = send(live, batch)
    assert [(e.code, e.ref) for e in errors] == [("bad_params", 9)]
    assert isinstance(reply, protocol.Reply) and reply.ref == 9
    state = live.views[VIEW_ID].view.state()
    assert (state["title"], state["category"], state["clicks"]) == ("second", "news", 1)
    page.apply(reply.ops)
    assert_page_shows_render(page, live)


def test_a_batch_for_a_view_not_mounted_is_refused(live):
    [error] = send(live, {"t": "batch", "ref": 3, "view": "nowhere", "events": [["increment", {}]]})
    assert (error.code, error.ref) == ("not_mounted", 3)
