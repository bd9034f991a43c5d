"""Bad input over both transports, against a real demo server process.

Every case checks three things: the sender gets a clear refusal (an Error with a code
and a message, a close code, or an HTTP status), the server still serves a fresh
client, and clients connected before the bad input (one per transport, each with a
mounted editor holding some state) are untouched: their next event is answered and
the state the server shows them is exactly what it was.

The state is read from the ``<pre id="server-state">`` JSON the editor renders: in
full in the splice of a join with ``html=""``, and as a text op in the reply to any
event that changes it. ``Editor.probe`` clicks once and checks that the reply shows
the remembered state with ``clicks`` one higher.
"""

import base64
import html
import json
import queue
import re
import socket
import threading

import httpx
import pytest
from demo_server import DemoServer
from djreconnect import constants, protocol
from djreconnect.patch import OP_SPLICE, OP_TEXT
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .not_handlers import NOT_HANDLERS

TIMEOUT = 10
EVIL = "http://evil.example"
MAX_FRAME_BYTES = constants.DEFAULT_MAX_FRAME_BYTES
STATE_PRE = re.compile(r'<pre id="server-state">(.*?)</pre>', re.S)
CONFIG_SCRIPT = re.compile(
    r'<script type="application/json" id="%s">(.*?)</script>' % constants.CONFIG_ELEMENT_ID, re.S
)


@pytest.fixture(scope="module")
def server():
    demo = DemoServer().start()
    yield demo
    demo.stop()


# --- clients -----------------------------------------------------------------------


class Closed:
    """What ``recv`` returns once the server closed the connection (code None: the
    stream just ended)."""

    def __init__(self, code, reason):
        self.code = code
        self.reason = reason

    def __repr__(self):
        return "Closed(%r, %r)" % (self.code, self.reason)


class Client:
    transport = None

    def __init__(self):
        self.ref = 0

    def next_ref(self):
        self.ref += 1
        return self.ref

    def recv_until_closed(self, limit=5000):
        """Every message up to and including the Closed."""
        messages = []
        while len(messages) < limit:
            message = self.recv()
            messages.append(message)
            if isinstance(message, Closed):
                return messages
        raise AssertionError("no close after %d messages" % limit)


class WSClient(Client):
    """The live WebSocket, with the sync ``websockets`` client."""

    transport = "ws"

    def __init__(self, server, origin=None):
        Client.__init__(self)
        url = server.url.replace("http://", "ws://") + constants.DEFAULT_PREFIX + constants.PATH_WEBSOCKET
        self.ws = connect(
            url,
            origin=origin or server.url,
            proxy=None,
            compression=None,  # a big frame is really that big on the wire
            max_queue=None,
            open_timeout=TIMEOUT,
            close_timeout=2,
        )

    def send(self, text):
        self.ws.send(text)

    def send_many(self, texts):
        try:
            for text in texts:
                self.ws.send(text)
        except ConnectionClosed:
            pass  # the server closed on us part way (a flood)

    def send_binary(self, data):
        self.ws.send(data)

    def recv(self, timeout=TIMEOUT):
        try:
            raw = self.ws.recv(timeout=timeout)
        except ConnectionClosed:
            return Closed(self.ws.close_code, self.ws.close_reason)
        return protocol.decode_server(raw)

    def close(self):
        self.ws.close()


_STREAM_END = object()


