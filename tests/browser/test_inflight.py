"""Fields with events in flight, in a real Chromium against a real server whose handlers
are slow (tests/browser/typing_app.py): the replies to earlier keystrokes, clicks or
choices arrive after the user has typed on and moved elsewhere, and must not put back
what the user already changed. The reply to a field's newest event still shows, even
when the server answers with something else than what was typed."""

import sys
from pathlib import Path

import pytest
from support import DemoServer, server_state, wait_server_state
from typing_app import SLOW_SECONDS

pytestmark = pytest.mark.browser

TYPING_APP = Path(__file__).resolve().parent / "typing_app.py"
# Each reply takes SLOW_SECONDS (0.2 s), one after the other: generous for the last one.
SETTLE_S = 20.0
# No reply for this long: nothing is in flight any more.
QUIET_MS = int(SLOW_SECONDS * 1000 * 4)

# Records a field's live state every time it may have changed: on the user's own input
# and change events, and on every DOM mutation of the field (a patch that moves its
# value attribute, its text or its options). Consecutive repeats are recorded once.
# A fieldset stands for its radio group: its state is the value of the checked radio.
RECORD = """(selector) => {
  window.recorders = window.recorders || {};
  const old = window.recorders[selector];
  if (old) old.observer.disconnect();
  const field = document.querySelector(selector);
  const live = () => {
    if (field.nodeName === "FIELDSET") {
      const checked = field.querySelector("input:checked");
      return checked ? checked.value : null;
    }
    return field.type === "checkbox" ? field.checked : field.value;
  };
  const seen = [live()];
  const note = () => { const now = live(); if (seen[seen.length - 1] !== now) seen.push(now); };
  const observer = new MutationObserver(note);
  observer.observe(field, {attributes: true, characterData: true, childList: true, subtree: true});
  field.addEventListener("input", note);
  field.addEventListener("change", note);
  window.recorders[selector] = {observer: observer, seen: seen};
}"""


class TypingServer(DemoServer):
    """tests/browser/typing_app.py as a real process."""

    def command(self):
        return [sys.executable, str(TYPING_APP), "--port", str(self.port), *self.flags]


@pytest.fixture(scope="module")
def server(transport, interpreter):
    app = TypingServer("--transport", transport, "--interpreter", interpreter).start()
    yield app
    app.stop()


def record(page, selector):
    page.evaluate(RECORD, selector)


def seen(page, selector):
    """What the field showed since ``record``, in order."""
    return page.evaluate("s => window.recorders[s].seen.slice()", selector)


def live(page, selector):
    return page.evaluate("s => document.querySelector(s).value", selector)


def events_handled(page, count):
    """Wait until the page shows the render of the server's ``count``-th event (the
    count of every field's events); return the server's state."""
    return wait_server_state(page, lambda s: s["events"] >= count, timeout=SETTLE_S)


def settled(page):
    """The server's event count once no reply has come for a while (a test that failed
    may have left events in flight); the start of every test."""
    count = server_state(page)["events"]
    while True:
        page.wait_for_timeout(QUIET_MS)
        now = server_state(page)["events"]
        if now == count:
            return count
        count = now


def clear(page, selector):
    """Empty a text field (and wait for the server to know); return the server's event count."""
    before = settled(page)
    if live(page, selector):
        page.fill(selector, "")
        before = events_handled(page, before + 1)["events"]
    return before


def test_typing_on_after_clicking_elsewhere_keeps_every_keystroke(live_page):
    page = live_page
    before = clear(page, "#title")
    saves = len(server_state(page)["saved"])
    record(page, "#title")
    page.click("#title")
    page.keyboard.type("Several")
    page.click("#elsewhere")  # the replies to the keystrokes are still to come
    # Two of them arrived while the user was elsewhere: the field's default moved...
    page.wait_for_function("document.querySelector('#title').getAttribute('value').length >= 2", timeout=10_000)
    while_away = live(page, "#title")  # ...but what it shows must not (asserted below)
    page.click("#title")
    page.keyboard.press("End")
    page.keyboard.type(" processes")
    page.click("#save")  # a click whose handler reads the title the server holds
    state = wait_server_state(page, lambda s: s["events"] == before + 17 and len(s["saved"]) > saves, timeout=SETTLE_S)
    assert state["title"] == "Several processes"
    assert state["saved"][-1] == "Several processes"
    assert while_away == "Several"
    assert live(page, "#title") == "Several processes"
    text = "Several processes"
    shown = seen(page, "#title")
    assert shown == [text[:length] for length in range(len(text) + 1)], "the field went back: %r" % (shown,)


