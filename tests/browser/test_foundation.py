"""The walking skeleton in a real Chromium: boot, connect, events, patches, focus, ignore, submit."""

import pytest
from support import server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser


def test_page_boots_and_connects(live_page):
    assert live_page.evaluate("window.djreconnect.state") == "connected"
    classes = live_page.evaluate("[...document.body.classList]")
    assert "dj-connected" in classes and "dj-disconnected" not in classes
    assert live_page.locator(".dj-reconnecting-banner").count() == 0


def test_keystrokes_reach_the_server_and_update_the_preview(live_page):
    live_page.click("#body")
    live_page.keyboard.type("Hello, world")
    state = wait_server_state(live_page, lambda s: s["body"] == "Hello, world")
    assert state["body"] == "Hello, world"
    live_page.wait_for_function("document.querySelector('#preview').textContent === 'Hello, world'")


def test_click_round_trips(live_page):
    before = server_state(live_page)["clicks"]
    live_page.click("#clicks")
    wait_server_state(live_page, lambda s: s["clicks"] == before + 1)
    live_page.click("#clicks")
    wait_server_state(live_page, lambda s: s["clicks"] == before + 2)
    assert live_page.inner_text("#clicks") == "Clicked %d times" % (before + 2)


def test_focus_caret_and_typed_value_survive_patches(live_page):
    live_page.fill("#body", "")
    wait_server_state(live_page, lambda s: s["body"] == "")
    live_page.click("#body")
    live_page.keyboard.type("abcdef", delay=15)
    wait_server_state(live_page, lambda s: s["body"] == "abcdef")
    # Put the caret in the middle and type: the replies re-render the preview and the
    # textarea's default text while the user is in it.
    live_page.evaluate("document.querySelector('#body').setSelectionRange(3, 3)")
    live_page.keyboard.type("XY", delay=15)
    wait_server_state(live_page, lambda s: s["body"] == "abcXYdef")
    live_page.wait_for_function("document.querySelector('#preview').textContent === 'abcXYdef'")
    focus = live_page.evaluate(
        "() => { const el = document.activeElement; return [el.id, el.value, el.selectionStart, el.selectionEnd]; }"
    )
    assert focus == ["body", "abcXYdef", 5, 5]


def test_dj_update_ignore_content_survives(live_page):
    live_page.evaluate("document.querySelector('#rich-editor').innerHTML = '<b>mine</b> and only mine'")
    before = server_state(live_page)["clicks"]
    live_page.click("#clicks")
    wait_server_state(live_page, lambda s: s["clicks"] == before + 1)
    assert live_page.inner_html("#rich-editor") == "<b>mine</b> and only mine"


def test_submit_disables_its_button_until_the_reply(live_page):
    before = server_state(live_page)["saves"]
    live_page.fill("#title", "A title")
    # Read the button in the same task as the click: the submit handler runs synchronously.
    during = live_page.evaluate(
        "() => { const b = document.querySelector('#save'); b.click(); return [b.disabled, b.textContent]; }"
    )
    assert during == [True, "Saving..."]
    state = wait_server_state(live_page, lambda s: s["saves"] == before + 1)
    assert state["saved"]["title"] == "A title"
    live_page.wait_for_function("!document.querySelector('#save').disabled")
    assert live_page.inner_text("#save") == "Save"


def test_change_events_carry_each_field_kind(live_page):
    live_page.check("#published")
    live_page.select_option("#category", "guide")
    live_page.check("#visibility-private")
    live_page.fill("#priority", "5")
    live_page.locator("#priority").dispatch_event("change")
    live_page.select_option("#tags", ["web", "ux"])
    state = wait_server_state(
        live_page,
        lambda s: (
            s["published"]
            and s["category"] == "guide"
            and s["visibility"] == "private"
            and s["priority"] == 5
            and s["tags"] == ["web", "ux"]
        ),
    )
    assert state["tags"] == ["web", "ux"]


def test_unknown_handler_is_refused_and_the_connection_survives(live_page):
    live_page.evaluate(
        "() => { window.djErrors = [];"
        " document.addEventListener('djreconnect:error', e => window.djErrors.push(e.detail.code));"
        " const b = document.createElement('button'); b.id = 'rogue'; b.setAttribute('dj-click', 'mount');"
        " document.querySelector('[dj-root]').appendChild(b); }"
    )
    before = server_state(live_page)
    live_page.click("#rogue")
    live_page.wait_for_function("window.djErrors.length === 1")
    assert live_page.evaluate("window.djErrors") == ["unknown_handler"]
    assert live_page.evaluate("window.djreconnect.state") == "connected"
    live_page.evaluate("document.querySelector('#rogue').remove()")
    live_page.click("#clicks")
    after = wait_server_state(live_page, lambda s: s["clicks"] == before["clicks"] + 1)
    assert after["title"] == before["title"]


def test_intentional_disconnect_stays_down_until_connect(live_page):
    live_page.evaluate("window.djreconnect.disconnect()")
    assert live_page.evaluate("window.djreconnect.state") == "disconnected"
    live_page.wait_for_timeout(700)  # longer than the smallest reconnect delay
    assert live_page.evaluate("window.djreconnect.state") == "disconnected"
    classes = live_page.evaluate("[...document.body.classList]")
    assert "dj-disconnected" in classes and "dj-connected" not in classes
    assert live_page.locator(".dj-reconnecting-banner").count() == 0
    assert live_page.evaluate("document.body.hasAttribute('data-dj-reconnect-attempt')") is False
    live_page.evaluate("window.djreconnect.connect()")
    wait_connected(live_page, timeout=10_000)
    before = server_state(live_page)["clicks"]
    live_page.click("#clicks")
    wait_server_state(live_page, lambda s: s["clicks"] == before + 1)