class SSEClient(Client):
    """The SSE transport: an event stream read by a thread, frames POSTed one per line."""

    transport = "sse"

    def __init__(self, server, origin=None):
        Client.__init__(self)
        self.url = server.url + constants.DEFAULT_PREFIX
        self.origin = origin or server.url
        # The stream and the POSTs on separate clients: never one connection pool
        # shared across threads.
        self.reader = httpx.Client(timeout=httpx.Timeout(TIMEOUT, read=None), trust_env=False)
        self.http = httpx.Client(timeout=TIMEOUT, trust_env=False)
        self.events = queue.Queue()
        self._stream_context = self.reader.stream("GET", self.url + constants.PATH_SSE, headers={"Origin": self.origin})
        self.stream = self._stream_context.__enter__()
        self.status = self.stream.status_code
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.grant = None
        if origin is None:
            hello = self.event()
            assert hello is not None and hello.get("event") == constants.SSE_EVENT_CHANNEL, hello
            self.grant = json.loads(hello["data"])

    def _read(self):
        current = {}
        try:
            for line in self.stream.iter_lines():
                if line.startswith(":"):
                    continue  # keep-alive comment
                if not line:
                    if current:
                        self.events.put(current)
                        current = {}
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                current[field] = current.get(field, "") + value if field == "data" else value
        except Exception:  # closed under us by close()
            pass
        finally:
            self.events.put(_STREAM_END)

    def event(self, timeout=TIMEOUT):
        """The next SSE event (a dict of event, id, data), or None once the stream ended."""
        event = self.events.get(timeout=timeout)
        if event is _STREAM_END:
            self.events.put(_STREAM_END)  # ended for good
            return None
        return event

    def post(self, body, **overrides):
        headers = {"Origin": self.origin}
        if self.grant is not None:
            headers.update({"X-DJ-Channel": self.grant["channel"], "X-DJ-CSRF": self.grant["csrf"]})
        headers.update(overrides)
        headers = {name: value for name, value in headers.items() if value is not None}
        content = body.encode("utf-8") if isinstance(body, str) else body
        return self.http.post(self.url + constants.PATH_POST, content=content, headers=headers)

    def send(self, text):
        response = self.post(text)
        assert response.status_code == 204, (response.status_code, response.text)

    def send_many(self, texts, per_post=50):
        texts = list(texts)
        for start in range(0, len(texts), per_post):
            response = self.post("\n".join(texts[start : start + per_post]))
            if response.status_code == 404:
                return  # the channel was closed on us part way (a flood)
            assert response.status_code == 204, (response.status_code, response.text)

    def recv(self, timeout=TIMEOUT):
        event = self.event(timeout)
        if event is None:
            return Closed(None, "the stream ended")
        if event.get("event") == "close":
            data = json.loads(event["data"])
            return Closed(data["code"], data["reason"])
        assert event.get("event", "message") == "message", event
        return protocol.decode_server(event["data"])

    def close(self):
        # Closing the response does not wake a thread blocked reading it; shutting
        # the socket down does.
        network = self.stream.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=5)
        try:
            self._stream_context.__exit__(None, None, None)
        finally:
            self.reader.close()
            self.http.close()


CLIENTS = {"ws": WSClient, "sse": SSEClient}


@pytest.fixture
def open_client(server):
    """open_client(transport, **options): a connected client, closed after the test."""
    opened = []

    def open_one(transport, **options):
        client = CLIENTS[transport](server, **options)
        opened.append(client)
        return client

    yield open_one
    for client in opened:
        try:
            client.close()
        except Exception:
            pass


@pytest.fixture(params=["ws", "sse"])
def transport(request):
    return request.param


# --- frames and the editor's state ------------------------------------------------


def frame(kind, **fields):
    return json.dumps(dict(t=kind, **fields))


def state_in(ops):
    """The server-state JSON a patch shows, or None if the patch does not touch it."""
    for op in ops:
        if op[0] == OP_SPLICE:
            found = STATE_PRE.search(op[4])
            if found:
                return json.loads(html.unescape(found.group(1)))
        elif op[0] == OP_TEXT:
            try:
                value = json.loads(op[2])
            except ValueError:
                continue
            if isinstance(value, dict) and "clicks" in value and "title" in value:
                return value
    return None


def assert_error(message, code, ref=None, view=None):
    assert isinstance(message, protocol.Error), message
    assert message.code == code, message
    assert isinstance(message.message, str) and message.message.strip(), message
    assert (message.ref, message.view) == (ref, view), message


def assert_pong(client):
    ref = client.next_ref()
    client.send(frame("ping", ref=ref))
    pong = client.recv()
    assert pong == protocol.Pong(ref=ref), pong


