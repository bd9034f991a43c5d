"""app.py and the demo app: the editor page, the assets, and the live WebSocket, through TestClient."""

import json
from pathlib import Path

import djreconnect
import pytest
from djreconnect import constants
from djreconnect_server import DJReconnect, LiveView, Settings, event_handler
from djreconnect_server.demo import create_app
from djreconnect_server.npm import pinned_versions
from djreconnect_server.settings import wheel_name
from djreconnect_server.signing import MountSigner
from fastapi.testclient import TestClient
from selectolax.lexbor import LexborHTMLParser
from starlette.websockets import WebSocketDisconnect

CHECKOUT = Path(__file__).resolve().parents[2]
NODE_MODULES = CHECKOUT / "node_modules"
WHEELS = CHECKOUT / "wheels"
KEY = "a-test-secret-key-of-some-length"
PINNED = pinned_versions(CHECKOUT)
# Where the backend serves npm's packages: versioned URLs laid out as on an npm CDN.
PYODIDE = "/djreconnect/npm/pyodide@%s" % PINNED["pyodide"]
MICROPYTHON = (
    "/djreconnect/npm/@micropython/micropython-webassembly-pyscript@%s"
    % PINNED["@micropython/micropython-webassembly-pyscript"]
)
PYSCRIPT = "/djreconnect/npm/@pyscript/core@%s/dist" % PINNED["@pyscript/core"]
WS = constants.DEFAULT_PREFIX + constants.PATH_WEBSOCKET

needs_assets = pytest.mark.skipif(
    not (NODE_MODULES / "pyodide" / "pyodide.mjs").is_file()
    or not (NODE_MODULES / "@pyscript" / "core" / "dist" / "core.js").is_file()
    or not list(WHEELS.glob("djreconnect-*-py3-none-any.whl")),
    reason="needs `npm ci` (node_modules/pyodide, node_modules/@pyscript/core) and a built wheel in wheels/",
)
pytestmark = needs_assets


def demo_app(**settings):
    settings.setdefault("node_modules_dir", NODE_MODULES)
    settings.setdefault("wheels_dir", WHEELS)
    settings.setdefault("secret_key", KEY)
    settings.setdefault("trusted_hosts", ["testserver"])  # TestClient's Host
    return create_app(**settings)


@pytest.fixture(scope="module")
def client():
    with TestClient(demo_app()) as client:
        yield client


@pytest.fixture(scope="module")
def page(client):
    response = client.get("/")
    assert response.status_code == 200
    return response


@pytest.fixture(scope="module")
def tree(page):
    return LexborHTMLParser(page.text)


def root_html(tree):
    root = tree.css_first("[dj-view] [dj-root]")
    return "".join(node.html for node in root.iter(include_text=True))


def runtime_config(tree):
    return json.loads(tree.css_first("script#" + constants.CONFIG_ELEMENT_ID).text())


def join_frame(tree, ref=1):
    return {
        "t": "join",
        "ref": ref,
        "view": "editor",
        "name": "editor",
        "token": runtime_config(tree)["tokens"]["editor"],
        "html": root_html(tree),
    }


def roundtrip(ws, frame):
    ws.send_text(json.dumps(frame))
    return json.loads(ws.receive_text())


# --- the page ----------------------------------------------------------------------


def test_page_is_html_with_the_view(page, tree):
    assert page.headers["content-type"].startswith("text/html")
    assert tree.body.attributes["dj-view"] == "editor"
    assert tree.css_first("[dj-view] [dj-root]") is not None
    assert tree.css_first("form").attributes["dj-submit"] == "save_form"


