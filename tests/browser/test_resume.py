"""Resume in a real Chromium against a real server process: a reconnect keeps the server
session (state that lives in no form field survives), every event is applied once, a
restart with a persistent store resumes, and where the session is gone the page remounts
and recovers as before."""

import json
import signal

import pytest
from support import DemoServer, new_page, server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser

HEARTBEAT_MS = 400
FAST = [
    "--backoff-min-ms",
    "100",
    "--backoff-base-ms",
    "200",
    "--backoff-max-ms",
    "1000",
    "--max-attempts",
    "40",
    "--heartbeat-interval-ms",
    str(HEARTBEAT_MS),
    "--heartbeat-timeout-ms",
    str(HEARTBEAT_MS),
    "--connect-timeout-ms",
    "1000",
]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return tmp_path_factory.mktemp("store") / "sessions.db"


@pytest.fixture(scope="module")
def server_flags(store_path):
    return FAST + ["--store", "sqlite:///%s" % store_path]


# Records how each view came back (djreconnect:mounted's detail.mode), in order.
MOUNT_RECORDER = """() => {
  window.djMounts = [];
  if (!window.djMountsListening) {
    window.djMountsListening = true;
    document.addEventListener('djreconnect:mounted', e => window.djMounts.push(e.detail.mode));
  }
}"""


def record_mounts(page):
    page.evaluate(MOUNT_RECORDER)


def mounts(page):
    return page.evaluate("window.djMounts")


def click_times(page, times):
    before = server_state(page)["clicks"]
    for _ in range(times):
        page.click("#clicks")
    return wait_server_state(page, lambda s: s["clicks"] == before + times)


def offline(page):
    page.context.set_offline(True)
    page.wait_for_function("window.djreconnect.state === 'reconnecting'", timeout=10_000)


def test_a_network_blip_keeps_the_server_session(live_page):
    page = live_page
    record_mounts(page)
    start = click_times(page, 3)
    restores = start["restore_count"]
    offline(page)
    page.click("#clicks")  # queued while away
    page.fill("#title", "typed while away")
    page.context.set_offline(False)
    wait_connected(page, timeout=20_000)
    state = wait_server_state(page, lambda s: s["clicks"] == start["clicks"] + 1 and s["title"] == "typed while away")
    assert state["restore_count"] == restores  # nothing was lost: no auto-recover call
    assert mounts(page) == ["resume"]
    assert page.inner_text("#clicks").startswith("Clicked %d" % state["clicks"])


def test_an_event_in_flight_while_the_server_stalls_is_applied_exactly_once(live_page, server):
    page = live_page
    record_mounts(page)
    before = click_times(page, 1)["clicks"]
    server.signal(signal.SIGSTOP)
    try:
        page.click("#clicks")  # sent; the server holds it unread
        page.wait_for_function("window.djreconnect.state === 'reconnecting'", timeout=10_000)
        page.wait_for_timeout(1500)  # attempts time out against the stopped server
    finally:
        server.signal(signal.SIGCONT)
    wait_connected(page, timeout=30_000)
    state = wait_server_state(page, lambda s: s["clicks"] >= before + 1)
    page.wait_for_timeout(500)  # a second application would show by now
    assert server_state(page)["clicks"] == before + 1 == state["clicks"]
    assert mounts(page)[-1] == "resume"


def test_a_restart_with_a_persistent_store_resumes_the_session(live_page, server):
    page = live_page
    record_mounts(page)
    clicks = click_times(page, 2)["clicks"]
    server.terminate()
    page.wait_for_function("window.djreconnect.state === 'reconnecting'", timeout=10_000)
    page.click("#clicks")
    server.start()
    wait_connected(page, timeout=30_000)
    wait_server_state(page, lambda s: s["clicks"] == clicks + 1)
    # Resumed, never remounted (a stream may be resumed twice: once on the old process
    # while it drains, once on the new one).
    assert mounts(page) and set(mounts(page)) == {"resume"}


def test_a_page_frozen_past_the_heartbeat_resumes_on_thaw(live_page):
    page = live_page
    record_mounts(page)
    clicks = click_times(page, 1)["clicks"]
    cdp = page.context.new_cdp_session(page)
    cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
    page.wait_for_timeout(HEARTBEAT_MS * 4)
    cdp.send("Page.setWebLifecycleState", {"state": "active"})
    wait_connected(page, timeout=20_000)
    click_times(page, 1)
    assert server_state(page)["clicks"] == clicks + 1
    assert set(mounts(page)) <= {"resume"}  # still the same session, whether it dropped or not


def test_a_blip_within_the_grace_period_shows_no_banner(live_page):
    page = live_page
    page.evaluate(
        """() => {
          window.djBanners = 0;
          new MutationObserver(() => {
            if (document.querySelector('.dj-reconnecting-banner')
                || document.body.classList.contains('dj-disconnected')) window.djBanners++;
          }).observe(document.documentElement, {attributes: true, childList: true, subtree: true});
        }"""
    )
    page.context.set_offline(True)
    page.wait_for_function("window.djreconnect.state === 'reconnecting'", timeout=10_000)
    page.context.set_offline(False)  # back at once: `online` tries at once
    wait_connected(page, timeout=10_000)
    assert page.evaluate("window.djBanners") == 0


@pytest.mark.parametrize("store", ["memory", "expired"])
def test_where_the_session_is_gone_the_page_remounts_and_recovers(browser, guard, transport, interpreter, store):
    flags = FAST + ["--transport", transport, "--interpreter", interpreter]
    if store == "expired":
        flags += ["--session-retention-s", "1"]
    demo = DemoServer(*flags).start()
    context, page = new_page(browser, guard)
    try:
        page.goto(demo.url + "/")
        wait_connected(page)
        record_mounts(page)
        click_times(page, 2)
        if store == "memory":
            demo.terminate()  # a memory store loses its sessions with the process
            page.wait_for_function("window.djreconnect.state === 'reconnecting'", timeout=10_000)
            page.fill("#title", "kept across the restart")
            page.click("#clicks")
            demo.start()
        else:
            offline(page)
            page.fill("#title", "kept across the restart")
            page.click("#clicks")
            page.wait_for_timeout(2500)  # past the session's retention
            page.context.set_offline(False)
        wait_connected(page, timeout=30_000)
        state = wait_server_state(page, lambda s: s["title"] == "kept across the restart" and s["clicks"] == 1)
        assert state["restore_count"] >= 1  # auto-recover ran: the view was mounted afresh
        assert mounts(page) == ["remount"]
        assert json.loads(page.inner_text("#server-state"))["clicks"] == 1
    finally:
        context.close()
        demo.stop()
