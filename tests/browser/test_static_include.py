"""Static includes: index.html and the README's snippet, on another origin than the
backend's, mount the editor view; the snippet loads its assets from a CDN-like origin."""

import re
import subprocess
import sys
import time
import urllib.request

import djreconnect
import pytest
from djreconnect import constants
from djreconnect_server.demo import PYODIDE_SCRIPT, point_static_page
from djreconnect_server.npm import pinned_versions
from support import CHECKOUT, DemoServer, free_port, new_page, server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser


def serve(command, probe):
    """A server process on 127.0.0.1; returns (process, url) once ``probe`` answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, *[str(part).replace("{port}", str(port)) for part in command]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + probe, timeout=1)
            return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def static_host(tmp_path_factory):
    """A plain static file server on its own port: another origin than the backend's."""
    root = tmp_path_factory.mktemp("static")
    process, url = serve(["-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", root], "/")
    yield url, root
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def cdn():
    """A third origin laid out like the public npm CDN, which also hosts the wheel."""
    command = [CHECKOUT / "tests" / "cdn_server.py", "{port}", CHECKOUT / "node_modules", CHECKOUT / "wheels"]
    process, url = serve(command, "/" + WHEEL)
    yield url
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def transport():
    """index.html names its transport itself (WebSocket)."""
    return "ws"


@pytest.fixture(scope="module")
def server_flags(static_host):
    return ["--allow-origin", static_host[0]]


WHEEL = "djreconnect-%s-py3-none-any.whl" % djreconnect.__version__
PYSCRIPT_VERSION = pinned_versions(CHECKOUT)["@pyscript/core"]
# The README snippet's public origins, and which test origin stands in for each.
SNIPPET_ORIGINS = ("https://cdn.jsdelivr.net", "https://static.example.com", "https://backend.example.com")


def readme_static_include(interpreter):
    """The README's static include, verbatim: the page, with step 4 replaced by the
    MicroPython block for MicroPython, as the README says."""
    blocks = re.findall(r"```html\n(.*?)```", (CHECKOUT / "README.md").read_text(encoding="utf-8"), re.S)
    [page] = [block for block in blocks if block.startswith("<!DOCTYPE html>") and SNIPPET_ORIGINS[2] in block]
    if interpreter == "micropython":
        [step] = [block for block in blocks if block.startswith('<script type="mpy"')]
        start = page.index('<script type="py"')
        end = page.index("</script>", start) + len("</script>")
        page = page[:start] + step.strip() + page[end:]
    return page


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


def test_the_readme_static_include_loads_from_a_cdn_and_connects(browser, server, static_host, cdn, guard, interpreter):
    html = readme_static_include(interpreter)
    for public, local in zip(SNIPPET_ORIGINS, (cdn, cdn, server.url)):
        assert public in html
        html = html.replace(public, local)
    assert not re.findall(r"https?://(?!127\.0\.0\.1:)", html), "a URL the test does not stand in for"
    url, root = static_host
    (root / "snippet.html").write_text(html, encoding="utf-8")
    context, page = new_page(browser, guard)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url + "/snippet.html")
    wait_connected(page)
    module = {"pyodide": "/npm/pyodide@", "micropython": "/npm/@micropython/micropython-webassembly-pyscript@"}
    # PyScript (checked by its integrity), the interpreter and the wheel came from the CDN;
    # the loader and the connection from the backend; nothing else from anywhere.
    assert cdn + "/npm/@pyscript/core@%s/dist/core.js" % PYSCRIPT_VERSION in requests
    assert [r for r in requests if r.startswith(cdn + module[interpreter])]
    assert cdn + "/" + WHEEL in requests
    assert server.url + "/djreconnect/boot.js" in requests
    assert not [r for r in requests if r.startswith(server.url + "/djreconnect/") and "/boot.js" not in r]
    assert page.locator(".loading").count() == 0 and page.locator("." + constants.CLASS_BOOT_ERROR).count() == 0
    page.click("#body")
    page.keyboard.type("from the snippet")
    wait_server_state(page, lambda s: s["body"] == "from the snippet")
    context.close()


def test_a_tampered_cdn_file_is_refused_and_the_page_says_so(browser, server, static_host, cdn, guard, interpreter):
    html = readme_static_include(interpreter)
    for public, local in zip(SNIPPET_ORIGINS, (cdn, cdn, server.url)):
        html = html.replace(public, local)
    url, root = static_host
    (root / "tampered.html").write_text(html, encoding="utf-8")
    context, page = new_page(browser, guard)

    def compromised(route):  # the CDN serves something else than the pinned file
        response = route.fetch()
        route.fulfill(response=response, body=b"window.tampered = true;\n" + response.body())

    page.route(cdn + "/npm/@pyscript/core@*/dist/core.js", compromised)
    page.goto(url + "/tampered.html")
    page.wait_for_function("() => document.body.classList.contains('%s')" % constants.CLASS_BOOT_FAILED)
    text = page.locator("." + constants.CLASS_BOOT_ERROR).inner_text()
    assert "could not load %s/npm/@pyscript/core@%s/dist/core.js" % (cdn, PYSCRIPT_VERSION) in text
    assert page.evaluate("window.tampered === undefined")  # Subresource Integrity kept it from running
    context.close()
