"""Reconnection lifecycle in a real Chromium against a real server process that is
killed, terminated, stopped and cut off: banner, body state, backoff, failure, no leaks."""

import signal

import pytest
from support import server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser

# Enough attempts (up to ~9 s) for a restarted server to answer on a loaded machine.
MIN_MS, BASE_MS, CAP_MS, ATTEMPTS = 150, 200, 800, 12
HEARTBEAT_MS = 400
# Scheduling and a refused connection take a little time on top of each drawn delay.
SLACK_MS = 400


@pytest.fixture(scope="module")
def server_flags():
    return [
        "--backoff-min-ms",
        str(MIN_MS),
        "--backoff-base-ms",
        str(BASE_MS),
        "--backoff-max-ms",
        str(CAP_MS),
        "--max-attempts",
        str(ATTEMPTS),
        "--heartbeat-interval-ms",
        str(HEARTBEAT_MS),
        "--heartbeat-timeout-ms",
        str(HEARTBEAT_MS),
        # Every attempt shows at once, so the recorder sees each (the grace period before
        # the banner has tests of its own, in test_resume).
        "--banner-delay-ms",
        "0",
    ]


# Records, in the page, every change of the reconnection UI, with its time.
RECORDER = """() => {
  window.djSeen = [];
  const note = () => {
    const banner = document.querySelector('.dj-reconnecting-banner');
    window.djSeen.push({
      t: performance.now(),
      state: window.djreconnect.state,
      classes: [...document.body.classList].filter(c => c.startsWith('dj-')).sort(),
      attempt: document.body.getAttribute('data-dj-reconnect-attempt'),
      property: document.body.style.getPropertyValue('--dj-reconnect-attempt'),
      banner: banner ? banner.textContent : null,
      bannerFixed: banner ? getComputedStyle(banner).position === 'fixed' : null,
    });
  };
  window.djRecorder && window.djRecorder.disconnect();
  window.djRecorder = new MutationObserver(note);
  window.djRecorder.observe(document.documentElement,
    {attributes: true, childList: true, subtree: true, characterData: true});
  note();
}"""


def seen(page):
    return page.evaluate("window.djSeen")


def ui(page):
    page.evaluate("window.djSeen = []")
    page.evaluate(RECORDER)
    return seen(page)[-1]


def wait_state(page, state, timeout=20_000):
    page.wait_for_function("s => window.djreconnect.state === s", arg=state, timeout=timeout)


def assert_clear(page):
    now = ui(page)
    assert now["state"] == "connected"
    assert now["classes"] == ["dj-connected"]
    assert now["attempt"] is None and now["property"] == "" and now["banner"] is None


def assert_reconnecting_ui(records):
    reconnecting = [r for r in records if r["state"] == "reconnecting" and r["banner"]]
    assert reconnecting, "the page never showed it was reconnecting"
    for record in reconnecting:
        n = record["attempt"]
        assert record["banner"] == "Reconnecting... (attempt %s of %d)" % (n, ATTEMPTS)
        assert record["property"].strip() == n
        assert "dj-disconnected" in record["classes"] and "dj-connected" not in record["classes"]
        assert record["bannerFixed"] is True
    return reconnecting


@pytest.fixture(autouse=True)
def _connected_to_a_running_server(live_page, server):
    """Each test starts from a running server and a connected page, whatever the test
    before it left (so one failure does not fail the rest of the module)."""
    if server.process is None or server.process.poll() is not None:
        server.start()
    if live_page.evaluate("window.djreconnect.state") != "connected":
        live_page.evaluate("window.djreconnect.retry()")
    wait_connected(live_page, timeout=30_000)


@pytest.mark.parametrize("stop", ["kill", "terminate"])
def test_server_restart_shows_the_banner_then_reconnects_and_clears(live_page, server, stop):
    page = live_page
    page.evaluate(RECORDER)
    getattr(server, stop)()  # SIGKILL: close 1006; SIGTERM: uvicorn closes with 1012
    wait_state(page, "reconnecting")
    page.wait_for_selector(".dj-reconnecting-banner")
    server.start()
    wait_connected(page, timeout=20_000)
    assert_reconnecting_ui(seen(page))
    assert_clear(page)
    # Remounted: the new server process has the view and answers events.
    before = server_state(page)["clicks"]
    page.click("#clicks")
    wait_server_state(page, lambda s: s["clicks"] == before + 1)


