"""The asset allow-list and the response headers, as a real page boots: every file the runtime
asks the backend for is served (nothing it needs is kept out), and carries its headers."""

import pytest
from support import new_page, wait_connected

pytestmark = pytest.mark.browser


def test_the_page_boots_from_the_allow_list_with_its_headers(browser, server, guard, interpreter):
    context, page = new_page(browser, guard)
    responses = []
    page.on("response", lambda response: responses.append(response))
    document = page.goto(server.url + "/")
    wait_connected(page)

    headers = document.all_headers()
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == "frame-ancestors 'none'"
    assert headers["x-content-type-options"] == "nosniff"

    assets = [r for r in responses if r.url.startswith(server.url + "/djreconnect/") and "/djreconnect/ws" not in r.url]
    loaded = {r.url.rsplit("/", 1)[1]: r for r in assets if r.request.method == "GET"}
    failed = {name: r.status for name, r in loaded.items() if r.status not in (200, 304)}
    assert not failed, "the runtime asked for files the backend does not serve: %s" % failed
    expected = {"core.js", "core.css", "djreconnect"}
    expected |= {"pyodide.mjs", "pyodide.asm.wasm"} if interpreter == "pyodide" else {"micropython.wasm"}
    names = set(loaded) | {name.split("-", 1)[0] for name in loaded}
    assert expected <= names, sorted(loaded)
    for name, response in loaded.items():
        asset_headers = response.all_headers()
        assert asset_headers.get("x-content-type-options") == "nosniff", name
        if not name.startswith(("sse", "post")):
            assert asset_headers.get("cache-control") in ("no-cache", "public, max-age=31536000, immutable"), name
    context.close()
