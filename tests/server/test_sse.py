"""The SSE endpoints over a real server process: channels, CSRF, ordered POSTs, and a
session resumed on a new stream by the Hello in its first POST. In process: one POST at
a time per channel, and the bound on frames waiting for a stream."""

import asyncio
import json
import time

import httpx
import pytest
from demo_server import DemoServer
from djreconnect import constants, protocol
from djreconnect_server.demo import TEMPLATES
from djreconnect_server.live import LiveConnection
from djreconnect_server.sessions import SessionRegistry
from djreconnect_server.settings import Settings
from djreconnect_server.signing import MountSigner
from djreconnect_server.sse import SSEHub
from djreconnect_server.stores import MemoryStore
from djreconnect_server.templating import Templates
from djreconnect_server.views import LiveView, event_handler

from .asyncrun import run

KEY = "a-test-secret-key-of-some-length"


@pytest.fixture(scope="module")
def server():
    demo = DemoServer("--transport", "sse").start()
    yield demo
    demo.stop()


def read_events(response, count):
    """The next ``count`` SSE events (dicts of event, id, data) from a streaming response."""
    if not hasattr(response, "sse_lines"):
        response.sse_lines = response.iter_lines()  # one reader for the response's life
    events, current = [], {}
    for line in response.sse_lines:
        if line.startswith(":"):
            continue  # keep-alive comment
        if not line:
            if current:
                events.append(current)
                current = {}
                if len(events) == count:
                    return events
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        current[field] = current.get(field, "") + value if field == "data" else value
    raise AssertionError("stream ended after %d events" % len(events))


def frames(events):
    return [protocol.decode_server(event["data"]) for event in events]


def post(client, url, grant, *messages, **overrides):
    headers = {"X-DJ-Channel": grant["channel"], "X-DJ-CSRF": grant["csrf"]}
    headers.update(overrides)
    body = "\n".join(protocol.encode(message) for message in messages)
    return client.post(url + "/djreconnect/post", content=body, headers=headers)


def open_stream(client, url):
    return client.stream("GET", url + "/djreconnect/sse", timeout=10)


def channel_of(stream):
    """The channel grant a new stream starts with."""
    (first,) = read_events(stream, 1)
    assert first["event"] == constants.SSE_EVENT_CHANNEL
    grant = json.loads(first["data"])
    assert set(grant) == {"channel", "csrf"} and all(grant.values())
    return grant


def exchange(client, url, stream, grant, message):
    """POST one frame and read the one frame it is answered with."""
    assert post(client, url, grant, message).status_code == 204
    (answer,) = frames(read_events(stream, 1))
    return answer


def shows_clicks(ops, count):
    text = "Clicked %d time%s" % (count, "" if count == 1 else "s")
    return any(op[0] == "text" and op[2] == text for op in ops)


def click(ref):
    return protocol.Event(ref=ref, view="v", handler="increment", params={"amount": "1"})


def test_a_new_stream_resumes_the_session_with_hello(server):
    url = server.url
    with httpx.Client(timeout=10, trust_env=False) as client:
        with open_stream(client, url) as stream:
            first = channel_of(stream)
            welcome = exchange(client, url, stream, first, protocol.Hello(ref=1))
            assert isinstance(welcome, protocol.Welcome), welcome
            assert (welcome.resumed, welcome.reason) == (False, protocol.SESSION_NEW)
            session, secret = welcome.session, welcome.secret
            rendered = exchange(client, url, stream, first, protocol.Join(ref=2, view="v", name="editor"))
            assert isinstance(rendered, protocol.Rendered) and not rendered.resumed and rendered.version == 1
            for ref in (3, 4, 5):
                reply = exchange(client, url, stream, first, click(ref))
                assert isinstance(reply, protocol.Reply) and reply.ref == ref
            assert shows_clicks(reply.ops, 3)
            version = reply.version
        # A new stream is a new channel; its first POST resumes the session.
        with open_stream(client, url) as stream:
            second = channel_of(stream)
            assert second["channel"] != first["channel"] and second["csrf"] != first["csrf"]
            welcome = exchange(client, url, stream, second, protocol.Hello(ref=1, session=session, secret=secret))
            assert (welcome.session, welcome.resumed, welcome.reason) == (session, True, "")
            assert welcome.secret != secret  # a secret works for one resume
            rotated = welcome.secret
            join = protocol.Join(ref=2, view="v", name="editor", version=version)
            rendered = exchange(client, url, stream, second, join)
            assert rendered == protocol.Rendered(ref=2, view="v", ops=[], version=version, resumed=True)
            # The last click again (its reply was seen, but say it was not): answered from
            # the record, not applied again.
            reply = exchange(client, url, stream, second, click(5))
            assert reply == protocol.Reply(ref=5, view="v", ops=[], version=version)
            reply = exchange(client, url, stream, second, click(6))
            assert shows_clicks(reply.ops, 4)  # the three clicks before the drop are intact
            version = reply.version
        # The first secret is spent: a Hello with it gets a new session, not this one.
        with open_stream(client, url) as stream:
            third = channel_of(stream)
            welcome = exchange(client, url, stream, third, protocol.Hello(ref=1, session=session, secret=secret))
            assert (welcome.resumed, welcome.reason) == (False, protocol.SESSION_UNKNOWN)
            assert welcome.session != session
            rendered = exchange(client, url, stream, third, protocol.Join(ref=2, view="v", name="editor"))
            assert not rendered.resumed and rendered.version == 1  # a fresh mount
        # ... and the session is untouched, still resumed by its current secret.
        with open_stream(client, url) as stream:
            fourth = channel_of(stream)
            welcome = exchange(client, url, stream, fourth, protocol.Hello(ref=1, session=session, secret=rotated))
            assert (welcome.session, welcome.resumed) == (session, True)
            join = protocol.Join(ref=2, view="v", name="editor", version=version)
            assert exchange(client, url, stream, fourth, join).resumed
            assert shows_clicks(exchange(client, url, stream, fourth, click(7)).ops, 5)


