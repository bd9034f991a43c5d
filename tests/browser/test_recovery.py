"""Recovery in a real Chromium: what the user typed or clicked while the connection was
down reaches the server, whether the view was remounted (the server restarted with its
sessions in memory: kill) or its session resumed (the network dropped: offline), and the
server ends up knowing what the page shows."""

import random

import pytest
from support import new_page, server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser

# What the page shows, read the way the demo's handlers store it.
DOM_STATE = """() => {
  const q = s => document.querySelector(s);
  const checked = document.querySelector('input[name=visibility]:checked');
  return {
    title: q('#title').value,
    body: q('#body').value,
    search: q('#search').value,
    cursor: q('#cursor').value,
    published: q('#published').checked,
    category: q('#category').value,
    visibility: checked ? checked.value : null,
    priority: q('#priority').value === '' ? null : Number(q('#priority').value),
    tags: [...q('#tags').selectedOptions].map(o => o.value),
  };
}"""
RECOVERED = ("title", "body", "cursor", "published", "category", "visibility", "priority", "tags")


@pytest.fixture(scope="module")
def server_flags():
    # Many attempts: a restarted server may take seconds to answer on a loaded machine.
    return ["--backoff-min-ms", "100", "--backoff-base-ms", "200", "--backoff-max-ms", "600", "--max-attempts", "40"]


class Outage:
    """Takes the connection down one way, and brings it back."""

    def __init__(self, page, server, how):
        self.page, self.server, self.how = page, server, how

    def __enter__(self):
        if self.how == "kill":
            self.server.kill()
        else:
            self.page.context.set_offline(True)
        self.page.wait_for_function("window.djreconnect.state === 'reconnecting'", timeout=10_000)
        return self

    def __exit__(self, *exc):
        if self.how == "kill":
            self.server.start()
        else:
            self.page.context.set_offline(False)
        if exc[0] is None:
            wait_connected(self.page, timeout=20_000)


def dom_state(page):
    return page.evaluate(DOM_STATE)


def wait_recovered(page):
    """Wait until the server knows every recovered field as the page shows it."""
    shown = dom_state(page)
    return wait_server_state(page, lambda s: all(s[key] == shown[key] for key in RECOVERED))


def set_cursor(page, value):
    """The rich editor keeps its cursor in a hidden field, as the seed's example does."""
    page.evaluate("v => { document.querySelector('#cursor').value = v; }", value)


@pytest.mark.parametrize("how", ["kill", "offline"])
def test_every_field_kind_edited_during_an_outage_is_recovered(live_page, server, how):
    page = live_page
    restores = server_state(page)["restore_count"]
    with Outage(page, server, how):
        page.fill("#title", "Written offline")
        page.fill("#body", "Line one\nline two")
        page.fill("#search", "stale query")
        set_cursor(page, "17")
        page.check("#published")
        page.select_option("#category", "opinion")
        page.check("#visibility-unlisted")
        page.fill("#priority", "4")
        page.select_option("#tags", ["python", "networking"])
    state = wait_recovered(page)
    assert state["title"] == "Written offline"
    assert state["body"] == "Line one\nline two"
    assert state["published"] is True and state["category"] == "opinion"
    assert state["visibility"] == "unlisted" and state["priority"] == 4
    assert state["tags"] == ["python", "networking"]
    # dj-no-recover: not replayed; the field shows the server's (empty) search.
    assert state["search"] == "" and page.input_value("#search") == ""
    # The mount's render did not overwrite what the user typed.
    assert dom_state(page)["title"] == "Written offline"
    assert state["cursor"] == "17"
    if how == "kill":
        # A fresh view: restore_editor ran once, with the container's attribute and field.
        assert state["restore_calls"] == [{"doc_id": "doc-1", "cursor": "17"}]
    else:
        # The session was kept: nothing to restore, the hidden field went by form recovery.
        assert state["restore_count"] == restores


