"""The boot window: clicks, links and submits made before the runtime starts are kept
(bounded), never navigate, and reach the server on the first mount, in order, once."""

from pathlib import Path

import pytest
from djreconnect import constants
from support import DemoServer, new_page, server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser


class BootServer(DemoServer):
    """tests/browser/boot_app.py as a real process."""

    program = [str(Path(__file__).resolve().with_name("boot_app.py"))]


@pytest.fixture(scope="module")
def server(transport, interpreter):
    app = BootServer("--transport", transport, "--interpreter", interpreter).start()
    yield app
    app.stop()


def open_in_boot_window(browser, guard, url):
    """A page whose runtime cannot start yet: its wheel's download is held back.
    Returns (context, page, release)."""
    context, page = new_page(browser, guard)
    held = []
    page.route("**/*.whl", lambda route: held.append(route))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("() => window.%s && window.%s.waiting" % ((constants.BOOT_GLOBAL,) * 2))
    page.evaluate(
        """() => {
        window.stillTheSamePage = true;
        window.errors = [];
        document.addEventListener('djreconnect:error',
            (e) => window.errors.push(e.detail.code + ': ' + e.detail.message));
    }"""
    )

    def release():
        assert page.evaluate("window.djreconnect === undefined"), "the runtime started too soon"
        for route in held:
            route.continue_()
        page.unroute("**/*.whl")

    return context, page, release


def test_clicks_links_and_submits_before_the_start_reach_the_server_in_order_once(browser, server, guard):
    context, page, release = open_in_boot_window(browser, guard, server.url + "/")
    page.click("#one")
    page.click("#link")  # a dj-click link does not navigate
    page.fill("#title", "first")
    page.press("#title", "Enter")  # the form does not submit natively
    page.click("#two")
    page.fill("#title", "second")
    page.click("#send")
    assert page.evaluate("window.stillTheSamePage") and page.url == server.url + "/"
    release()
    wait_connected(page)
    expected = ["click 1", "link", "submit first", "click 2", "submit second"]
    wait_server_state(page, lambda state: len(state["log"]) >= len(expected))
    page.wait_for_timeout(500)  # nothing more arrives: each was sent once
    assert server_state(page)["log"] == expected
    assert page.evaluate("window.stillTheSamePage") and page.url == server.url + "/"
    assert page.is_enabled("#two")  # its dj-disable-with was undone by the reply
    assert page.locator("." + constants.CLASS_BOOT_ERROR).count() == 0
    assert constants.CLASS_BOOT_FAILED not in page.evaluate("[...document.body.classList]")
    # The loader is gone: a click now goes the runtime's way, once.
    page.click("#one")
    wait_server_state(page, lambda state: state["log"] == expected + ["click 1"])
    context.close()


def test_past_the_bound_a_click_is_refused_and_said_so(browser, server, guard):
    context, page, release = open_in_boot_window(browser, guard, server.url + "/")
    # In one go (one wait for a main thread that Pyodide may keep busy compiling).
    page.evaluate(
        "(n) => { for (let i = 0; i < n; i++) document.getElementById('one').click(); }",
        constants.BOOT_RECORD_LIMIT + 2,
    )
    release()
    wait_connected(page)
    state = wait_server_state(page, lambda state: len(state["log"]) >= constants.BOOT_RECORD_LIMIT)
    page.wait_for_timeout(500)
    assert server_state(page)["log"] == ["click 1"] * constants.BOOT_RECORD_LIMIT == state["log"]
    assert page.evaluate("window.errors") == [
        "queue_full: 2 click(s) or submit(s) made while the page started were not kept "
        "(at most %d, with %d characters of form text)" % (constants.BOOT_RECORD_LIMIT, constants.BOOT_RECORD_CHARS)
    ]
    context.close()


def test_a_submit_past_the_text_bound_is_refused_and_later_ones_are_kept(browser, server, guard):
    context, page, release = open_in_boot_window(browser, guard, server.url + "/")
    page.evaluate(
        "(size) => { document.getElementById('title').value = 'x'.repeat(size); }", constants.BOOT_RECORD_CHARS
    )
    page.click("#send")
    page.fill("#title", "small")
    page.click("#send")
    assert page.evaluate("window.stillTheSamePage")
    release()
    wait_connected(page)
    wait_server_state(page, lambda state: state["log"] == ["submit small"])
    assert page.evaluate("window.errors") == [
        "queue_full: 1 click(s) or submit(s) made while the page started were not kept "
        "(at most %d, with %d characters of form text)" % (constants.BOOT_RECORD_LIMIT, constants.BOOT_RECORD_CHARS)
    ]
    context.close()