def test_a_post_to_an_ended_channel_is_404(server):
    url = server.url
    with httpx.Client(timeout=10, trust_env=False) as client:
        # Ended by the server (a refused join closes it): 404 once the stream is over.
        with open_stream(client, url) as stream:
            refused = channel_of(stream)
            assert post(client, url, refused, protocol.Join(ref=1, view="v", name="no-such-view")).status_code == 204
            error, close = read_events(stream, 2)
            assert protocol.decode_server(error["data"]).code == "unknown_view"
            assert close["event"] == constants.SSE_EVENT_CLOSE
            assert json.loads(close["data"])["code"] == constants.CLOSE_UNKNOWN_VIEW
            with pytest.raises(AssertionError, match="stream ended"):
                read_events(stream, 1)
        response = post(client, url, refused, protocol.Ping(ref=2))
        assert response.status_code == 404 and response.text
        # Ended by the page (it dropped the stream): 404 as soon as the server sees it.
        with open_stream(client, url) as stream:
            dropped = channel_of(stream)
            assert exchange(client, url, stream, dropped, protocol.Ping(ref=1)) == protocol.Pong(ref=1)
        deadline = time.monotonic() + 10
        while True:
            status = post(client, url, dropped, protocol.Ping(ref=2)).status_code
            if status == 404 or time.monotonic() > deadline:
                break
            assert status == 204
            time.sleep(0.05)
        assert status == 404


def test_frames_of_one_post_are_handled_in_order(server):
    url = server.url
    with httpx.Client(timeout=10, trust_env=False) as client, open_stream(client, url) as stream:
        grant = channel_of(stream)
        clicks = [protocol.Event(ref=n, view="v", handler="increment", params={}) for n in range(2, 12)]
        post(client, url, grant, protocol.Join(ref=1, view="v", name="editor"), *clicks)
        replies = frames(read_events(stream, 11))[1:]
        assert [reply.ref for reply in replies] == list(range(2, 12))
        assert [reply.version for reply in replies] == list(range(2, 12))


def test_posts_need_the_channel_and_its_token(server):
    url = server.url
    with httpx.Client(timeout=10, trust_env=False) as client:
        with open_stream(client, url) as first, open_stream(client, url) as second:
            mine = channel_of(first)
            theirs = channel_of(second)
            ping = protocol.Ping(ref=1)
            assert post(client, url, mine, ping, **{"X-DJ-CSRF": ""}).status_code == 403
            assert post(client, url, mine, ping, **{"X-DJ-CSRF": theirs["csrf"]}).status_code == 403
            assert post(client, url, mine, ping, **{"X-DJ-Channel": "no-such-channel"}).status_code == 404
            headers = {"X-DJ-Channel": mine["channel"]}
            assert client.post(url + "/djreconnect/post", content="{}", headers=headers).status_code == 403
            # The refused POSTs did nothing; the good one still works.
            assert post(client, url, mine, ping).status_code == 204
            (pong,) = frames(read_events(first, 1))
            assert isinstance(pong, protocol.Pong)


