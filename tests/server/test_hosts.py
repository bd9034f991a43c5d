"""Trusted hosts and the origin check: the DNS-rebinding shape (``Host`` and ``Origin`` both
naming the attacker's site) is refused everywhere, in the app and over a real demo process."""

import base64
import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from demo_server import DemoServer
from djreconnect import constants
from djreconnect_server import DJReconnect, LiveView, Settings
from djreconnect_server.cli import demo_trusted_hosts
from djreconnect_server.hosts import TrustedHosts, parse_host, parse_origin
from djreconnect_server.settings import default_trusted_hosts
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from .built import asset_path

CHECKOUT = Path(__file__).resolve().parents[2]
KEY = "a-test-secret-key-of-some-length"
WS = constants.DEFAULT_PREFIX + constants.PATH_WEBSOCKET
SSE = constants.DEFAULT_PREFIX + constants.PATH_SSE
POST = constants.DEFAULT_PREFIX + constants.PATH_POST
EVIL = "evil.example"


# --- parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, parsed",
    [
        ("example.com", ("example.com", None)),
        ("Example.COM:8080", ("example.com", 8080)),
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("[::1]", ("[::1]", None)),
        ("[::1]:8000", ("[::1]", 8000)),
        ("", None),
        (None, None),
        ("example.com:", None),
        ("example.com:0", None),
        ("example.com:65536", None),
        ("example.com:80:80", None),
        ("example.com:８０", None),
        ("exa mple.com", None),
        ('example.com"><script>', None),
        ("user@example.com", None),
        ("[::1", None),
        ("[not-v6]:80", None),
        ("::1", None),
        ("a" * 400, None),
    ],
)
def test_parse_host(value, parsed):
    assert parse_host(value) == parsed


@pytest.mark.parametrize(
    "origin, parsed",
    [
        ("http://example.com", ("http", "example.com", 80)),
        ("https://example.com/", ("https", "example.com", 443)),
        ("http://127.0.0.1:8000", ("http", "127.0.0.1", 8000)),
        ("null", None),
        ("file://", None),
        ("ftp://example.com", None),
        ("http://example.com/path", None),
        ("http://user@example.com", None),
        ("http://", None),
    ],
)
def test_parse_origin(origin, parsed):
    assert parse_origin(origin) == parsed


# --- TrustedHosts --------------------------------------------------------------------


def test_a_host_without_port_is_trusted_on_any_port_and_with_one_on_that_port_only():
    trusted = TrustedHosts(["example.com", "127.0.0.1:8000", "[::1]:8000"])
    assert trusted.allows_host_header("example.com")
    assert trusted.allows_host_header("EXAMPLE.com:9999")
    assert trusted.allows_host_header("127.0.0.1:8000")
    assert trusted.allows_host_header("[::1]:8000")
    assert not trusted.allows_host_header("127.0.0.1:8001")
    assert not trusted.allows_host_header("127.0.0.1")
    assert not trusted.allows_host_header("www.example.com")
    assert not trusted.allows_host_header(EVIL)
    assert not trusted.allows_host_header(None)
    assert not trusted.allows_host_header("example.com\r\nX: y")


def test_a_domain_pattern_trusts_its_subdomains_only():
    trusted = TrustedHosts(["*.example.com"])
    assert trusted.allows_host_header("a.example.com")
    assert trusted.allows_host_header("a.b.example.com:8443")
    assert not trusted.allows_host_header("example.com")
    assert not trusted.allows_host_header("evilexample.com")


def test_star_trusts_every_host_but_vouches_for_no_origin():
    trusted = TrustedHosts(["*"])
    assert trusted.allows_host_header(EVIL)
    assert not trusted.own_origin("http://" + EVIL, EVIL)


@pytest.mark.parametrize("entries", [[], ["http://example.com"], ["*example.com"], ["ex ample"], [3], ["a.*.com"]])
def test_bad_trusted_hosts_are_refused_at_once(entries):
    with pytest.raises(ValueError):
        TrustedHosts(entries)


@pytest.mark.parametrize(
    "origin, host, own",
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://localhost:8000", "localhost:8000", True),
        ("https://app.example.com", "app.example.com", True),  # TLS ended by a proxy
        ("https://app.example.com", "app.example.com:443", True),
        ("http://app.example.com", "app.example.com:80", True),
        ("http://127.0.0.1:5000", "127.0.0.1:8000", False),  # another port: another origin
        ("http://localhost:8000", "127.0.0.1:8000", False),  # another name: another origin
        ("http://" + EVIL, EVIL, False),  # the DNS-rebinding shape
        ("http://" + EVIL + ":8000", EVIL + ":8000", False),
        ("null", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", None, False),
    ],
)
def test_own_origin_is_a_trusted_host_the_request_was_sent_to(origin, host, own):
    trusted = TrustedHosts(["127.0.0.1:8000", "localhost:8000", "app.example.com"])
    assert trusted.own_origin(origin, host) is own


