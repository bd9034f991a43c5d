"""``window.djreconnect.stop()`` (``Runtime.stop``) in a real Chromium: a runtime torn down
leaves no listener, proxy or connection behind, and a click no longer sends anything."""

import pytest
from support import new_page, server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser

# Keeps every WebSocket and EventSource the page makes, to see that each was closed.
TRANSPORT_SPY = """
window.djTransports = [];
for (const name of ['WebSocket', 'EventSource']) {
  const Original = window[name];
  window[name] = class extends Original {
    constructor(...args) { super(...args); window.djTransports.push(this); }
  };
}
"""

# The listeners the runtime adds, one each: (target, DOM event type).
RUNTIME_LISTENERS = (
    ("document", "click"),
    ("document", "submit"),
    ("document", "change"),
    ("document", "input"),
    ("document", "visibilitychange"),
    ("window", "online"),
    ("window", "offline"),
    ("window", "pagehide"),
    ("window", "pageshow"),
)


def listeners_by_type(cdp):
    """How many listeners of each RUNTIME_LISTENERS type window and document hold."""
    counts = {}
    for target in ("window", "document"):
        handle = cdp.send("Runtime.evaluate", {"expression": target})["result"]["objectId"]
        for listener in cdp.send("DOMDebugger.getEventListeners", {"objectId": handle})["listeners"]:
            key = (target, listener["type"])
            if key in RUNTIME_LISTENERS:
                counts[key] = counts.get(key, 0) + 1
    return counts


def test_stop_leaves_no_listener_proxy_or_connection_and_clicks_no_longer_send(browser, server, guard):
    context, page = new_page(browser, guard)
    try:
        page.add_init_script(TRANSPORT_SPY)
        sent = []  # what the page sent its server: WebSocket frames, or SSE POSTs
        page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(frame)))
        page.on("request", lambda request: request.method == "POST" and sent.append(request.url))
        page.goto(server.url + "/")
        wait_connected(page)
        cdp = page.context.new_cdp_session(page)

        # While it runs: a click is sent, and the runtime holds its listeners and proxies.
        before = server_state(page)["clicks"]
        frames = len(sent)
        page.click("#clicks")
        wait_server_state(page, lambda state: state["clicks"] == before + 1)
        assert len(sent) > frames
        running = listeners_by_type(cdp)
        assert set(running) == set(RUNTIME_LISTENERS)
        assert page.evaluate("window.djreconnect.liveProxies()") > 0
        transports = page.evaluate("window.djTransports.length")
        assert transports >= 1

        page.evaluate("window.djreconnect.stop()")

        # Every transport it opened is closed, and the page says it is disconnected.
        page.wait_for_function("window.djTransports.every(t => t.readyState === t.CLOSED)", timeout=10_000)
        assert page.evaluate("window.djreconnect.state") == "disconnected"
        assert page.evaluate("document.body.classList.contains('dj-disconnected')")
        # Not one of its listeners is left, and no proxy: those of a POST in flight go
        # once it settles.
        stopped = listeners_by_type(cdp)
        for key in RUNTIME_LISTENERS:
            assert stopped.get(key, 0) == running[key] - 1, key
        page.wait_for_function("window.djreconnect.liveProxies() === 0", timeout=10_000)
        # Its functions are gone with their proxies.
        assert (
            page.evaluate("['connect', 'disconnect', 'retry', 'stop'].map(name => typeof window.djreconnect[name])")
            == ["undefined"] * 4
        )

        # A click, the network coming back and the page shown again reach nothing.
        frames = len(sent)
        page.click("#clicks")
        page.evaluate("window.dispatchEvent(new Event('online')); window.dispatchEvent(new Event('pageshow'))")
        page.wait_for_timeout(1000)
        assert len(sent) == frames
        assert page.evaluate("window.djTransports.length") == transports
        assert page.evaluate("window.djreconnect.liveProxies()") == 0
        # Nothing failed on the way (the runtime logs a failed effect as an error).
        assert not [line for line in guard.console if line.startswith("error") and "djreconnect" in line]
    finally:
        context.close()
