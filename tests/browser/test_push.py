"""Server push in a real Chromium against a real server process: the demo's shared
comments reach every open page within a second, and a page that was away gets what was
pushed meanwhile, once, when it is back."""

import pytest
from support import new_page, wait_connected, wait_server_state

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server_flags():
    return ["--backoff-min-ms", "100", "--backoff-base-ms", "200", "--backoff-max-ms", "1000", "--max-attempts", "40"]


def comments(page):
    return page.eval_on_selector_all("#comments li", "items => items.map(li => li.textContent)")


def add_comment(page, text):
    page.fill("#comment", text)
    page.click("#add-comment")


@pytest.fixture(scope="module")
def second_page(browser, server, guard):
    context, page = new_page(browser, guard)
    page.goto(server.url + "/")
    wait_connected(page)
    yield page
    context.close()


def test_a_comment_added_on_one_page_appears_on_the_other_within_a_second(live_page, second_page):
    before = comments(live_page)
    add_comment(live_page, "hello from the first page")
    expected = before + ["hello from the first page"]
    second_page.wait_for_function(
        "n => document.querySelectorAll('#comments li').length === n", arg=len(expected), timeout=1000
    )
    assert comments(second_page) == expected
    live_page.wait_for_function("() => document.querySelector('#comment').value === ''")  # reset after submit
    assert comments(live_page) == expected


def test_a_page_that_was_away_gets_what_was_pushed_once_and_in_order(live_page, second_page):
    before = comments(live_page)
    second_page.context.set_offline(True)
    second_page.wait_for_function("window.djreconnect.state === 'reconnecting'", timeout=10_000)
    add_comment(live_page, "pushed while the other page was away")
    live_page.wait_for_function(
        "n => document.querySelectorAll('#comments li').length === n", arg=len(before) + 1, timeout=5000
    )
    add_comment(second_page, "queued on the page that was away")  # a submit: kept until the reconnect
    second_page.context.set_offline(False)
    wait_connected(second_page, timeout=20_000)
    expected = before + ["pushed while the other page was away", "queued on the page that was away"]
    for page in (live_page, second_page):
        page.wait_for_function(
            "n => document.querySelectorAll('#comments li').length === n", arg=len(expected), timeout=5000
        )
        assert comments(page) == expected
    state = wait_server_state(second_page, lambda s: s["comments"][-2:] == expected[-2:])
    assert state["comments"].count("pushed while the other page was away") == 1