class Editor:
    """The demo editor mounted on a client, and the state the server last showed it."""

    def __init__(self, client, view_id="editor-1"):
        self.client = client
        self.view_id = view_id
        self.state = None

    def join(self):
        ref = self.client.next_ref()
        self.client.send(frame("join", ref=ref, view=self.view_id, name="editor", html=""))
        rendered = self.client.recv()
        assert isinstance(rendered, protocol.Rendered) and rendered.ref == ref, rendered
        assert [op[0] for op in rendered.ops] == [OP_SPLICE]
        self.state = state_in(rendered.ops)
        assert self.state is not None and self.state["clicks"] == 0
        return self

    def send_event(self, handler, params=None, view=None, **fields):
        ref = self.client.next_ref()
        event = dict(ref=ref, view=view or self.view_id, handler=handler, params=params or {})
        event.update(fields)
        self.client.send(frame("event", **event))
        return ref

    def call(self, handler, **params):
        """A handler round trip that must be answered with a Reply to it."""
        ref = self.send_event(handler, params)
        reply = self.client.recv()
        assert isinstance(reply, protocol.Reply) and reply.ref == ref and reply.view == self.view_id, reply
        shown = state_in(reply.ops)
        if shown is not None:
            self.state = shown
        return reply

    def refused(self, handler, params, code):
        """An event the view must refuse with ``code``, answered by that Error alone."""
        ref = self.send_event(handler, params)
        assert_error(self.client.recv(), code, ref=ref, view=self.view_id)

    def probe(self):
        """The server still holds exactly the remembered state: a click shows it, one higher."""
        expected = dict(self.state, clicks=self.state["clicks"] + 1)
        reply = self.call("increment", amount="1")
        assert state_in(reply.ops) == expected


@pytest.fixture
def others(open_client):
    """Clients connected before the bad input: one editor per transport, with a title set."""
    editors = []
    for transport in CLIENTS:
        editor = Editor(open_client(transport)).join()
        editor.call("validate_title", value="their title over %s" % transport)
        editor.call("increment", amount="2")
        assert (editor.state["title"], editor.state["clicks"]) == ("their title over %s" % transport, 2)
        editors.append(editor)
    return editors


def assert_all_well(open_client, others):
    """The server still serves a newcomer, and the clients connected before are untouched."""
    for editor in others:
        editor.probe()
    for transport in CLIENTS:
        fresh = Editor(open_client(transport)).join()
        fresh.probe()
        assert fresh.state["clicks"] == 1 and fresh.state["title"] == ""


# --- 1-5: frames that are not valid messages -----------------------------------------


def test_malformed_json_is_bad_json_and_the_connection_stays_open(transport, open_client, others):
    client = open_client(transport)
    for text in ('{"t": "ping", "ref": 1', "not json", "{'t': 'ping'}", '{"t": "ping",}', "[" * 5000):
        client.send(text)
        assert_error(client.recv(), "bad_json")
        assert_pong(client)
    assert_all_well(open_client, others)


def test_json_that_is_not_an_object_is_bad_frame(transport, open_client, others):
    client = open_client(transport)
    for text in ("[]", '[{"t": "ping", "ref": 1}]', '"ping"', "42", "null", "true"):
        client.send(text)
        assert_error(client.recv(), "bad_frame")
    assert_pong(client)
    assert_all_well(open_client, others)


def test_an_unknown_message_type_is_unknown_type(transport, open_client, others):
    client = open_client(transport)
    for wire in (
        {"t": "explode", "ref": 1},
        {"t": "pong", "ref": 1},
        {"t": "rendered", "ref": 1, "view": "v"},
        {"t": 1, "ref": 1},
        {"ref": 1},
        {},
    ):
        client.send(json.dumps(wire))
        error = client.recv()
        assert_error(error, "unknown_type")
        assert "type" in error.message
    assert_pong(client)
    assert_all_well(open_client, others)


def test_a_missing_field_is_missing_field(transport, open_client, others):
    client = open_client(transport)
    editor = Editor(client).join()
    cases = (
        ({"t": "event", "ref": 5, "view": editor.view_id, "params": {}}, "handler"),
        ({"t": "event", "ref": 5, "handler": "increment"}, "view"),
        ({"t": "ping"}, "ref"),
        ({"t": "join", "ref": 5, "view": "other"}, "name"),
    )
    for wire, field in cases:
        client.send(json.dumps(wire))
        error = client.recv()
        assert_error(error, "missing_field")
        assert field in error.message
    editor.probe()
    assert_all_well(open_client, others)