@pytest.mark.parametrize(
    "public_url, hosts",
    [
        ("", ["localhost", "127.0.0.1", "[::1]"]),
        ("https://live.example.com", ["live.example.com"]),
        ("https://live.example.com:443/app", ["live.example.com"]),
        ("http://live.example.com:8080", ["live.example.com:8080"]),
        ("http://[::1]:8000", ["[::1]:8000"]),
    ],
)
def test_default_trusted_hosts_come_from_public_url(public_url, hosts):
    assert default_trusted_hosts(public_url) == hosts


@pytest.mark.parametrize("public_url", ["live.example.com", "ftp://x.example.com", "https://x.example.com:port"])
def test_a_public_url_that_names_no_host_is_refused(public_url):
    with pytest.raises(ValueError, match="public_url"):
        Settings(KEY, public_url=public_url)


def test_settings_trust_public_url_unless_told_otherwise():
    assert Settings(KEY, public_url="https://live.example.com").trusted_hosts.allows_host_header("live.example.com")
    assert not Settings(KEY, public_url="https://live.example.com").trusted_hosts.allows_host_header("localhost")
    assert Settings(KEY).trusted_hosts.allows_host_header("localhost:8000")
    assert not Settings(KEY).trusted_hosts.allows_host_header(EVIL)
    assert Settings(KEY, trusted_hosts=[EVIL]).trusted_hosts.allows_host_header(EVIL)


def test_the_demo_trusts_its_bind_address_and_port():
    assert demo_trusted_hosts("127.0.0.1", 8000) == ["127.0.0.1:8000", "localhost:8000", "[::1]:8000"]
    assert demo_trusted_hosts("0.0.0.0", 80, ["box.lan:80"]) == [
        "0.0.0.0:80",
        "localhost:80",
        "127.0.0.1:80",
        "[::1]:80",
        "box.lan:80",
    ]
    assert demo_trusted_hosts("10.1.2.3", 8000) == ["10.1.2.3:8000"]
    assert demo_trusted_hosts("::1", 8000)[0] == "[::1]:8000"


# --- the app (TestClient) --------------------------------------------------------------


class PlainView(LiveView):
    template_name = "plain.html"

    def mount(self, request, **kwargs):
        self.n = 0


def make_app(tmp_path, **settings):
    (tmp_path / "plain.html").write_text(
        '<html><head>{{ djreconnect_scripts() }}</head><body dj-view="{{ dj_view_id }}">'
        "<div dj-root>{{ n }}</div></body></html>"
    )
    settings.setdefault("wheels_dir", CHECKOUT / "wheels")
    live = DJReconnect(Settings(KEY, **settings), [tmp_path])
    live.page("/", PlainView, public=True)
    return live


@pytest.fixture
def local(tmp_path):
    """A backend with the default trusted hosts (no public_url: this machine's names)."""
    with TestClient(make_app(tmp_path).app, base_url="http://localhost:8000") as client:
        yield client


@pytest.mark.parametrize(
    "path", ["/", "/djreconnect/pyscript.json", asset_path("pyscript", "core.js"), SSE, "/nowhere"]
)
def test_an_untrusted_host_is_400_everywhere(local, path):
    if path not in (SSE, "/nowhere"):  # (a stream never ends)
        assert local.get(path).status_code == 200
    response = local.get(path, headers={"host": EVIL, "origin": "http://" + EVIL})
    assert response.status_code == 400
    assert response.text == "Invalid host header"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_an_untrusted_host_cannot_post(local):
    response = local.post(POST, content=b"{}", headers={"host": EVIL, "origin": "http://" + EVIL})
    assert response.status_code == 400


def test_an_untrusted_host_cannot_open_a_websocket(local):
    with pytest.raises(WebSocketDenialResponse) as info:
        with local.websocket_connect(WS, headers={"host": EVIL, "origin": "http://" + EVIL}):
            pass
    assert info.value.status_code == 400


