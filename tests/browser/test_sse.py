"""SSE specifics in a real Chromium: fallback when upgrades are refused, resumed streams
without lost or repeated updates."""

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import free_port, new_page, server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def transport():
    """The page asks for a WebSocket; the proxy makes it fall back."""
    return "ws"


@pytest.fixture(scope="module")
def proxy_port():
    return free_port()


@pytest.fixture(scope="module")
def server_flags(proxy_port):
    """The page reaches the server through the proxy, under the proxy's host and port."""
    return ["--trusted-host", "127.0.0.1:%d" % proxy_port]


@pytest.fixture(scope="module")
def proxy(server, proxy_port):
    port = proxy_port
    script = Path(__file__).with_name("refusing_proxy.py")
    process = subprocess.Popen([sys.executable, str(script), str(port), str(server.port)])
    url = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield url
    process.kill()
    process.wait()


def test_refused_upgrades_fall_back_to_sse_for_the_page_lifetime(browser, proxy, server, guard):
    context, page = new_page(browser, guard)
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(proxy + "/")
    wait_connected(page)
    assert page.evaluate("window.djreconnect.transport") == "sse"
    page.click("#body")
    page.keyboard.type("through the proxy")
    wait_server_state(page, lambda s: s["body"] == "through the proxy")
    tried = len(sockets)
    assert tried == 1  # one WebSocket was tried, once
    # A drop reconnects over SSE straight away: the WebSocket is not tried again.
    page.context.set_offline(True)
    page.wait_for_function("window.djreconnect.state === 'reconnecting'")
    page.context.set_offline(False)
    wait_connected(page, timeout=20_000)
    assert len(sockets) == tried
    before = server_state(page)["clicks"]
    page.click("#clicks")
    wait_server_state(page, lambda s: s["clicks"] == before + 1)
    context.close()