def test_a_field_of_the_wrong_type_is_bad_field(transport, open_client, others):
    client = open_client(transport)
    editor = Editor(client).join()
    cases = (
        ({"t": "ping", "ref": "1"}, "ref"),
        ({"t": "ping", "ref": True}, "ref"),
        ({"t": "ping", "ref": 1.5}, "ref"),
        ({"t": "event", "ref": "7", "view": editor.view_id, "handler": "increment"}, "ref"),
        ({"t": "event", "ref": True, "view": editor.view_id, "handler": "increment"}, "ref"),
        ({"t": "event", "ref": 7, "view": editor.view_id, "handler": "increment", "params": []}, "params"),
        ({"t": "event", "ref": 7, "view": editor.view_id, "handler": ["increment"]}, "handler"),
        ({"t": "event", "ref": 7, "view": editor.view_id, "handler": ""}, "handler"),
        ({"t": "join", "ref": 7, "view": editor.view_id, "name": "editor", "html": None}, "html"),
    )
    for wire, field in cases:
        client.send(json.dumps(wire))
        error = client.recv()
        assert_error(error, "bad_field")
        assert field in error.message
    editor.probe()  # no click got through, nothing re-mounted
    assert_all_well(open_client, others)


# --- 6-8: events a mounted view refuses ----------------------------------------------


def test_a_name_that_is_not_a_handler_is_unknown_handler(transport, open_client, others):
    client = open_client(transport)
    editor = Editor(client).join()
    editor.call("validate_title", value="my title")
    for name in NOT_HANDLERS:
        editor.refused(name, {"request": None, "value": "x"}, "unknown_handler")
        editor.refused(name, {}, "unknown_handler")
    editor.probe()
    assert editor.state["title"] == "my title"
    assert_all_well(open_client, others)


def test_params_a_handler_does_not_take_are_bad_params(transport, open_client, others):
    client = open_client(transport)
    editor = Editor(client).join()
    editor.call("validate_title", value="my title")
    editor.call("set_tags", value=["web"])
    cases = (  # handler, params, what the message must say
        ("validate_title", {"value": 123}, "value should be a valid string"),
        ("validate_title", {"value": None}, "value should be a valid string"),
        ("validate_title", {"value": ["a"]}, "value should be a valid string"),
        ("set_published", {"value": "maybe"}, "value should be a valid boolean"),
        ("set_published", {"value": 2}, "value should be a valid boolean"),
        ("set_tags", {"value": {"python": True}}, "value should be a valid list"),
        ("set_tags", {"value": ["python", "no-such-tag"]}, "value[1] should be 'python', 'web', 'networking' or 'ux'"),
        ("set_category", {"value": "gossip"}, "gossip"),
        ("set_priority", {"value": 2.5}, "value should be a valid integer"),
        ("set_priority", {"value": "three"}, "three"),
        ("increment", {"amount": [1]}, "amount should be a valid integer"),
        ("increment", {"amount": "lots"}, "lots"),
        ("restore_editor", {"doc_id": 5}, "doc_id should be a valid string"),
    )
    for handler, params, named in cases:
        ref = editor.send_event(handler, params)
        error = client.recv()
        assert_error(error, "bad_params", ref=ref, view=editor.view_id)
        assert named in error.message, error
    editor.probe()
    assert (editor.state["title"], editor.state["tags"]) == ("my title", ["web"])
    assert_all_well(open_client, others)


def test_an_event_for_a_view_never_mounted_is_not_mounted(transport, open_client, others):
    client = open_client(transport)
    editor = Editor(client).join()
    for view in ("never-mounted", "editor-2", editor.view_id.upper()):
        ref = editor.send_event("increment", {"amount": "1"}, view=view)
        assert_error(client.recv(), "not_mounted", ref=ref, view=view)
    # A view that left is not mounted any more either.
    other = Editor(client, view_id="leaving").join()
    client.send(frame("leave", view=other.view_id))
    ref = other.send_event("increment", {"amount": "1"})
    assert_error(client.recv(), "not_mounted", ref=ref, view=other.view_id)
    editor.probe()
    assert_all_well(open_client, others)


