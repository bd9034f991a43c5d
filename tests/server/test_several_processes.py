"""Demo processes sharing a real Redis, spoken to over the wire protocol: a SIGTERM closes
with 1012 and the restart hint after keeping the session, which another process resumes;
two processes resuming one session at once cannot both win; a Redis that is down is an
error and a 1013, not a hung connection."""

import concurrent.futures
import json

import pytest
from demo_server import DemoServer
from djreconnect import constants, protocol
from services import RedisServer
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

VIEW = "v1"


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def pair(redis_server):
    servers = [DemoServer("--store", redis_server.url).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


class Client:
    """One page's connection, at the protocol level."""

    def __init__(self, server):
        self.ws = connect("ws://127.0.0.1:%d%s" % (server.port, constants.DEFAULT_PREFIX + constants.PATH_WEBSOCKET))
        self.ref = 0

    def send(self, message):
        self.ws.send(protocol.encode(message))

    def next_ref(self):
        self.ref += 1
        return self.ref

    def answer(self, ref):
        while True:
            frame = json.loads(self.ws.recv(timeout=10))
            if frame.get("ref") == ref:
                return frame

    def hello(self, session=None, secret=None):
        ref = self.next_ref()
        self.send(protocol.Hello(ref=ref, session=session, secret=secret))
        return self.answer(ref)

    def join(self, version=None):
        ref = self.next_ref()
        self.send(protocol.Join(ref=ref, view=VIEW, name="editor", version=version))
        return self.answer(ref)

    def click(self, ref):
        self.ref = max(self.ref, ref)
        self.send(protocol.Event(ref=ref, view=VIEW, handler="increment", params={}))
        return self.answer(ref)


def test_sigterm_keeps_the_session_closes_with_the_hint_and_another_process_resumes(pair):
    first, second = pair
    page = Client(first)
    welcome = page.hello()
    page.join()
    for ref in (10, 11, 12):
        page.click(ref)
    secret = welcome["secret"]
    first.process.terminate()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            frame = json.loads(page.ws.recv(timeout=10))
            secret = frame.get("secret", secret)
    assert closed.value.rcvd.code == constants.CLOSE_SERVICE_RESTART
    assert closed.value.rcvd.reason == constants.CLOSE_REASON_RESTART
    first.process.wait(timeout=15)
    again = Client(second)
    resumed = again.hello(welcome["session"], secret)
    assert resumed["resumed"] is True
    rendered = again.join(version=4)
    assert rendered.get("resumed") is True
    # The clicks applied on the first process are there, and a repeat is not applied again.
    assert again.click(12)["version"] == 4
    reply = again.click(13)
    assert reply["version"] == 5
    assert "Clicked 4" in json.dumps(reply["ops"])


def test_two_processes_resuming_one_session_at_once_cannot_both_win(pair):
    first, second = pair
    page = Client(first)
    welcome = page.hello()
    page.join()
    page.ws.close()
    clients = [Client(first), Client(second), Client(first), Client(second)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda client: client.hello(welcome["session"], welcome["secret"]), clients))
    assert [answer["resumed"] for answer in answers].count(True) == 1
    for client in clients:
        client.ws.close()


def test_a_redis_that_is_down_is_an_error_and_1013_not_a_hang(redis_server, pair):
    first, _ = pair
    redis_server.stop()
    try:
        page = Client(first)
        ref = page.next_ref()
        page.send(protocol.Hello(ref=ref))
        frame = json.loads(page.ws.recv(timeout=10))
        assert frame["code"] == protocol.STORE_UNAVAILABLE
        with pytest.raises(ConnectionClosed) as closed:
            page.ws.recv(timeout=10)
        assert closed.value.rcvd.code == constants.CLOSE_TRY_AGAIN_LATER
    finally:
        redis_server.start()
    page = Client(first)
    assert page.hello()["resumed"] is False  # back by itself
    page.join()
    assert page.click(1)["version"] == 2
