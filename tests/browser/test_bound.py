"""Events in flight are bounded, in a real Chromium against a real server whose handlers
are slow (tests/browser/typing_app.py): a page that makes events faster than replies come
keeps at most MAX_IN_FLIGHT unanswered, sends a field's newest value once there is room
(not every keystroke), and its clicks after it in order."""

import sys
from pathlib import Path

import pytest
from djreconnect import constants
from support import DemoServer, server_state, wait_server_state

pytestmark = pytest.mark.browser

TYPING_APP = Path(__file__).resolve().parent / "typing_app.py"
# Each handler takes this long: the page outruns it, and the test does not wait long.
SLOW_MS = 10
KEYS = 300  # well past MAX_IN_FLIGHT
SAVES = 20  # within the queue's 50
SETTLE_S = 30.0

# Types KEYS characters into #title and clicks #save SAVES times, all in one task: the
# runtime handles each event as it is dispatched, and no reply can arrive in between.
# Errors the runtime reports are recorded.
BURST = """([keys, saves]) => {
  window.djErrors = [];
  document.addEventListener('djreconnect:error', e => window.djErrors.push(e.detail.code));
  const title = document.getElementById('title');
  const save = document.getElementById('save');
  let text = '';
  for (let i = 0; i < keys; i++) {
    text += 'abcdefghij'[i % 10];
    title.value = text;
    title.dispatchEvent(new Event('input', {bubbles: true}));
  }
  for (let i = 0; i < saves; i++) save.click();
  return text;
}"""


class TypingServer(DemoServer):
    """tests/browser/typing_app.py as a real process."""

    def command(self):
        return [sys.executable, str(TYPING_APP), "--port", str(self.port), *self.flags]


@pytest.fixture(scope="module")
def server(transport, interpreter):
    app = TypingServer("--transport", transport, "--interpreter", interpreter, "--slow-ms", str(SLOW_MS)).start()
    yield app
    app.stop()


def test_a_page_outrunning_its_server_sends_at_most_max_in_flight_then_the_fields_newest_value(live_page):
    page = live_page
    start = server_state(page)
    text = page.evaluate(BURST, [KEYS, SAVES])
    # The title's events: the first MAX_IN_FLIGHT went at once; the rest waited, each giving
    # way to the next, and only the newest went when there was room. Then the saves, in order.
    state = wait_server_state(page, lambda s: len(s["saved"]) == len(start["saved"]) + SAVES, timeout=SETTLE_S)
    assert state["title"] == text
    assert state["events"] == start["events"] + constants.MAX_IN_FLIGHT + 1
    assert state["saved"][len(start["saved"]) :] == [text] * SAVES  # each save read the newest title
    page.wait_for_function("t => document.getElementById('title').value === t", arg=text)
    assert page.evaluate("window.djErrors") == []
    assert page.evaluate("window.djreconnect.state") == "connected"