# --- 9-10: size and rate limits -------------------------------------------------------


def test_an_oversized_frame_is_refused(transport, open_client, others):
    client = open_client(transport)
    editor = Editor(client).join()
    big = frame("ping", ref=99, pad="x" * (MAX_FRAME_BYTES + 100_000))  # 1.1 MiB
    if transport == "ws":
        # Under uvicorn's own 16 MiB limit: the frame reaches the application.
        client.send(big)
        error = client.recv()
        assert_error(error, "too_big")
        assert str(MAX_FRAME_BYTES) in error.message
    else:
        response = client.post(big)
        assert response.status_code == 413, response.status_code
        assert "too large" in response.text
    assert_pong(client)  # the connection lives on, and the frame did nothing
    editor.probe()
    assert_all_well(open_client, others)


def test_a_flood_is_refused_and_closed_4029(transport, open_client, others):
    client = open_client(transport)
    # Default: 100 frames a second, a burst of 1000. The frames go as fast as the client
    # sends them; enough of them that a client slowed by a loaded machine still outruns
    # the limit (at 200 frames a second it is refused after 2000).
    count = 5000
    pings = [frame("ping", ref=n) for n in range(count)]
    if transport == "sse":
        client.send_many(pings, per_post=constants.SSE_MAX_FRAMES_PER_POST)
    else:
        client.send_many(pings)
    messages = client.recv_until_closed(limit=count + 5)
    *pongs, error, closed = messages
    assert constants.CLOSE_RATE_LIMITED == 4029
    assert (closed.code, closed.reason) == (4029, "more than 100 frames a second"), closed
    assert_error(error, "rate_limited")
    assert "100 frames a second" in error.message
    # Every frame within the burst was answered, in order, and nothing after the refusal.
    assert 1000 <= len(pongs) < count
    assert pongs == [protocol.Pong(ref=n) for n in range(len(pongs))]
    if transport == "sse":
        assert client.post(frame("ping", ref=1)).status_code == 404  # the channel is gone
    assert_all_well(open_client, others)


# --- 11: refused joins -------------------------------------------------------------------


def page_token(server):
    page = httpx.get(server.url + "/", timeout=TIMEOUT, trust_env=False).text
    config = json.loads(CONFIG_SCRIPT.search(page).group(1))
    return config["tokens"]["editor"]


def forged_tokens(token):
    payload, _, signature = token.rpartition(".")
    other_payload = (
        base64.urlsafe_b64encode(
            json.dumps({"view": "editor", "params": {"doc_id": "someone-else"}}, separators=(",", ":")).encode()
        )
        .decode()
        .rstrip("=")
    )
    middle = len(signature) // 2
    flipped = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    return {
        "another payload": other_payload + "." + signature,
        "a flipped signature": payload + "." + flipped,
        "no signature": payload,
        "garbage": "not-a-token",
    }


def assert_refused_join(client, name, token, code, close_code):
    ref = client.next_ref()
    client.send(frame("join", ref=ref, view="refused", name=name, token=token, html=""))
    error = client.recv()
    assert_error(error, code, ref=ref, view="refused")
    closed = client.recv()
    assert isinstance(closed, Closed) and closed.code == close_code, closed
    # The close says why too. A WebSocket close frame holds 123 bytes: the message is cut
    # there, at a character boundary; the SSE close event carries it whole.
    if client.transport == "ws":
        assert error.message.startswith(closed.reason) and len(closed.reason.encode("utf-8")) <= 123
        assert closed.reason == error.message or len(closed.reason.encode("utf-8")) >= 117
    else:
        assert closed.reason == error.message
    if client.transport == "sse":
        assert client.post(frame("ping", ref=1)).status_code == 404  # the channel is gone