def test_attempts_wait_full_jitter_delays_then_fail_with_a_retry_button(live_page, server):
    page = live_page
    page.evaluate(RECORDER)
    server.kill()
    wait_state(page, "failed", timeout=30_000)
    records = seen(page)
    reconnecting = assert_reconnecting_ui(records)
    firsts = {}
    for record in reconnecting:
        firsts.setdefault(int(record["attempt"]), record["t"])
    assert sorted(firsts) == list(range(1, ATTEMPTS + 1))
    failed_at = next(r["t"] for r in records if r["state"] == "failed")
    ends = [firsts[n] for n in range(2, ATTEMPTS + 1)] + [failed_at]
    for n in range(1, ATTEMPTS + 1):
        waited = ends[n - 1] - firsts[n]
        ceiling = max(MIN_MS, min(BASE_MS * 2 ** (n - 1), CAP_MS))
        assert MIN_MS - 20 <= waited <= ceiling + SLACK_MS, (n, waited)
    failed = ui(page)
    assert failed["classes"] == ["dj-disconnected", "dj-reconnect-failed"]
    assert failed["attempt"] is None and failed["property"] == ""
    assert failed["banner"].startswith("Connection lost")
    assert "attempt" not in failed["banner"] or "attempts" in failed["banner"]
    # No silent loop behind it: neither the runtime nor the browser (EventSource has
    # a retry loop of its own) tries the server again.
    attempts = []
    listener = lambda request: attempts.append(request.url) if "/djreconnect/" in request.url else None
    page.on("request", listener)
    page.wait_for_timeout(CAP_MS + 3000 + SLACK_MS)
    page.remove_listener("request", listener)
    assert attempts == []
    assert page.evaluate("window.djreconnect.state") == "failed"
    server.start()
    page.click(".dj-reconnect-retry")
    wait_connected(page, timeout=20_000)
    assert_clear(page)


def test_an_offline_network_drops_and_online_reconnects(live_page):
    page = live_page
    page.evaluate(RECORDER)
    page.context.set_offline(True)
    wait_state(page, "reconnecting")
    page.context.set_offline(False)
    wait_connected(page, timeout=20_000)
    assert_reconnecting_ui(seen(page))
    assert_clear(page)


def test_a_half_open_connection_is_caught_by_the_heartbeat(live_page, server):
    page = live_page
    page.evaluate(RECORDER)
    server.signal(signal.SIGSTOP)  # nothing closes; the server just stops answering
    try:
        wait_state(page, "reconnecting", timeout=10_000)
    finally:
        server.signal(signal.SIGCONT)
    wait_connected(page, timeout=20_000)
    assert_reconnecting_ui(seen(page))
    assert_clear(page)


def listener_count(page, cdp):
    total = 0
    for target in ("window", "document"):
        handle = cdp.send("Runtime.evaluate", {"expression": target})["result"]["objectId"]
        total += len(cdp.send("DOMDebugger.getEventListeners", {"objectId": handle})["listeners"])
    return total


def test_twenty_drops_leak_nothing_and_a_click_is_sent_once(live_page, server):
    page = live_page
    cdp = page.context.new_cdp_session(page)
    wait_connected(page)
    listeners = listener_count(page, cdp)
    proxies = page.evaluate("window.djreconnect.liveProxies()")
    for cycle in range(20):
        if cycle % 5 == 4:
            server.kill()
            wait_state(page, "reconnecting")
            server.start()
        else:
            page.context.set_offline(True)
            wait_state(page, "reconnecting")
            page.context.set_offline(False)
        wait_connected(page, timeout=20_000)
    assert listener_count(page, cdp) == listeners
    assert page.evaluate("window.djreconnect.liveProxies()") == proxies
    before = server_state(page)["clicks"]
    page.click("#clicks")
    wait_server_state(page, lambda s: s["clicks"] == before + 1)
    page.wait_for_timeout(300)
    assert server_state(page)["clicks"] == before + 1
