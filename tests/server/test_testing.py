"""testing.py: the test client mounts a view over a real LiveConnection, acts by selector or
handler name, reads the patched page, keeps the runtime's field rules, drops and remounts."""

import asyncio

import pytest
from djreconnect_server import DJReconnect, LiveView, Settings, event_handler
from djreconnect_server.diff import parse_render
from djreconnect_server.testing import LiveError, mount

from .built import KEY, NODE_MODULES, WHEELS, needs_built_assets

pytestmark = needs_built_assets

TODO_HTML = """<!DOCTYPE html>
<html><head>{{ djreconnect_scripts() }}</head>
<body dj-view="{{ dj_view_id }}"><h1>Not live</h1><div dj-root>
<h2 id="name">{{ list_name }}</h2>
<form id="add" dj-submit="add" dj-value-source="form">
  <input name="text" value="">
  <label><input type="checkbox" name="urgent"> urgent</label>
  <label><input type="checkbox" name="tag" value="home"> home</label>
  <label><input type="checkbox" name="tag" value="work"> work</label>
  <button id="add-button" type="submit">Add</button>
</form>
<ul id="items">
{%- for item in items %}
<li><span>{{ item }}</span>
<button class="remove" dj-click="remove" dj-value-index="{{ loop.index0 }}"><b>x</b></button></li>
{%- endfor %}
</ul>
<input id="note" dj-input="set_note" value="{{ note }}">
<p id="note-shown">{{ note }}</p>
<select id="filter" dj-change="set_filter">
  <option{% if filter == "all" %} selected{% endif %}>all</option>
  <option value="open"{% if filter == "open" %} selected{% endif %}>Open items</option>
</select>
<input type="radio" name="size" value="s" id="small" dj-change="set_size"{% if size == "s" %} checked{% endif %}>
<input type="radio" name="size" value="l" id="large" dj-change="set_size"{% if size == "l" %} checked{% endif %}>
<p id="plain">no handler here</p>
</div></body></html>
"""


class TodoView(LiveView):
    template_name = "todo.html"

    def mount(self, request, list_name="groceries", **kwargs):
        self.list_name = list_name
        self.items = []
        self.note = ""
        self.filter = "all"
        self.size = "s"
        self.sources = []

    @event_handler()
    def add(self, text: str, urgent: bool = False, tag: list[str] = (), source: str = ""):
        self.items.append(text + ("!" if urgent else "") + "".join(" #" + one for one in tag))
        self.sources.append(source)

    @event_handler()
    def remove(self, index: int):
        del self.items[index]

    @event_handler()
    def set_note(self, value: str):
        self.note = value.upper()

    @event_handler()
    def set_filter(self, value: str):
        self.filter = value

    @event_handler()
    async def set_size(self, value: str):
        await asyncio.sleep(0)
        self.size = value

    @event_handler()
    def boom(self):
        self.items.append("half done")
        raise RuntimeError("boom")


class BrokenView(TodoView):
    """Renders its first paint, then fails to mount over the live connection."""

    def mount(self, request, **kwargs):
        if request.scope["type"] != "http":
            raise RuntimeError("no database")
        TodoView.mount(self, request)


class UnlistedView(TodoView):
    pass


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    templates = tmp_path_factory.mktemp("templates")
    (templates / "todo.html").write_text(TODO_HTML)
    live = DJReconnect(Settings(KEY, node_modules_dir=NODE_MODULES, wheels_dir=WHEELS), [templates])
    live.page("/lists/{list_name}", TodoView)
    live.page("/broken", BrokenView)
    return live


@pytest.fixture
def todo(live):
    with mount(live, TodoView) as todo:
        yield todo


def rendered_root(live, view):
    """The root of a fresh render of ``view``: what the page must show."""
    return parse_render(live.templates.render(view)).html


def test_mount_shows_the_live_part_of_the_first_paint(todo):
    assert todo.connected and todo.status == "connected"
    assert todo.text("#name") == "groceries"
    assert todo.find("h1") is None  # outside [dj-root]: not the view's
    assert "<h1>" in todo.page_html


def test_mount_params_go_through_the_signed_grant(live):
    with mount(live, TodoView, list_name="chores") as todo:
        assert todo.view.list_name == "chores" and todo.text("#name") == "chores"
    with mount(live, "todo") as todo:  # by the name it is registered under
        assert todo.view.list_name == "groceries"


def test_a_view_the_backend_does_not_serve_cannot_be_mounted(live):
    with pytest.raises(LookupError, match="UnlistedView is not registered"):
        mount(live, UnlistedView)
    with pytest.raises(LookupError, match="no view named 'nothing'"):
        mount(live, "nothing")