def test_refused_joins_are_closed_4004_and_4001(transport, server, open_client, others):
    assert_refused_join(open_client(transport), "no-such-view", "", "unknown_view", constants.CLOSE_UNKNOWN_VIEW)
    assert_refused_join(open_client(transport), "Editor", "", "unknown_view", constants.CLOSE_UNKNOWN_VIEW)
    token = page_token(server)
    # The genuine grant mounts ...
    client = open_client(transport)
    ref = client.next_ref()
    client.send(frame("join", ref=ref, view="granted", name="editor", token=token, html=""))
    rendered = client.recv()
    assert isinstance(rendered, protocol.Rendered) and rendered.ref == ref, rendered
    # ... and every tampered one is refused.
    for what, forged in forged_tokens(token).items():
        assert_refused_join(open_client(transport), "editor", forged, "bad_token", constants.CLOSE_BAD_TOKEN)
    assert_all_well(open_client, others)


# --- 12-14: transport-level refusals --------------------------------------------------------


def test_a_binary_websocket_frame_is_bad_frame(open_client, others):
    client = open_client("ws")
    editor = Editor(client).join()
    for data in (b"", b"\x00\xff", json.dumps({"t": "ping", "ref": 1}).encode()):
        client.send_binary(data)
        error = client.recv()
        assert_error(error, "bad_frame")
        assert "binary" in error.message
    assert_pong(client)
    editor.probe()
    assert_all_well(open_client, others)


