"""The demo editor, through the test client (djreconnect_server.testing): every field's
handler, the refusals, the save form, and a drop followed by a remount with recovery."""

import json

import pytest
from djreconnect_server import DJReconnect, Settings
from djreconnect_server.demo import TEMPLATES
from djreconnect_server.demo.editor import EditorView
from djreconnect_server.testing import LiveError, mount

from .built import KEY, NODE_MODULES, WHEELS, needs_built_assets

pytestmark = needs_built_assets


@pytest.fixture(scope="module")
def live():
    live = DJReconnect(Settings(KEY, node_modules_dir=NODE_MODULES, wheels_dir=WHEELS), [TEMPLATES])
    live.page("/", EditorView, public=True)
    return live


@pytest.fixture
def editor(live):
    with mount(live, EditorView) as editor:
        yield editor


def shown_state(editor):
    """What #server-state shows: the server's state as the page got it by patches."""
    return json.loads(editor.text("#server-state"))


def test_the_page_mounts_and_shows_the_server_state(editor):
    assert (editor.status, editor.connected) == ("connected", True)
    assert shown_state(editor) == editor.state
    assert editor.value("#title") == "" and editor.value("#category") == "news"


def test_each_field_reaches_its_handler_and_the_page_follows(editor):
    editor.change("#title", "Hello")
    editor.input("#body", "Some text")
    editor.change("#published", True)
    editor.change("#category", "guide")
    editor.change("#visibility-private")
    editor.change("#priority", "5")
    editor.change("#tags", ["web", "ux"])
    state = editor.state
    assert (state["title"], state["body"], state["published"]) == ("Hello", "Some text", True)
    assert (state["category"], state["visibility"], state["priority"], state["tags"]) == (
        "guide",
        "private",
        5,  # converted from the field's text by the handler's annotation
        ["web", "ux"],
    )
    assert editor.text("#preview") == "Some text"
    assert editor.find("#title").attributes["value"] == "Hello"
    assert shown_state(editor) == state
    editor.change("#priority", "")  # a number field left empty
    assert editor.state["priority"] is None


def test_clicks_send_their_dj_values(editor):
    editor.click("#clicks")
    editor.click("#clicks")
    assert editor.view.clicks == 2
    assert editor.text("#clicks") == "Clicked 2 times"
    editor.click("increment", amount="5")  # by handler name, as a dj-value would send it
    assert editor.text("#clicks") == "Clicked 7 times"


@pytest.mark.parametrize(
    "handler, params, said",
    [
        ("set_category", {"value": "gossip"}, "value should be 'news', 'guide' or 'opinion' (got 'gossip')"),
        ("set_visibility", {"value": "secret"}, "value should be 'public', 'unlisted' or 'private'"),
        ("set_tags", {"value": ["python", "cobol"]}, "value[1] should be 'python', 'web', 'networking' or 'ux'"),
        ("set_priority", {"value": "high"}, "value should be a valid integer"),
        ("set_published", {"value": "maybe"}, "value should be a valid boolean"),
        ("increment", {"amount": "many"}, "amount should be a valid integer"),
        ("validate_title", {"value": 5}, "value should be a valid string"),
        ("validate_title", {"value": "x", "extra": 1}, None),  # **kwargs take anything
    ],
)
def test_refused_params_change_nothing(editor, handler, params, said):
    editor.change("#title", "kept")
    before, html = editor.state, editor.html
    if said is None:
        editor.send(handler, params)
        assert editor.state["title"] == "x"
        return
    with pytest.raises(LiveError) as info:
        editor.send(handler, params)
    assert info.value.code == "bad_params" and said in info.value.message
    assert editor.state == before and editor.html == html
    assert editor.errors == [("bad_params", info.value.message)]


@pytest.mark.parametrize("name", ["mount", "__init__", "_handlers", "state_json", "no_such_handler"])
def test_only_handlers_can_be_called(editor, name):
    with pytest.raises(LiveError) as info:
        editor.send(name, {"value": "x"})
    assert info.value.code == "unknown_handler"
    assert editor.connected


def test_the_save_form_sends_every_field(editor):
    editor.submit("#save", title="A title", priority="2", tags=["python"])
    assert editor.view.saves == 1
    assert editor.view.saved == {
        "title": "A title",
        "body": "",
        "search": "",
        "cursor": "",
        "category": "news",
        "visibility": "public",
        "priority": "2",
        "tags": "python",  # one option: a form sends a list only when a name repeats
    }
    # Filled as a person fills them: each field's own event went first.
    assert (editor.state["title"], editor.state["priority"], editor.state["tags"]) == ("A title", 2, ["python"])
    assert editor.text("#save").strip() == "Save"
    assert "Saved 1 time." in editor.html


def test_a_drop_and_remount_recover_what_the_page_shows(editor):
    editor.change("#title", "before the drop")
    editor.input("#search", "not recovered")
    editor.click("#clicks")
    editor.drop()
    assert (editor.status, editor.connected) == ("reconnecting", False)
    # While the connection is down: edits stay on the page, clicks wait in the queue.
    editor.input("#body", "typed while offline")
    editor.change("#category", "opinion")
    editor.click("#clicks")
    editor.remount()
    assert (editor.status, editor.connected) == ("connected", True)
    state = editor.state
    # A fresh view (clicks start again from 0), brought back to what the page shows.
    assert (state["title"], state["body"], state["category"]) == ("before the drop", "typed while offline", "opinion")
    assert state["clicks"] == 1  # the queued click, sent once
    assert state["search"] == "" and editor.value("#search") == ""  # dj-no-recover: reset
    assert state["restore_calls"] == [{"doc_id": "doc-1", "cursor": ""}]  # dj-auto-recover
    assert shown_state(editor) == state
    assert editor.value("#title") == "before the drop"


def test_a_second_remount_recovers_again(editor):
    editor.change("#title", "one")
    editor.remount()
    editor.remount()
    assert editor.state["title"] == "one"
    assert len(editor.state["restore_calls"]) == 1  # each remount mounts a fresh view
