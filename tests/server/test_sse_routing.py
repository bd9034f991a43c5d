"""SSE without sticky routing: two real processes on a real Redis, a stream held by one
and POSTs sent to the other. They are carried to the stream's process and applied there
in order, once; one POST at a time per stream holds across processes (409); a stream
whose process is gone or stopped gets a clear answer; the POSTs waiting for another
process are bounded, and the frame and byte bounds hold before anything is sent."""

import concurrent.futures
import sys
import time
from pathlib import Path

import httpx
import pytest
from demo_server import DemoServer
from djreconnect import protocol
from services import RedisServer

from .test_sse import channel_of, click, exchange, frames, open_stream, post, read_events, shows_clicks

ROUTING_APP = Path(__file__).resolve().parents[1] / "routing_app.py"
ROUTE_TIMEOUT_S = 3.0
MAX_WAITING = 2
MAX_WAITING_BYTES = 64 << 10


class RoutingServer(DemoServer):
    """tests/routing_app.py as a real process: the demo over SSE on Redis, a slow view,
    and the router's bounds small enough to reach."""

    def __init__(self, redis_url, *flags):
        super().__init__(*flags)
        self.redis_url = redis_url

    def command(self):
        return [
            sys.executable,
            str(ROUTING_APP),
            "--port",
            str(self.port),
            "--store",
            self.redis_url,
            *self.flags,
        ]


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def pair(redis_server):
    flags = [
        "--route-timeout-s",
        str(ROUTE_TIMEOUT_S),
        "--max-waiting",
        str(MAX_WAITING),
        "--max-waiting-bytes",
        str(MAX_WAITING_BYTES),
    ]
    servers = []
    try:
        for _ in range(2):
            servers.append(RoutingServer(redis_server.url, *flags).start())
        yield servers
    finally:
        for server in servers:
            server.stop()  # SIGKILL: a stopped process too


@pytest.fixture
def client():
    with httpx.Client(timeout=20, trust_env=False) as http:
        yield http


def post_alone(url, grant, *messages):
    """``post`` on a client of its own (for POSTs sent from several threads at once)."""
    with httpx.Client(timeout=20, trust_env=False) as http:
        return post(http, url, grant, *messages)


def wait_event(ref):
    return protocol.Event(ref=ref, view="s", handler="wait", params={})


def wait_held(client, server, count=1):
    """Until ``count`` handlers wait at ``server``'s gate."""
    deadline = time.monotonic() + 10
    while client.get(server.url + "/gate").json()["waiting"] != count:
        assert time.monotonic() < deadline, "the held POST never reached its handler"
        time.sleep(0.01)


def test_posts_sent_to_the_other_process_are_applied_in_order_once(pair, client):
    owner, other = pair
    with open_stream(client, owner.url) as stream:
        grant = channel_of(stream)
        # Every frame through the other process: answered on the owner's stream.
        welcome = exchange(client, other.url, stream, grant, protocol.Hello(ref=1))
        assert isinstance(welcome, protocol.Welcome) and not welcome.resumed
        rendered = exchange(client, other.url, stream, grant, protocol.Join(ref=2, view="v", name="editor"))
        assert isinstance(rendered, protocol.Rendered) and rendered.version == 1
        # Many frames in one routed POST: in order.
        assert post(client, other.url, grant, *[click(ref) for ref in range(3, 23)]).status_code == 204
        replies = frames(read_events(stream, 20))
        assert [reply.ref for reply in replies] == list(range(3, 23))
        assert [reply.version for reply in replies] == list(range(2, 22))
        assert shows_clicks(replies[-1].ops, 20)
        # POSTs alternating between the processes: in order, each applied once.
        for ref in range(23, 33):
            target = (owner, other)[ref % 2]
            reply = exchange(client, target.url, stream, grant, click(ref))
            assert isinstance(reply, protocol.Reply) and reply.ref == ref
        assert shows_clicks(reply.ops, 30)
        version = reply.version
        # An event sent again through the other process (its reply lost, say): answered
        # from the exactly-once record, not applied again.
        again = exchange(client, other.url, stream, grant, click(32))
        assert again == protocol.Reply(ref=32, view="v", ops=[], version=version)
        assert shows_clicks(exchange(client, other.url, stream, grant, click(33)).ops, 31)
        # The owner checks the token of a routed POST, and a refused one did nothing.
        wrong = post(client, other.url, grant, click(34), **{"X-DJ-CSRF": "not-the-token"})
        assert wrong.status_code == 403 and "CSRF" in wrong.text
        assert shows_clicks(exchange(client, other.url, stream, grant, click(35)).ops, 32)
    # The stream is over: its key is gone, and a POST through either process is 404.
    deadline = time.monotonic() + 10
    while post(client, other.url, grant, protocol.Ping(ref=36)).status_code != 404:
        assert time.monotonic() < deadline, "a POST for an ended stream was still routed"
        time.sleep(0.05)
    assert post(client, owner.url, grant, protocol.Ping(ref=37)).status_code == 404