def test_a_foreign_origin_is_told_it_is_refused(server):
    with httpx.Client(timeout=10, trust_env=False) as client:
        headers = {"Origin": "http://evil.example"}
        with client.stream("GET", server.url + "/djreconnect/sse", headers=headers) as stream:
            (event,) = read_events(stream, 1)
        assert event["event"] == "close"
        assert json.loads(event["data"])["code"] == 4003
        refused = client.post(server.url + "/djreconnect/post", content="{}", headers=headers)
        assert refused.status_code == 403


# --- in process: the hub and its channels --------------------------------------------


class GateView(LiveView):
    """A view whose handler waits until the test opens its gate."""

    template_name = "gate.html"
    gate = None
    waiting = 0

    def mount(self, request, **kwargs):
        self.passed = 0

    @event_handler()
    async def wait(self):
        type(self).waiting += 1
        await type(self).gate.wait()
        self.passed += 1


@pytest.fixture
def hub_of(tmp_path):
    """hub_of(**settings): an SSEHub whose connections serve GateView."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "djreconnect-0.1.0-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "gate.html").write_text('<div dj-view="{{ dj_view_id }}"><p>{{ passed }}</p></div>')

    def make(**options):
        settings = Settings(KEY, wheels_dir=wheels, **options)
        templates = Templates(settings, [TEMPLATES, tmp_path])
        registry = {GateView.view_name: (GateView, True)}
        sessions = SessionRegistry(MemoryStore())

        def new_live(request):
            return LiveConnection(registry, templates, MountSigner(KEY), settings, request, sessions)

        return SSEHub(new_live, settings), sessions

    return make


def new_channel(hub):
    hub.stream(None)
    [channel] = hub.channels.values()
    return channel


async def drain(hub, channel):
    """Every event the channel's stream sends until it ends: (event name, data)."""
    response_events = []
    async for event in hub._events(channel):
        response_events.append((event.event, event.data))
    return response_events


def test_a_channel_takes_one_post_at_a_time(hub_of):
    async def scenario():
        hub, _ = hub_of()
        channel = new_channel(hub)
        GateView.gate, GateView.waiting = asyncio.Event(), 0
        join = protocol.Join(ref=1, view="v", name="gate")
        wait = protocol.Event(ref=2, view="v", handler="wait")
        held = asyncio.ensure_future(hub.post(channel, protocol.encode(join) + "\n" + protocol.encode(wait)))
        while not GateView.waiting:  # until the event waits in its handler
            await asyncio.sleep(0)
        refused = await hub.post(channel, protocol.encode(protocol.Ping(ref=3)))
        assert refused is not None and refused[0] == 409
        GateView.gate.set()
        assert await held is None
        assert await hub.post(channel, protocol.encode(protocol.Ping(ref=4))) is None
        answers = [protocol.decode_server(channel.take_one()[1]) for _ in range(len(channel.waiting))]
        # The refused POST's ping was never handled.
        assert [type(m).__name__ for m in answers] == ["Rendered", "Reply", "Pong"]
        assert answers[2] == protocol.Pong(ref=4)
        assert channel.live.views["v"].view.passed == 1

    run(scenario())


def test_frames_waiting_for_a_stream_are_bounded_by_bytes(hub_of):
    limit = 2000

    async def scenario():
        hub, sessions = hub_of(max_stream_buffer_bytes=limit)
        channel = new_channel(hub)
        join = protocol.encode(protocol.Join(ref=1, view="v", name="gate"))
        pings = [protocol.encode(protocol.Ping(ref=n)) for n in range(2, 200)]
        assert await hub.post(channel, "\n".join([join] + pings)) is None
        session = channel.live.session
        assert session is not None and session.id in sessions.attached
        # The page read nothing: the channel kept what fits, and is to close with 1013.
        assert channel.refusal[0] == constants.CLOSE_TRY_AGAIN_LATER
        assert 0 < channel.waiting_bytes <= limit
        kept = len(channel.waiting)
        assert kept < len(pings)
        events = await drain(hub, channel)
        assert events[0][0] == constants.SSE_EVENT_CHANNEL
        rendered, *pongs = [protocol.decode_server(data) for name, data in events[1:-1]]
        assert isinstance(rendered, protocol.Rendered)
        assert pongs == [protocol.Pong(ref=n) for n in range(2, 1 + kept)]
        name, data = events[-1]
        assert name == constants.SSE_EVENT_CLOSE and json.loads(data)["code"] == constants.CLOSE_TRY_AGAIN_LATER
        # The channel is gone; its session waits for the page's next stream.
        assert hub.find(channel.id, channel.csrf)[1][0] == 404
        for _ in range(100):  # the detach the stream's end scheduled
            if session.id not in sessions.attached:
                break
            await asyncio.sleep(0)
        assert session.id not in sessions.attached and session.id in sessions.store.retained

    run(scenario())
