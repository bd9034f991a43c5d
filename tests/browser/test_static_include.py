"""index.html: a static page on another origin mounts the editor view from a backend."""

import subprocess
import sys
import time
import urllib.request

import pytest
from djreconnect_server.demo import PYODIDE_SCRIPT, point_static_page
from support import CHECKOUT, DemoServer, free_port, new_page, server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def static_host(tmp_path_factory):
    """A plain static file server on its own port: another origin than the backend's."""
    port = free_port()
    root = tmp_path_factory.mktemp("static")
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield url, root
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def transport():
    """index.html names its transport itself (WebSocket)."""
    return "ws"


@pytest.fixture(scope="module")
def server_flags(static_host):
    return ["--allow-origin", static_host[0]]


def publish(root, backend_url, interpreter, name="index.html"):
    """Copy index.html to the static host, pointed at ``backend_url`` (its one setting)
    and, for MicroPython, with the script tag its comment describes."""
    html = (CHECKOUT / "index.html").read_text(encoding="utf-8")
    assert '<base href="http://127.0.0.1:8000/">' in html and PYODIDE_SCRIPT in html
    (root / name).write_text(point_static_page(html, backend_url, interpreter), encoding="utf-8")


def test_static_page_on_another_origin_mounts_the_editor(browser, server, static_host, guard, interpreter):
    url, root = static_host
    publish(root, server.url, interpreter)
    context, page = new_page(browser, guard)
    page.goto(url + "/index.html")
    wait_connected(page)
    assert page.locator(".loading").count() == 0  # the server's render replaced the placeholder
    page.click("#body")
    page.keyboard.type("from afar")
    wait_server_state(page, lambda s: s["body"] == "from afar")
    assert page.inner_text("#preview") == "from afar"
    context.close()


def test_the_demo_serves_index_html_pointed_at_itself(browser, server, guard):
    context, page = new_page(browser, guard)
    page.goto(server.url + "/index.html")
    wait_connected(page)
    before = server_state(page)["clicks"]
    page.click("#clicks")
    wait_server_state(page, lambda s: s["clicks"] == before + 1)
    context.close()


def test_an_origin_not_allowed_is_refused_without_a_retry_loop(browser, static_host, guard, interpreter):
    url, root = static_host
    backend = DemoServer("--interpreter", interpreter).start()  # allows only its own origin
    try:
        publish(root, backend.url, interpreter, "refused.html")
        context, page = new_page(browser, guard)
        page.goto(url + "/refused.html")
        page.wait_for_function("() => window.djreconnect && window.djreconnect.state === 'failed'", timeout=60_000)
        banner = page.locator(".dj-reconnecting-banner")
        assert "origin not allowed" in banner.inner_text()
        assert "dj-reconnect-failed" in page.evaluate("[...document.body.classList]")
        context.close()
    finally:
        backend.stop()