def test_a_textarea_left_while_its_replies_come_does_not_flicker_back(live_page):
    page = live_page
    before = settled(page)
    record(page, "#body")
    start = live(page, "#body")
    page.click("#body")
    page.keyboard.press("End")
    page.keyboard.type("abcdef")
    page.click("#elsewhere")
    state = events_handled(page, before + 6)
    typed = start + "abcdef"
    assert state["body"] == typed
    page.wait_for_function("t => document.querySelector('#body').defaultValue === t", arg=typed)
    shown = seen(page, "#body")
    assert shown == [typed[: len(start) + n] for n in range(7)], "the textarea went back: %r" % (shown,)
    assert live(page, "#body") == typed


def test_a_checkbox_clicked_twice_does_not_show_the_first_click_again(live_page):
    page = live_page
    before = settled(page)
    record(page, "#done")
    initially = page.is_checked("#done")
    page.click("#done")
    page.click("#done")
    page.click("#elsewhere")
    state = events_handled(page, before + 2)
    assert state["done"] is initially
    page.wait_for_function(
        "c => document.querySelector('#done').hasAttribute('checked') === c", arg=initially, timeout=10_000
    )
    assert seen(page, "#done") == [initially, not initially, initially]
    assert page.is_checked("#done") is initially


def test_a_select_changed_twice_does_not_show_the_first_choice_again(live_page):
    page = live_page
    before = settled(page)
    record(page, "#size")
    initially = live(page, "#size")
    choices = [size for size in ("m", "l", "xl") if size != initially][:2]
    page.select_option("#size", choices[0])
    page.select_option("#size", choices[1])
    page.click("#elsewhere")
    state = events_handled(page, before + 2)
    assert state["size"] == choices[1]
    page.wait_for_function(
        "v => document.querySelector('#size option[selected]').value === v", arg=choices[1], timeout=10_000
    )
    assert seen(page, "#size") == [initially] + choices
    assert live(page, "#size") == choices[1]


def test_a_radio_group_changed_twice_does_not_show_the_first_choice_again(live_page):
    page = live_page
    before = settled(page)
    record(page, "#priority")
    initially = page.evaluate("document.querySelector('#priority input:checked').value")
    choices = [option for option in ("mid", "high", "low") if option != initially]
    page.click("#priority-" + choices[0])
    page.click("#priority-" + choices[1])
    page.click("#elsewhere")
    state = events_handled(page, before + 2)
    assert state["priority"] == choices[1]
    page.wait_for_function("id => document.getElementById(id).hasAttribute('checked')", arg="priority-" + choices[1])
    # Checking the first choice again (its reply) would uncheck the second: it is the
    # group's live state that stays, not one radio's.
    assert seen(page, "#priority") == [initially] + choices
    assert page.is_checked("#priority-" + choices[1])


def test_the_reply_to_a_fields_newest_event_shows_what_the_server_made_of_it(live_page):
    page = live_page
    before = clear(page, "#code")
    record(page, "#code")
    page.click("#code")
    page.keyboard.type("abc")
    page.click("#elsewhere")
    state = events_handled(page, before + 3)
    assert state["code"] == "ABC"
    # The answers to "a" and "ab" came while "abc" was unanswered: the field kept "abc".
    # The answer to "abc" is the server's word on what the user last did: it shows.
    page.wait_for_function("document.querySelector('#code').value === 'ABC'", timeout=10_000)
    assert seen(page, "#code") == ["", "a", "ab", "abc", "ABC"]