def test_auto_recover_runs_once_per_reconnect_and_not_on_first_load(browser, server, guard):
    context, page = new_page(browser, guard)
    page.goto(server.url + "/")
    wait_connected(page)
    page.wait_for_timeout(200)
    assert server_state(page)["restore_calls"] == []
    for cursor in ("3", "9"):
        with Outage(page, server, "kill"):  # sessions in memory: the view is mounted afresh
            set_cursor(page, cursor)
        wait_server_state(page, lambda s: s["restore_calls"])
        page.wait_for_timeout(200)
        assert server_state(page)["restore_calls"] == [{"doc_id": "doc-1", "cursor": cursor}]
    context.close()


@pytest.mark.parametrize("how", ["kill", "offline"])
def test_clicks_and_submits_made_offline_are_sent_once_in_order(live_page, server, how):
    page = live_page
    before = server_state(page)
    with Outage(page, server, how):
        page.click("#clicks")
        page.click("#clicks")
        page.fill("#title", "queued save")
        page.click("#save")
        assert page.evaluate("document.querySelector('#save').disabled") is True
    # A fresh view counts from zero; a resumed one from where it was: either way, exactly
    # the two offline clicks and the one save on top.
    clicks, saves = (2, 1) if how == "kill" else (before["clicks"] + 2, before["saves"] + 1)
    state = wait_server_state(page, lambda s: s["clicks"] == clicks and s["saves"] == saves)
    assert state["saved"]["title"] == "queued save"
    page.wait_for_timeout(400)
    state = server_state(page)
    assert (state["clicks"], state["saves"]) == (clicks, saves)
    assert page.inner_text("#clicks") == "Clicked %d times" % clicks
    page.wait_for_function("!document.querySelector('#save').disabled")


def test_input_typed_while_the_runtime_boots_reaches_the_server(browser, server, guard):
    context, page = new_page(browser, guard)
    # Hold the runtime's wheel back (a slow network) so the typing surely comes first.
    held, released = [], []

    def hold_wheel(route):
        if released:
            route.continue_()
        else:
            held.append(route)

    page.route("**/*.whl", hold_wheel)
    page.goto(server.url + "/", wait_until="domcontentloaded")
    # The server-rendered page is usable at once.
    page.fill("#title", "early bird")
    page.check("#published")
    page.select_option("#tags", ["ux"])
    assert page.evaluate("window.djreconnect === undefined")
    released.append(True)
    for route in held:
        route.continue_()
    wait_connected(page)
    state = wait_server_state(
        page, lambda s: s["title"] == "early bird" and s["published"] is True and s["tags"] == ["ux"]
    )
    assert state["restore_calls"] == []  # auto-recover is for reconnects, not the first load
    context.close()


def random_edit(page, rng):
    field = rng.choice(["title", "body", "cursor", "published", "category", "visibility", "priority", "tags"])
    if field in ("title", "body"):
        page.fill("#" + field, "".join(rng.choice("abc xyz") for _ in range(rng.randint(0, 12))))
    elif field == "cursor":
        set_cursor(page, str(rng.randint(0, 500)))
    elif field == "published":
        page.set_checked("#published", rng.random() < 0.5)
    elif field == "category":
        page.select_option("#category", rng.choice(["news", "guide", "opinion"]))
    elif field == "visibility":
        page.check("#visibility-" + rng.choice(["public", "unlisted", "private"]))
    elif field == "priority":
        page.fill("#priority", str(rng.randint(1, 5)))
        page.locator("#priority").dispatch_event("change")
    else:
        page.select_option("#tags", rng.sample(["python", "web", "networking", "ux"], rng.randint(0, 3)))


def test_random_edits_across_outages_end_with_server_state_equal_to_the_dom(live_page, server):
    page = live_page
    rng = random.Random(20261128)
    for outage in range(4):
        for _ in range(rng.randint(1, 4)):
            random_edit(page, rng)  # while connected
        with Outage(page, server, "kill" if outage % 2 else "offline"):
            for _ in range(rng.randint(3, 8)):
                random_edit(page, rng)
        state = wait_recovered(page)
        shown = dom_state(page)
        assert {key: state[key] for key in RECOVERED} == {key: shown[key] for key in RECOVERED}