def test_a_foreign_origin_is_refused(transport, open_client, others):
    if transport == "ws":
        client = open_client("ws", origin=EVIL)  # the upgrade is accepted ...
        closed = client.recv()  # ... and closed right away, before any frame
        assert isinstance(closed, Closed), closed
        assert (closed.code, closed.reason) == (constants.CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
    else:
        refused = open_client("sse", origin=EVIL)
        assert refused.status == 200  # an EventSource reads the reason from the stream
        closed = refused.recv()
        assert isinstance(closed, Closed), closed
        assert (closed.code, closed.reason) == (constants.CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
        ended = refused.recv()
        assert isinstance(ended, Closed) and ended.code is None  # the single event, then the end
        victim = open_client("sse")
        victim_editor = Editor(victim).join()
        # Even with a real channel and its token, a POST from another origin is refused.
        response = victim.post(frame("ping", ref=99), Origin=EVIL)
        assert response.status_code == 403 and "origin" in response.text
        response = victim.post(
            frame("event", ref=98, view=victim_editor.view_id, handler="increment", params={}), Origin=EVIL
        )
        assert response.status_code == 403
        assert_pong(victim)  # the refused ping was never answered: this pong comes first
        victim_editor.probe()  # the refused click did nothing
    assert_all_well(open_client, others)


def test_a_foreign_origin_stream_gets_one_close_event(open_client):
    refused = open_client("sse", origin=EVIL)
    assert refused.stream.headers.get("access-control-allow-origin") == EVIL  # it may read why
    first = refused.event()
    assert first["event"] == "close"
    assert json.loads(first["data"]) == {"code": 4003, "reason": "origin not allowed"}
    assert refused.event() is None  # and nothing else: no channel, no csrf


def test_sse_posts_need_their_own_channel_and_token(open_client, others):
    victim = open_client("sse")
    editor = Editor(victim).join()
    stranger = open_client("sse")
    click = frame("event", ref=90, view=editor.view_id, handler="increment", params={"amount": "5"})
    refusals = (
        ({"X-DJ-CSRF": None}, 403),
        ({"X-DJ-CSRF": ""}, 403),
        ({"X-DJ-CSRF": stranger.grant["csrf"]}, 403),
        ({"X-DJ-CSRF": victim.grant["csrf"] + "x"}, 403),
        ({"X-DJ-Channel": "no-such-channel"}, 404),
        ({"X-DJ-Channel": None}, 404),
        ({"X-DJ-Channel": stranger.grant["channel"]}, 403),  # the stranger's channel, the victim's token
    )
    for headers, status in refusals:
        response = victim.post(click, **headers)
        assert response.status_code == status, (headers, response.status_code)
        assert response.text.strip()
    editor.probe()  # none of the refused clicks got through
    assert_pong(stranger)  # nor did one land on the stranger's channel
    assert_all_well(open_client, others)


# --- edge cases that once broke the server --------------------------------------------------


@pytest.mark.parametrize(
    "transport",
    ["ws", "sse"],
)
def test_a_param_named_self_is_bad_params(transport, open_client):
    editor = Editor(open_client(transport)).join()
    editor.refused("validate_title", {"self": "x"}, "bad_params")
    editor.probe()


def test_a_binary_flood_is_closed_4029(open_client):
    client = open_client("ws")
    try:
        for _ in range(1200):
            client.send_binary(b"\x00")
        client.send_many([frame("ping", ref=1)])
    except ConnectionClosed:
        pass  # closed mid-flood: what the server says before closing is still to be read
    seen = []
    while True:
        message = client.recv()
        seen.append(message)
        if isinstance(message, (Closed, protocol.Pong)):
            break
    assert any(isinstance(m, protocol.Error) and m.code == "rate_limited" for m in seen)
    assert isinstance(seen[-1], Closed) and seen[-1].code == 4029


@pytest.mark.parametrize(
    "transport",
    ["ws", "sse"],
)
def test_a_long_non_ascii_view_name_is_still_closed_4004(transport, open_client):
    assert_refused_join(open_client(transport), "é" * 150, "", "unknown_view", constants.CLOSE_UNKNOWN_VIEW)


def test_every_frame_of_a_big_post_is_answered(open_client):
    most = constants.SSE_MAX_FRAMES_PER_POST
    client = open_client("sse")
    client.send_many([frame("ping", ref=n) for n in range(most)], per_post=most)
    assert [client.recv() for _ in range(most)] == [protocol.Pong(ref=n) for n in range(most)]


def test_a_post_of_too_many_frames_is_413_and_handles_none(open_client):
    most = constants.SSE_MAX_FRAMES_PER_POST
    client = open_client("sse")
    response = client.post("\n".join(frame("ping", ref=n) for n in range(most + 1)))
    assert response.status_code == 413 and str(most) in response.text
    # None of its frames was handled: the next answer is to the next ping.
    assert_pong(client)
    with pytest.raises(queue.Empty):
        client.event(timeout=0.5)


def test_a_flood_in_one_post_is_told_why(open_client):
    most = constants.SSE_MAX_FRAMES_PER_POST
    client = open_client("sse")
    # The burst (1000 frames) in POSTs of fewer than the most, then full POSTs until one
    # crosses the limit part way (a client slowed by a loaded machine needs more of them).
    pings = [frame("ping", ref=n) for n in range(1000 + 16 * most)]
    for start in range(0, 1000, 250):
        assert client.post("\n".join(pings[start : start + 250])).status_code == 204
    client.send_many(pings[1000:], per_post=most)
    messages = client.recv_until_closed(limit=len(pings) + 5)
    *pongs, error, closed = messages
    assert closed.code == 4029
    assert_error(error, "rate_limited")
    # Nothing of the POST past the refusal was handled.
    assert 1000 <= len(pongs) < len(pings)
    assert pongs == [protocol.Pong(ref=n) for n in range(len(pongs))]


@pytest.mark.parametrize(
    "transport",
    ["ws", "sse"],
)
def test_a_frame_with_a_raw_line_separator_in_a_string(transport, open_client):
    client = open_client(transport)
    editor = Editor(client).join()
    ref = client.next_ref()
    client.send(
        json.dumps(
            {
                "t": "event",
                "ref": ref,
                "view": editor.view_id,
                "handler": "validate_title",
                "params": {"value": "a\u2028b\x85c"},
            },
            ensure_ascii=False,
        )
    )
    reply = client.recv()
    assert isinstance(reply, protocol.Reply) and reply.ref == ref, reply
    assert state_in(reply.ops)["title"] == "a\u2028b\x85c"


def test_a_non_ascii_csrf_token_is_403(open_client):
    victim = open_client("sse")
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as http:  # a 500 may drop the connection
        response = http.post(
            victim.url + constants.PATH_POST,
            content=frame("ping", ref=1),
            headers={"X-DJ-Channel": victim.grant["channel"], "X-DJ-CSRF": b"\xe9t\xe9"},
        )
    assert response.status_code == 403