def test_a_mount_that_fails_on_the_server_is_a_live_error(live):
    with pytest.raises(LiveError) as info:
        mount(live, BrokenView)
    assert info.value.code == "mount_failed"


def test_submit_fills_the_form_and_the_form_then_shows_the_server_render(todo):
    todo.submit("#add", text="milk", urgent=True, tag=["home", "work"])
    assert todo.view.items == ["milk! #home #work"]
    assert todo.view.sources == ["form"]  # the form's dj-value-*
    assert todo.text("#items li span") == "milk! #home #work"
    # The server renders the form empty: the submitted fields show it.
    assert todo.value("input[name=text]") == "" and todo.value("input[name=urgent]") is False
    todo.submit("#add-button", text="bread")  # a button selects its form
    assert [item.text() for item in todo.find_all("#items span")] == ["milk! #home #work", "bread"]


def test_click_finds_the_dj_click_around_the_target_and_sends_its_values(todo):
    for text in ("a", "b", "c"):
        todo.submit("#add", text=text)
    todo.click("#items li:nth-child(2) b")  # inside the button
    assert todo.view.items == ["a", "c"]
    assert todo.html.count("<li>") == 2


def test_the_field_being_typed_into_keeps_its_value(todo):
    todo.input("#note", "hello")
    assert todo.view.note == "HELLO"
    assert todo.find("#note").attributes["value"] == "HELLO"  # the render's value ...
    assert todo.value("#note") == "hello"  # ... but the field the user is in keeps what was typed
    assert todo.text("#note-shown") == "HELLO"
    todo.change("#filter", "open")  # the user moves on to another field
    todo.send("set_note", {"value": "again"})
    assert todo.value("#note") == "AGAIN"  # not focused any more: the server's value shows


def test_selects_and_radios(todo):
    todo.change("#filter", "open")
    assert todo.view.filter == "open" and todo.value("#filter") == "open"
    todo.change("#large")
    assert todo.view.size == "l"  # an async handler, run on the server's loop
    assert (todo.value("#small"), todo.value("#large")) == (False, True)
    with pytest.raises(ValueError, match="no option 'closed'"):
        todo.change("#filter", "closed")


def test_the_page_is_patched_to_exactly_the_server_render(live, todo):
    todo.submit("#add", text="x")
    todo.submit("#add", text="y", urgent=True)
    todo.click("#items li:first-child .remove")
    todo.input("#note", "n")
    todo.change("#filter", "open")
    assert todo.html == rendered_root(live, todo.view)


@pytest.mark.parametrize(
    "act, error",
    [
        (lambda todo: todo.click("#nowhere"), "'#nowhere' matches 0 elements of the view, not one"),
        (lambda todo: todo.click("input[type=checkbox]"), "matches 3 elements"),
        (lambda todo: todo.click("#plain"), "'#plain' has no dj-click"),
        (lambda todo: todo.change("#note", "x"), "'#note' has no dj-change"),
        (lambda todo: todo.submit("#note"), "'#note' is not in a form with dj-submit"),
        (lambda todo: todo.submit("#add", colour="red"), "the form has no field named 'colour'"),
    ],
)
def test_acting_on_what_is_not_there_says_so(todo, act, error):
    with pytest.raises(LookupError) as info:
        act(todo)
    assert error in str(info.value)
    assert todo.errors == []


def test_refusals_and_failures_raise_after_the_page_is_updated(todo):
    with pytest.raises(LiveError) as info:
        todo.click("remove", index="first")
    assert info.value.code == "bad_params" and "index should be a valid integer" in info.value.message
    with pytest.raises(LiveError) as info:
        todo.send("boom")
    assert info.value.code == "handler_failed"
    # The handler changed state before it failed; the page shows what the server has.
    assert todo.text("#items span") == "half done"
    assert [code for code, _ in todo.errors] == ["bad_params", "handler_failed"]
    assert todo.connected


def test_drop_queues_clicks_and_remount_recovers_fields(todo):
    todo.submit("#add", text="kept?")
    todo.change("#filter", "open")
    todo.drop()
    assert todo.status == "reconnecting"
    todo.change("#large")  # recovered after the remount
    todo.submit("#add", text="offline")  # queued
    todo.remount()
    state = todo.state
    assert state["items"] == ["offline"]  # a fresh view: earlier items were in the old one
    assert (state["filter"], state["size"]) == ("open", "l")
    assert todo.html == rendered_root(todo.live, todo.view)


def test_close_disconnects_on_purpose(live):
    todo = mount(live, TodoView)
    todo.close()
    assert todo.status == "disconnected" and not todo.connected