def test_a_trusted_host_reaches_the_page_and_the_websocket(local):
    assert local.get("/", headers={"host": "127.0.0.1:8000"}).status_code == 200
    # (TestClient sends WebSocket upgrades to "testserver" unless told.)
    with local.websocket_connect(WS, headers={"host": "localhost:8000", "origin": "http://localhost:8000"}) as ws:
        ws.send_text(json.dumps({"t": "ping", "ref": 1}))
        assert json.loads(ws.receive_text()) == {"t": "pong", "ref": 1}


def test_pyscript_json_names_the_trusted_host_not_the_raw_header(local):
    config = local.get("/djreconnect/pyscript.json", headers={"host": "LocalHost:8000"}).json()
    assert config["interpreter"] == "http://localhost:8000" + asset_path("pyodide", "pyodide.mjs")


def test_pyscript_json_names_public_url_when_set(tmp_path):
    live = make_app(tmp_path, public_url="https://live.example.com")
    with TestClient(live.app, base_url="https://live.example.com") as client:
        config = client.get("/djreconnect/pyscript.json").json()
        assert config["interpreter"] == "https://live.example.com" + asset_path("pyodide", "pyodide.mjs")
        assert client.get("/", headers={"host": "localhost"}).status_code == 400


@pytest.fixture
def any_host(tmp_path):
    """Host checking turned off: the origin check must stand on its own."""
    with TestClient(make_app(tmp_path, trusted_hosts=["*"]).app, base_url="http://" + EVIL) as client:
        yield client


def test_without_the_host_check_a_rebinding_websocket_is_still_4003(any_host):
    assert any_host.get("/").status_code == 200  # the Host check is off
    with pytest.raises(WebSocketDisconnect) as info:
        with any_host.websocket_connect(WS, headers={"host": EVIL, "origin": "http://" + EVIL}) as ws:
            ws.receive_text()
    assert info.value.code == constants.CLOSE_FORBIDDEN_ORIGIN


def test_without_the_host_check_a_rebinding_stream_and_post_are_refused(any_host):
    with any_host.stream("GET", SSE, headers={"origin": "http://" + EVIL}) as response:
        text = response.read().decode()
    assert "event: close" in text and str(constants.CLOSE_FORBIDDEN_ORIGIN) in text
    response = any_host.post(POST, content=b"{}", headers={"origin": "http://" + EVIL})
    assert response.status_code == 403


def test_an_origin_on_another_port_of_a_trusted_host_is_4003(local):
    with pytest.raises(WebSocketDisconnect) as info:
        with local.websocket_connect(WS, headers={"host": "localhost:8000", "origin": "http://localhost:5000"}) as ws:
            ws.receive_text()
    assert info.value.code == constants.CLOSE_FORBIDDEN_ORIGIN


# --- a real demo process ---------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    server = DemoServer("--transport", "sse", "--trusted-host", "devbox.test")
    server.start()
    yield server
    server.stop()


def raw_request(port, head):
    """Send ``head`` (a request head) on a fresh socket: the status code and the answer
    (its head, and its body when it has a Content-Length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        answer_head, _, body = data.partition(b"\r\n\r\n")
        lengths = [line for line in answer_head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
        length = int(lengths[0].split(b":")[1]) if lengths else 0
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(data.split(b" ", 2)[1]), answer_head + b"\r\n\r\n" + body


def upgrade_head(host, origin):
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET %s HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (WS, host, origin, key)
    )


def test_dns_rebinding_is_refused_over_websocket(demo):
    status, answer = raw_request(demo.port, upgrade_head(EVIL + ":%d" % demo.port, "http://%s:%d" % (EVIL, demo.port)))
    assert status == 400 and answer.endswith(b"Invalid host header"), answer
    # The same upgrade to a trusted name is let in (and the origin then decides).
    status, _ = raw_request(demo.port, upgrade_head("127.0.0.1:%d" % demo.port, demo.url))
    assert status == 101


def test_dns_rebinding_is_refused_over_sse(demo):
    head = "GET %s HTTP/1.1\r\nHost: %s\r\nOrigin: http://%s\r\nConnection: close\r\n\r\n" % (SSE, EVIL, EVIL)
    status, answer = raw_request(demo.port, head)
    assert status == 400 and answer.endswith(b"Invalid host header"), answer


def test_a_trusted_host_flag_is_answered_and_its_base_href_is_rebuilt(demo):
    request = urllib.request.Request(demo.url + "/index.html", headers={"Host": "DevBox.test:%d" % demo.port})
    html = urllib.request.urlopen(request, timeout=10).read().decode()
    assert '<base href="http://devbox.test:%d/">' % demo.port in html
    evil = urllib.request.Request(demo.url + "/index.html", headers={"Host": EVIL})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(evil, timeout=10)
    assert info.value.code == 400
