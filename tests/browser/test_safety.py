"""Refused input in a real Chromium: the page is told why, the connection and the view
survive, recovery still works afterwards; a tampered grant fails without retrying."""

import pytest
from support import new_page, server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser

ERRORS = """() => { window.djErrors = [];
  document.addEventListener('djreconnect:error', e => window.djErrors.push(e.detail.code)); }"""


def add_button(page, button_id, handler, **values):
    page.evaluate(
        """([id, handler, values]) => { const b = document.createElement('button');
        b.type = 'button'; b.id = id; b.setAttribute('dj-click', handler);
        for (const [k, v] of Object.entries(values)) b.setAttribute('dj-value-' + k, v);
        document.querySelector('[dj-root]').appendChild(b); }""",
        [button_id, handler, values],
    )


@pytest.fixture(scope="module")
def server_flags():
    return ["--backoff-min-ms", "100", "--backoff-base-ms", "200", "--backoff-max-ms", "600"]


def test_refused_events_leave_the_connection_the_state_and_recovery_intact(live_page, server):
    page = live_page
    page.evaluate(ERRORS)
    page.fill("#title", "kept")
    page.locator("#title").dispatch_event("change")
    wait_server_state(page, lambda s: s["title"] == "kept")
    refused = [
        ("call-mount", "mount", {}, "unknown_handler"),
        ("call-dunder", "__init__", {}, "unknown_handler"),
        ("call-private", "_handlers", {}, "unknown_handler"),
        ("call-state", "state_json", {}, "unknown_handler"),
        ("bad-type", "set_published", {"value": "maybe"}, "bad_params"),
        ("bad-choice", "set_category", {"value": "<script>"}, "bad_params"),
    ]
    before = server_state(page)
    for button_id, handler, values, _ in refused:
        add_button(page, button_id, handler, **values)
        page.click("#" + button_id)
    page.wait_for_function("n => window.djErrors.length === n", arg=len(refused))
    assert page.evaluate("window.djErrors") == [code for *_, code in refused]
    assert page.evaluate("window.djreconnect.state") == "connected"
    page.evaluate("document.querySelectorAll('[id^=call-], [id^=bad-]').forEach(b => b.remove())")
    assert server_state(page) == before
    # The view still works, and so does recovery after a drop.
    server.kill()
    page.wait_for_function("window.djreconnect.state === 'reconnecting'")
    page.fill("#body", "typed after the refusals")
    server.start()
    wait_connected(page, timeout=20_000)
    state = wait_server_state(page, lambda s: s["body"] == "typed after the refusals")
    assert state["title"] == "kept"


def test_a_tampered_grant_fails_once_and_says_why(browser, server, guard):
    context, page = new_page(browser, guard)

    def tamper(route):
        response = route.fetch()
        html = response.text().replace('"editor": "ey', '"editor": "xx')
        assert '"editor": "xx' in html
        route.fulfill(response=response, body=html)

    page.route(server.url + "/", tamper)
    live_requests = []
    page.on(
        "request",
        lambda r: live_requests.append(r.url) if "/djreconnect/ws" in r.url or "/djreconnect/sse" in r.url else None,
    )
    page.goto(server.url + "/")
    page.wait_for_function("window.djreconnect && window.djreconnect.state === 'failed'", timeout=60_000)
    assert "mount grant" in page.inner_text(".dj-reconnecting-banner")
    page.wait_for_timeout(1500)
    assert len(live_requests) == 1  # no retry loop
    context.close()