def test_one_post_at_a_time_per_stream_holds_across_processes(pair, client):
    owner, other = pair
    with open_stream(client, owner.url) as stream:
        grant = channel_of(stream)
        assert isinstance(
            exchange(client, owner.url, stream, grant, protocol.Join(ref=1, view="s", name="slow")), protocol.Rendered
        )
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            for ref, (slow_via, second_via) in enumerate(((other, owner), (owner, other), (other, other)), start=2):
                held = pool.submit(post_alone, slow_via.url, grant, wait_event(ref))
                wait_held(client, owner)  # the held event is being applied on the owner
                second = post(client, second_via.url, grant, protocol.Ping(ref=100 + ref))
                assert second.status_code == 409, (slow_via.port, second_via.port, second.status_code)
                assert "one POST at a time" in second.text
                client.post(owner.url + "/gate")
                assert held.result().status_code == 204, held.result().text
                (reply,) = frames(read_events(stream, 1))
                assert isinstance(reply, protocol.Reply) and reply.ref == ref
        # The refused pings were never handled; the next frame is answered as usual.
        assert exchange(client, other.url, stream, grant, protocol.Ping(ref=200)) == protocol.Pong(ref=200)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(post_alone, other.url, grant, wait_event(201))
            wait_held(client, owner)
            client.post(owner.url + "/gate")
            assert held.result().status_code == 204
        (reply,) = frames(read_events(stream, 1))
        assert any(op[0] == "text" and op[2] == "4" for op in reply.ops), reply.ops  # three waits, then this one


def test_a_stream_whose_process_is_gone_gets_a_clear_answer(pair, client):
    owner, other = pair
    with open_stream(client, owner.url) as stream:
        grant = channel_of(stream)
        assert exchange(client, other.url, stream, grant, protocol.Ping(ref=1)) == protocol.Pong(ref=1)
        owner.process.send_signal(19)  # SIGSTOP: alive, but answering nothing
        started = time.monotonic()
        stopped = post(client, other.url, grant, protocol.Ping(ref=2))
        waited = time.monotonic() - started
        assert stopped.status_code == 503 and "did not answer" in stopped.text
        assert ROUTE_TIMEOUT_S <= waited < ROUTE_TIMEOUT_S + 5
        owner.process.kill()  # and now gone (its key stays until it expires)
        owner.process.wait()
    started = time.monotonic()
    gone = post(client, other.url, grant, protocol.Ping(ref=3))
    assert gone.status_code == 404 and "gone" in gone.text
    assert time.monotonic() - started < ROUTE_TIMEOUT_S  # at once, not after the timeout
    # A channel nobody ever held: today's answer.
    unknown = post(client, other.url, {"channel": "no-such-channel", "csrf": "x"}, protocol.Ping(ref=4))
    assert unknown.status_code == 404 and unknown.text == "unknown or closed stream"


def test_posts_waiting_for_another_process_are_bounded(pair, client):
    owner, other = pair
    streams = []
    with open_stream(client, owner.url) as stream:
        grant = channel_of(stream)
        assert exchange(client, other.url, stream, grant, protocol.Ping(ref=1)) == protocol.Pong(ref=1)
        # Over the frame bound: refused by the receiving process before anything is sent.
        too_many = post(client, other.url, grant, *[protocol.Ping(ref=n) for n in range(2, 2 + 257)])
        assert too_many.status_code == 413 and "256" in too_many.text
        # Over the byte bound of the POSTs waiting (one alone is): 503 at once.
        padded = protocol.Event(ref=300, view="v", handler="increment", params={"pad": "x" * MAX_WAITING_BYTES})
        assert post(client, other.url, grant, padded).status_code == 503
        # Nothing of either reached the stream: the next frame's answer is the next event.
        assert exchange(client, other.url, stream, grant, protocol.Ping(ref=301)) == protocol.Pong(ref=301)
        # Over the count: with the owner stopped, MAX_WAITING POSTs wait, the next is 503 at once.
        others = [open_stream(client, owner.url) for _ in range(MAX_WAITING)]
        grants = [channel_of(extra.__enter__()) for extra in others]
        streams.extend(others)
        owner.process.send_signal(19)  # SIGSTOP
        try:
            with concurrent.futures.ThreadPoolExecutor(MAX_WAITING) as pool:
                waiting = [pool.submit(post_alone, other.url, g, protocol.Ping(ref=1)) for g in grants]
                time.sleep(0.5)
                started = time.monotonic()
                refused = post(client, other.url, grant, protocol.Ping(ref=302))
                assert refused.status_code == 503 and "too many POSTs waiting" in refused.text
                assert time.monotonic() - started < ROUTE_TIMEOUT_S / 2
                assert [answer.result().status_code for answer in waiting] == [503] * MAX_WAITING
        finally:
            owner.process.send_signal(18)  # SIGCONT
        # Once they are answered, routing works again.
        assert exchange(client, other.url, stream, grant, protocol.Ping(ref=303)) == protocol.Pong(ref=303)
        for extra in streams:
            extra.__exit__(None, None, None)
