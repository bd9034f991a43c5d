"""Forms after submit, in a real Chromium against a todo app in a real server process:
the submitted form shows what the server rendered (a handler that clears its state
clears the field, focused or not), and every other field keeps the rule that the field
being typed into is never overwritten."""

import sys
from pathlib import Path

import pytest
from support import DemoServer, server_state, wait_server_state

pytestmark = pytest.mark.browser

TODO_APP = Path(__file__).resolve().parent / "todo_app.py"


class TodoServer(DemoServer):
    """tests/browser/todo_app.py as a real process."""

    def command(self):
        return [sys.executable, str(TODO_APP), "--port", str(self.port), *self.flags]


@pytest.fixture(scope="module")
def server(transport, interpreter):
    app = TodoServer("--transport", transport, "--interpreter", interpreter).start()
    yield app
    app.stop()


def focused_id(page):
    return page.evaluate("document.activeElement && document.activeElement.id")


def value(page, selector):
    return page.evaluate("s => document.querySelector(s).value", selector)


def test_enter_in_a_todo_field_adds_the_item_and_clears_the_field(live_page):
    page = live_page
    before = len(server_state(page)["items"])
    page.click("#todo-text")
    page.keyboard.type("buy milk")
    page.check("#todo-done")
    page.click("#todo-text")
    page.keyboard.press("Enter")
    state = wait_server_state(page, lambda s: len(s["items"]) == before + 1)
    assert state["items"][-1] == "buy milk (done)"
    # The reply's patch has no operation for the field (its rendered value was "" before
    # and after), yet the form shows what the server rendered: empty, unchecked.
    page.wait_for_function("document.querySelector('#todo-text').value === ''")
    assert focused_id(page) == "todo-text"  # focus stayed in the field
    assert page.evaluate("document.querySelector('#todo-done').checked") is False
    # And the next item can be typed right away.
    page.keyboard.type("eggs")
    page.keyboard.press("Enter")
    wait_server_state(page, lambda s: s["items"][-1] == "eggs")
    page.wait_for_function("document.querySelector('#todo-text').value === ''")


def test_a_bound_field_cleared_by_its_handler_is_cleared_while_focused(live_page):
    page = live_page
    page.click("#bound-text")
    page.keyboard.type("write tests")
    wait_server_state(page, lambda s: s["bound_text"] == "write tests")
    page.keyboard.press("Enter")
    state = wait_server_state(page, lambda s: s["items"][-1:] == ["write tests"] and s["bound_text"] == "")
    assert state["bound_text"] == ""
    page.wait_for_function("document.querySelector('#bound-text').value === ''")
    assert focused_id(page) == "bound-text"


def test_text_typed_after_a_submit_is_kept_when_its_reply_comes(live_page):
    page = live_page
    page.click("#slow-text")
    page.keyboard.type("first")
    page.keyboard.press("Enter")  # the handler takes a while
    page.keyboard.type(" and more")  # typed while the submit waits for its reply
    wait_server_state(page, lambda s: s["items"][-1:] == ["first"], timeout=15)
    page.wait_for_timeout(100)
    assert value(page, "#slow-text") == "first and more"
    assert focused_id(page) == "slow-text"


def test_a_field_typed_into_elsewhere_is_not_overwritten(live_page):
    page = live_page
    page.click("#note")
    page.fill("#note", "")
    page.keyboard.type("my own note")
    # A submit of another form while the user is in #note: #note is not that form's,
    # so it keeps its text although the server renders it empty.
    page.evaluate("document.querySelector('#todo-text').value = 'from a script'")
    page.evaluate("document.querySelector('#todo-form').requestSubmit()")
    wait_server_state(page, lambda s: s["items"][-1:] == ["from a script"])
    page.wait_for_function("document.querySelector('#todo-text').value === ''")
    assert value(page, "#note") == "my own note"
    # A reply that changes #note's rendered value while the user is in it: the field
    # being typed into is never overwritten.
    stamps = server_state(page)["stamps"]
    page.evaluate("document.querySelector('#stamp').click()")  # a click that leaves focus in #note
    state = wait_server_state(page, lambda s: s["stamps"] == stamps + 1)
    page.wait_for_function("n => document.querySelector('#note').getAttribute('value') === n", arg=state["note"])
    assert focused_id(page) == "note"
    assert value(page, "#note") == "my own note"
    # Once the user is elsewhere, a reply that changes it shows.
    page.click("#stamp")
    state = wait_server_state(page, lambda s: s["stamps"] == stamps + 2)
    page.wait_for_function("n => document.querySelector('#note').value === n", arg=state["note"])
