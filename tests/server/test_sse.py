"""The SSE endpoints over a real server process: sessions, CSRF, ordered POSTs, and
streams resumed with Last-Event-ID that get what they missed, once."""

import json

import httpx
import pytest
from demo_server import DemoServer
from djreconnect import protocol


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
    headers = {"X-DJ-Session": grant["session"], "X-DJ-CSRF": grant["csrf"]}
    headers.update(overrides)
    body = "\n".join(protocol.encode(message) for message in messages)
    return client.post(url + "/djreconnect/post", content=body, headers=headers)


def open_stream(client, url, **params):
    return client.stream("GET", url + "/djreconnect/sse", params=params, timeout=10)


def test_a_resumed_stream_gets_what_it_missed_once(server):
    url = server.url
    with httpx.Client(timeout=10) as client:
        with open_stream(client, url) as stream:
            (hello,) = read_events(stream, 1)
            assert hello["event"] == "session"
            grant = json.loads(hello["data"])
            assert post(client, url, grant, protocol.Join(ref=1, view="v", name="editor")).status_code == 204
            assert post(client, url, grant, protocol.Ping(ref=2)).status_code == 204
            seen = read_events(stream, 2)
            assert [event["id"] for event in seen] == ["1", "2"]
            assert isinstance(frames(seen)[0], protocol.Rendered)
        # The stream is gone; the session lives on and keeps what it sends.
        event = protocol.Event(ref=3, view="v", handler="increment", params={})
        assert post(client, url, grant, event, protocol.Ping(ref=4)).status_code == 204
        assert post(client, url, grant, protocol.Ping(ref=5)).status_code == 204
        with open_stream(client, url, session=grant["session"], key=grant["csrf"], last_event_id=2) as stream:
            hello, *missed = read_events(stream, 4)
            resumed = json.loads(hello["data"])
            assert resumed["session"] == grant["session"]
            assert resumed["csrf"] != grant["csrf"]  # a resume rotates the token
            assert [event["id"] for event in missed] == ["3", "4", "5"]
            reply, pong4, pong5 = frames(missed)
            assert isinstance(reply, protocol.Reply) and reply.ref == 3 and reply.ops
            assert (pong4.ref, pong5.ref) == (4, 5)
            assert post(client, url, grant, protocol.Ping(ref=6)).status_code == 403  # the old token is dead
            assert post(client, url, resumed, protocol.Ping(ref=6)).status_code == 204
            (after,) = read_events(stream, 1)
            assert after["id"] == "6"  # nothing repeated before it
        # The standard header works too, from an earlier point.
        with client.stream(
            "GET",
            url + "/djreconnect/sse",
            params={"session": grant["session"], "key": resumed["csrf"]},
            headers={"Last-Event-ID": "4"},
        ) as stream:
            _, *missed = read_events(stream, 3)
            assert [event["id"] for event in missed] == ["5", "6"]


def test_a_resume_needs_the_current_key(server):
    url = server.url
    with httpx.Client(timeout=10) as client:
        with open_stream(client, url) as stream:
            grant = json.loads(read_events(stream, 1)[0]["data"])
        for key in (None, "", "wrong", "\u00e9t\u00e9"):
            params = {"session": grant["session"], "last_event_id": 0}
            if key is not None:
                params["key"] = key
            with open_stream(client, url, **params) as stream:
                other = json.loads(read_events(stream, 1)[0]["data"])
            assert other["session"] != grant["session"]  # a new session, not the old one
        with open_stream(client, url, session=grant["session"], key=grant["csrf"], last_event_id=0) as stream:
            assert json.loads(read_events(stream, 1)[0]["data"])["session"] == grant["session"]


def test_frames_of_one_post_are_handled_in_order(server):
    url = server.url
    with httpx.Client(timeout=10) as client, open_stream(client, url) as stream:
        grant = json.loads(read_events(stream, 1)[0]["data"])
        clicks = [protocol.Event(ref=n, view="v", handler="increment", params={}) for n in range(2, 12)]
        post(client, url, grant, protocol.Join(ref=1, view="v", name="editor"), *clicks)
        replies = frames(read_events(stream, 11))[1:]
        assert [reply.ref for reply in replies] == list(range(2, 12))


def test_posts_need_the_session_and_its_token(server):
    url = server.url
    with httpx.Client(timeout=10) as client:
        with open_stream(client, url) as first, open_stream(client, url) as second:
            mine = json.loads(read_events(first, 1)[0]["data"])
            theirs = json.loads(read_events(second, 1)[0]["data"])
            ping = protocol.Ping(ref=1)
            assert post(client, url, mine, ping, **{"X-DJ-CSRF": ""}).status_code == 403
            assert post(client, url, mine, ping, **{"X-DJ-CSRF": theirs["csrf"]}).status_code == 403
            assert post(client, url, mine, ping, **{"X-DJ-Session": "no-such-session"}).status_code == 404
            headers = {"X-DJ-Session": mine["session"]}
            assert client.post(url + "/djreconnect/post", content="{}", headers=headers).status_code == 403
            # The refused POSTs did nothing; the good one still works.
            assert post(client, url, mine, ping).status_code == 204
            (pong,) = frames(read_events(first, 1))
            assert isinstance(pong, protocol.Pong)


def test_a_foreign_origin_is_told_it_is_refused(server):
    with httpx.Client(timeout=10) as client:
        headers = {"Origin": "http://evil.example"}
        with client.stream("GET", server.url + "/djreconnect/sse", headers=headers) as stream:
            (event,) = read_events(stream, 1)
        assert event["event"] == "close"
        assert json.loads(event["data"])["code"] == 4003
        refused = client.post(server.url + "/djreconnect/post", content="{}", headers=headers)
        assert refused.status_code == 403