def test_page_has_every_field_of_the_demo(tree):
    title = tree.css_first("input#title")
    assert (title.attributes["name"], title.attributes["dj-change"], title.attributes["value"]) == (
        "title",
        "validate_title",
        "",
    )

    body = tree.css_first("textarea#body")
    assert (body.attributes["name"], body.attributes["dj-input"]) == ("body", "preview")

    search = tree.css_first("input#search")
    assert "dj-no-recover" in search.attributes and search.attributes["dj-input"] == "filter_tags"

    recover = tree.css_first('[dj-auto-recover="restore_editor"]')
    assert recover.attributes["dj-value-doc-id"] == "doc-1"
    cursor = recover.css_first("input#cursor")
    assert (cursor.attributes["type"], cursor.attributes["name"], cursor.attributes["dj-change"]) == (
        "hidden",
        "cursor",
        "sync_cursor",
    )
    assert recover.css_first("#rich-editor").attributes["dj-update"] == "ignore"

    published = tree.css_first("input#published")
    assert published.attributes["type"] == "checkbox" and "checked" not in published.attributes
    assert published.attributes["dj-change"] == "set_published"

    category = tree.css_first("select#category")
    assert category.attributes["dj-change"] == "set_category"
    assert [o.attributes["value"] for o in category.css("option")] == ["news", "guide", "opinion"]
    assert [o.attributes["value"] for o in category.css("option[selected]")] == ["news"]

    radios = tree.css('input[type="radio"][name="visibility"]')
    assert [r.attributes["value"] for r in radios] == ["public", "unlisted", "private"]
    assert [r.attributes["value"] for r in radios if "checked" in r.attributes] == ["public"]
    assert all(r.attributes["dj-change"] == "set_visibility" for r in radios)

    priority = tree.css_first("input#priority")
    assert (priority.attributes["type"], priority.attributes["value"], priority.attributes["dj-change"]) == (
        "number",
        "3",
        "set_priority",
    )

    tags = tree.css_first("select#tags")
    assert "multiple" in tags.attributes and tags.attributes["dj-change"] == "set_tags"
    assert [o.attributes["value"] for o in tags.css("option")] == ["python", "web", "networking", "ux"]
    assert tags.css("option[selected]") == []

    save = tree.css_first("button#save")
    assert (save.attributes["type"], save.attributes["dj-disable-with"]) == ("submit", "Saving...")

    state = json.loads(tree.css_first("#server-state").text())
    assert state["doc_id"] == "doc-1" and state["clicks"] == 0 and state["priority"] == 3


def test_page_includes_the_runtime_with_a_valid_grant(tree):
    config = runtime_config(tree)
    assert config["prefix"] == constants.DEFAULT_PREFIX and config["transport"] == "ws"
    assert MountSigner(KEY).verify(config["tokens"]["editor"], "editor") == {}
    pyscript = json.loads(tree.css_first('script[type="py"]').attributes["config"])
    assert pyscript["interpreter"] == "/djreconnect/npm/pyodide@%s/pyodide.mjs" % PINNED["pyodide"]
    [wheel] = pyscript["files"]
    assert wheel.startswith("/djreconnect/wheels/djreconnect-") and wheel.endswith(".whl")


# --- assets ------------------------------------------------------------------------


PYSCRIPT = "/djreconnect/npm/@pyscript/core@%s/dist" % PINNED["@pyscript/core"]
MICROPYTHON = (
    "/djreconnect/npm/@micropython/micropython-webassembly-pyscript@%s"
    % PINNED["@micropython/micropython-webassembly-pyscript"]
)


@pytest.mark.parametrize(
    "path, content_type",
    [
        (PYODIDE + "/pyodide.mjs", ("text/javascript", "application/javascript")),
        (PYODIDE + "/pyodide.asm.wasm", ("application/wasm",)),
        (PYSCRIPT + "/core.js", ("text/javascript", "application/javascript")),
        (PYSCRIPT + "/core.css", ("text/css",)),
        (MICROPYTHON + "/micropython.mjs", ("text/javascript", "application/javascript")),
        (MICROPYTHON + "/micropython.wasm", ("application/wasm",)),
    ],
)
def test_assets_have_their_content_types_cors_and_cache_forever(client, path, content_type):
    response = client.head(path, headers={"origin": "http://static.example.org"})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in content_type
    assert response.headers["access-control-allow-origin"] == "*"
    # The version is in the URL: the response never changes.
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_the_wheel_is_served_whole(client, tree):
    [wheel] = json.loads(tree.css_first('script[type="py"]').attributes["config"])["files"]
    response = client.get(wheel, headers={"origin": "http://static.example.org"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.content == (WHEELS / wheel.rsplit("/", 1)[1]).read_bytes()
    # A checkout rebuilds the wheel at the same version: browsers revalidate it.
    assert response.headers["cache-control"] == "no-cache" and response.headers["etag"]
    again = client.get(wheel, headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304


def test_the_wheel_url_is_stable_and_names_the_version(tree):
    [wheel] = json.loads(tree.css_first('script[type="py"]').attributes["config"])["files"]
    assert wheel == "/djreconnect/wheels/djreconnect-%s-py3-none-any.whl" % djreconnect.__version__


def test_asset_preflight_from_another_origin(client):
    response = client.options(
        PYODIDE + "/pyodide.mjs",
        headers={"origin": "http://static.example.org", "access-control-request-method": "GET"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_missing_asset_is_404(client):
    assert client.get(PYODIDE + "/nope.js").status_code == 404
    assert client.get("/djreconnect/npm/pyodide@0.0.1/pyodide.mjs").status_code == 404  # only the installed version
    assert client.get("/djreconnect/npm/left-pad@1.0.0/index.js").status_code == 404


# --- the WebSocket -----------------------------------------------------------------


def test_websocket_join_event_ping(client, tree):
    with client.websocket_connect(WS) as ws:
        rendered = roundtrip(ws, join_frame(tree))
        assert rendered == {"t": "rendered", "ref": 1, "view": "editor", "ops": [], "version": 1, "resumed": False}

        reply = roundtrip(
            ws, {"t": "event", "ref": 2, "view": "editor", "handler": "increment", "params": {"amount": "1"}}
        )
        assert reply["t"] == "reply" and reply["ref"] == 2 and reply["view"] == "editor" and reply["version"] == 2
        assert any(op[0] == "text" and op[2] == "Clicked 1 time" for op in reply["ops"])

        assert roundtrip(ws, {"t": "ping", "ref": 3}) == {"t": "pong", "ref": 3}


def test_websocket_errors_keep_the_connection(client, tree):
    with client.websocket_connect(WS) as ws:
        error = roundtrip(ws, {"t": "event", "ref": 1, "view": "editor", "handler": "increment", "params": {}})
        assert (error["t"], error["code"], error["ref"]) == ("error", "not_mounted", 1)
        assert roundtrip(ws, join_frame(tree, ref=2))["t"] == "rendered"
        error = roundtrip(ws, {"t": "event", "ref": 3, "view": "editor", "handler": "mount", "params": {}})
        assert error["code"] == "unknown_handler"
        ws.send_text("{oops")
        assert json.loads(ws.receive_text())["code"] == "bad_json"
        assert roundtrip(ws, {"t": "ping", "ref": 4}) == {"t": "pong", "ref": 4}


def test_binary_frame_gets_an_error_and_the_connection_survives(client):
    with client.websocket_connect(WS) as ws:
        ws.send_bytes(b'{"t": "ping", "ref": 1}')
        error = json.loads(ws.receive_text())
        assert (error["t"], error["code"], error["ref"]) == ("error", "bad_frame", None)
        assert roundtrip(ws, {"t": "ping", "ref": 2}) == {"t": "pong", "ref": 2}


@pytest.mark.parametrize("origin", ["http://testserver", "https://testserver", "http://testserver/"])
def test_same_origin_is_accepted(client, origin):
    with client.websocket_connect(WS, headers={"origin": origin}) as ws:
        assert roundtrip(ws, {"t": "ping", "ref": 1}) == {"t": "pong", "ref": 1}


@pytest.mark.parametrize("origin", ["http://evil.example", "http://testserver.evil.example", "null"])
def test_foreign_origin_is_closed_with_4003(client, origin):
    with pytest.raises(WebSocketDisconnect) as info:
        with client.websocket_connect(WS, headers={"origin": origin}) as ws:
            ws.send_text(json.dumps({"t": "ping", "ref": 1}))
            ws.receive_text()
    assert info.value.code == constants.CLOSE_FORBIDDEN_ORIGIN == 4003


def test_allowed_origins_are_accepted():
    with TestClient(demo_app(allowed_origins=["http://localhost:5000/"])) as other:
        with other.websocket_connect(WS, headers={"origin": "http://localhost:5000"}) as ws:
            assert roundtrip(ws, {"t": "ping", "ref": 1}) == {"t": "pong", "ref": 1}
        with pytest.raises(WebSocketDisconnect) as info:
            with other.websocket_connect(WS, headers={"origin": "http://localhost:5001"}) as ws:
                ws.receive_text()
        assert info.value.code == 4003


# --- DJReconnect with its own views ------------------------------------------------


class NoteView(LiveView):
    template_name = "note.html"

    def mount(self, request, note_id="0", **kwargs):
        self.note_id = note_id
        self.text = "hello"

    @event_handler()
    def break_render(self):
        del self.text  # the template can no longer render

    @event_handler()
    def set_text(self, value):
        self.text = value


@pytest.fixture
def notes(tmp_path):
    (tmp_path / "note.html").write_text(
        '<html><head>{{ djreconnect_scripts() }}</head><body dj-view="{{ dj_view_id }}">'
        '<div dj-root><p id="n">{{ note_id }}</p><p id="t">{{ text }}</p></div></body></html>'
    )
    settings = Settings(KEY, node_modules_dir=NODE_MODULES, wheels_dir=WHEELS, trusted_hosts=["testserver"])
    live = DJReconnect(settings, [tmp_path])
    live.page("/notes/{note_id}", NoteView, public=True)
    with TestClient(live.app) as client:
        yield live, client


def test_path_params_become_signed_mount_params(notes):
    live, client = notes
    tree = LexborHTMLParser(client.get("/notes/n-17").text)
    assert tree.css_first("#n").text() == "n-17"
    token = runtime_config(tree)["tokens"]["note"]
    assert live.signer.verify(token, "note") == {"note_id": "n-17"}
    with client.websocket_connect(WS) as ws:
        frame = {"t": "join", "ref": 1, "view": "v", "name": "note", "token": token, "html": root_html(tree)}
        assert roundtrip(ws, frame)["ops"] == []


def test_a_render_that_fails_answers_the_event_and_the_connection_survives(notes):
    live, client = notes
    with client.websocket_connect(WS) as ws:
        assert roundtrip(ws, {"t": "join", "ref": 1, "view": "v", "name": "note", "html": ""})["t"] == "rendered"
        error = roundtrip(ws, {"t": "event", "ref": 2, "view": "v", "handler": "break_render", "params": {}})
        # Answered by ref, so the page can re-enable a dj-disable-with button ...
        assert (error["t"], error["code"], error["ref"], error["view"]) == ("error", "render_failed", 2, "v")
        # ... then the event's reply: nothing to patch, the page keeps the last render.
        reply = json.loads(ws.receive_text())
        assert reply == {"t": "reply", "ref": 2, "view": "v", "ops": [], "version": 1}
        assert roundtrip(ws, {"t": "ping", "ref": 3}) == {"t": "pong", "ref": 3}


def test_register_refuses_non_views_and_name_clashes(notes):
    live, _ = notes
    with pytest.raises(TypeError):
        live.register(object)

    class Other(LiveView):
        view_name = "note"

    with pytest.raises(ValueError):
        live.register(Other)
    assert live.register(NoteView) is NoteView


def test_missing_assets_are_reported_at_startup_with_the_setting_and_the_command(tmp_path):
    with pytest.raises(RuntimeError) as refused:
        DJReconnect(Settings(KEY, assets="local", node_modules_dir=tmp_path, wheels_dir=WHEELS), [tmp_path])
    message = str(refused.value)
    assert "node_modules_dir" in message and "DJRECONNECT_NODE_MODULES" in message and "assets='cdn'" in message
    assert "`npm install --no-save --prefix %s " % tmp_path.parent in message
    assert all("%s@%s" % pin in message for pin in PINNED.items())
    with pytest.raises(RuntimeError) as refused:
        DJReconnect(Settings(KEY, node_modules_dir=NODE_MODULES, wheels_dir=tmp_path), [tmp_path])
    message = str(refused.value)
    assert "wheels_dir" in message and "DJRECONNECT_WHEELS" in message and "wheel_url" in message
    assert "pip wheel --no-deps -w wheels browser" in message


def test_without_local_packages_auto_loads_them_from_the_cdn(tmp_path):
    live = DJReconnect(
        Settings(KEY, node_modules_dir=tmp_path, wheels_dir=WHEELS, trusted_hosts=["testserver"]), [tmp_path]
    )
    assert live.settings.assets == "cdn"
    with TestClient(live.app) as client:
        assert client.get(PYODIDE + "/pyodide.mjs").status_code == 404  # nothing served locally
        assert client.get("/djreconnect/wheels/" + wheel_name()).status_code == 200  # the wheel still is


# --- the static include example ----------------------------------------------------

STATIC_PAGE = """<!DOCTYPE html>
<html><head><base href="http://localhost:8000/"><title>static</title></head>
<body><div dj-view="editor"></div><a href="http://localhost:8000/x">x</a></body></html>
"""


@pytest.mark.skipif(
    not (CHECKOUT / "index.html").is_file(),
    reason="the checkout has no index.html (the static include example) to serve",
)
def test_index_html_of_the_checkout_points_at_this_backend(client):
    response = client.get("/index.html")
    assert response.status_code == 200
    base = LexborHTMLParser(response.text).css_first("base")
    assert base is not None and base.attributes["href"] == "http://testserver/"


def test_index_html_base_href_is_the_request_origin(tmp_path):
    (tmp_path / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    (tmp_path / "index.html").write_text(STATIC_PAGE)
    with TestClient(demo_app(node_modules_dir=tmp_path / "node_modules")) as other:
        response = other.get("/index.html")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert '<base href="http://testserver/">' in response.text
        # Only the <base> changes.
        assert response.text == STATIC_PAGE.replace('http://localhost:8000/">', 'http://testserver/">', 1)

    trusted = ["testserver", "example.org:9000"]
    with TestClient(demo_app(node_modules_dir=tmp_path / "node_modules", trusted_hosts=trusted)) as other:
        response = other.get("/index.html", headers={"host": "Example.ORG:9000"})
        assert '<base href="http://example.org:9000/">' in response.text
        # Only a trusted Host is reflected, and never as it was sent.
        for host in ("example.org:9001", "evil.example", 'example.org:9000"><script>'):
            response = other.get("/index.html", headers={"host": host})
            assert response.status_code == 400 and "<base" not in response.text


def test_no_index_html_route_without_the_file(tmp_path):
    (tmp_path / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    with TestClient(demo_app(node_modules_dir=tmp_path / "node_modules")) as other:
        assert other.get("/index.html").status_code == 404


# --- response headers and the asset allow-list --------------------------------------------


def test_pages_carry_nosniff_a_framing_policy_and_a_referrer_policy(page):
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert page.headers["referrer-policy"] == "same-origin"


@pytest.mark.skipif(not (CHECKOUT / "index.html").is_file(), reason="the checkout has no index.html")
def test_the_static_page_carries_the_framing_policy_too(client):
    response = client.get("/index.html")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        PYODIDE + "/pyodide.mjs",
        "/djreconnect/pyscript.json",
        PYODIDE + "/console.html",
        "/nowhere",
    ],
)
def test_every_answer_has_nosniff_and_only_pages_a_framing_policy(client, path):
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "x-frame-options" not in response.headers
    assert response.headers["referrer-policy"] == "same-origin"


def test_a_route_keeps_the_headers_it_sets_itself(tmp_path):
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    app = FastAPI()

    @app.get("/embeddable")
    def embeddable():
        return HTMLResponse("<p>hi</p>", headers={"X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "no-referrer"})

    settings = Settings(KEY, node_modules_dir=NODE_MODULES, wheels_dir=WHEELS, trusted_hosts=["testserver"])
    DJReconnect(settings, [tmp_path], app=app)
    with TestClient(app) as client:
        response = client.get("/embeddable")
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"  # added: it set none
    assert response.headers["x-content-type-options"] == "nosniff"


def pyscript_chunk():
    """One of PyScript's content-hashed chunks, as the runtime requests it."""
    return next((NODE_MODULES / "@pyscript" / "core" / "dist").glob("core-*.js")).name


@pytest.mark.parametrize(
    "path",
    [
        PYODIDE + "/pyodide.mjs",
        PYODIDE + "/pyodide.asm.mjs",
        PYODIDE + "/pyodide.asm.wasm",
        PYODIDE + "/python_stdlib.zip",
        PYODIDE + "/pyodide-lock.json",
        MICROPYTHON + "/micropython.mjs",
        MICROPYTHON + "/micropython.wasm",
        PYSCRIPT + "/core.js",
        PYSCRIPT + "/core.css",
    ],
)
def test_what_the_runtime_loads_is_served_and_cached_for_good(client, path):
    # The version is in the URL: a new release is a new URL, so every file is immutable.
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["etag"]
    again = client.get(path, headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_content_hashed_pyscript_chunks_are_immutable(client):
    response = client.head(PYSCRIPT + "/" + pyscript_chunk())
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_the_wheel_is_revalidated_its_name_does_not_change_with_a_rebuild(client, tree):
    [wheel] = json.loads(tree.css_first('script[type="py"]').attributes["config"])["files"]
    assert client.head(wheel).headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    [
        PYODIDE + "/console.html",
        PYODIDE + "/console-v2.html",
        PYODIDE + "/pyodide.js",
        PYODIDE + "/pyodide.mjs.map",
        PYODIDE + "/package.json",
        PYODIDE + "/README.md",
        PYODIDE + "/pyodide.d.ts",
        MICROPYTHON + "/micropython-ulab.wasm",
        MICROPYTHON + "/package.json",
        PYSCRIPT + "/service-worker.js",
        PYSCRIPT + "/core.js.map",
        PYSCRIPT + "/storage.js",
        "/djreconnect/wheels/README.md",
        PYODIDE + "/%2e%2e/@pyscript/core/dist/core.js",
        PYODIDE + "/",
    ],
)
def test_other_files_of_the_packages_are_404(client, path):
    assert client.get(path).status_code == 404


def test_every_file_kept_out_exists_so_the_404s_mean_something():
    names = ("console.html", "console-v2.html", "pyodide.js", "pyodide.mjs.map", "package.json")
    for name in names:
        assert (NODE_MODULES / "pyodide" / name).is_file(), name
    assert (NODE_MODULES / "@pyscript" / "core" / "dist" / "service-worker.js").is_file()


# --- the demo's own state stays bounded ----------------------------------------------------


def test_restore_calls_keep_the_last_ten_and_a_count(client, tree):
    with client.websocket_connect(WS) as ws:
        assert roundtrip(ws, join_frame(tree))["t"] == "rendered"
        for n in range(300):
            params = {"doc_id": "doc-1", "cursor": "%d:%s" % (n, "x" * 1000)}
            reply = roundtrip(
                ws, {"t": "event", "ref": n + 2, "view": "editor", "handler": "restore_editor", "params": params}
            )
            assert reply["t"] == "reply", reply
    [state] = [json.loads(op[2]) for op in reply["ops"] if op[0] == "text" and '"restore_count"' in op[2]]
    assert state["restore_count"] == 300
    assert [call["cursor"].split(":")[0] for call in state["restore_calls"]] == [str(n) for n in range(290, 300)]
