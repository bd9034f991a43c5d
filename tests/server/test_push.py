"""Server push (pubsub.py): broadcasts and timers change views without a client event,
once each, whether the page is connected, away or slow; through the test client (a real
LiveConnection driven by the runtime's own client core) and, for the slow page, a
LiveConnection whose transport does not drain."""

import asyncio
import json
import time

import pytest
from djreconnect import protocol
from djreconnect_server import DJReconnect, LiveView, Settings, event_handler
from djreconnect_server.testing import _on_server, mount

from .built import KEY, NODE_MODULES, WHEELS, needs_built_assets

pytestmark = needs_built_assets

TICKER_HTML = """<!DOCTYPE html>
<html><head>{{ djreconnect_scripts() }}</head>
<body dj-view="{{ dj_view_id }}"><div dj-root>
<p id="price">{{ price }}</p><p id="seen">{{ seen }}</p><p id="ticks">{{ ticks }}</p>
<button id="tick" dj-click="tick_later" dj-value-ms="20">later</button>
</div></body></html>
"""


class TickerView(LiveView):
    template_name = "ticker.html"

    def mount(self, request, **kwargs):
        self.price = 0
        self.seen = 0
        self.ticks = 0
        self.subscribe("prices")

    def handle_info(self, message):
        if message == "boom":
            self.price = -1  # changed, then failed: the view keeps its state as it is
            raise RuntimeError("a handle_info that raises")
        if message == "tick":
            self.ticks += 1
            return
        self.price = message["price"]
        self.seen += 1

    @event_handler()
    def tick_later(self, ms: int = 20):
        self.send_after(ms, "tick")

    @event_handler()
    def stop_prices(self):
        self.unsubscribe("prices")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    templates = tmp_path_factory.mktemp("templates")
    (templates / "ticker.html").write_text(TICKER_HTML)
    live = DJReconnect(Settings(KEY, node_modules_dir=NODE_MODULES, wheels_dir=WHEELS), [templates])
    live.page("/", TickerView)
    return live


def settle(live):
    """Wait until every delivery and render the hub started has finished."""

    async def idle():
        while live.hub.pending:
            await asyncio.gather(*list(live.hub.pending))

    _on_server(idle())


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_broadcast_reaches_every_subscribed_page_once(live):
    with mount(live, TickerView) as one, mount(live, TickerView) as two:
        one.broadcast("prices", {"price": 7})
        two.broadcast("nobody-listens", {"price": 99})  # a topic nobody has: a no-op
        for page in (one, two):
            assert page.text("#price") == "7"
            assert page.state["seen"] == 1  # applied once per view


def test_a_topic_nobody_has_is_a_no_op():
    async def publish():
        return live_without_pages.broadcast("nobody", {"x": 1})

    live_without_pages = DJReconnect(Settings(KEY, node_modules_dir=NODE_MODULES, wheels_dir=WHEELS), [])
    assert _on_server(publish()) == 0


def test_a_handle_info_that_raises_is_logged_and_the_page_keeps_going(live, caplog):
    with mount(live, TickerView) as page:
        page.broadcast("prices", {"price": 3})
        page.broadcast("prices", "boom")
        settle(live)
        assert "handle_info of TickerView failed" in caplog.text
        page.broadcast("prices", {"price": 4})
        assert page.text("#price") == "4"
        page.click("#tick")  # events still work
        assert page.state["price"] == 4


def test_send_after_fires_once(live):
    with mount(live, TickerView) as page:
        page.click("#tick")
        assert wait_for(lambda: page.view.ticks == 1)
        time.sleep(0.1)
        settle(live)
        assert page.view.ticks == 1
        page.broadcast("prices", {"price": 1})  # collect what was pushed meanwhile
        assert page.text("#ticks") == "1"


def test_a_view_whose_session_ended_gets_nothing_from_its_timers_or_topics(live):
    page = mount(live, TickerView)
    view = page.view
    page.send("tick_later", {"ms": 400})
    session_id = page.client.session
    page.drop()  # the page went away; its session is retained...

    async def expire():
        live.sessions.store._drop(session_id)  # ...until it expires, as here

    _on_server(expire())
    time.sleep(0.6)
    settle(live)
    assert view.ticks == 0  # the timer ended with the session
    subscribers = live.hub.topics.get("prices", set())
    assert not any(sid == session_id for sid, _ in subscribers)  # and its subscriptions


def test_unsubscribing_stops_the_pushes(live):
    with mount(live, TickerView) as page:
        page.send("stop_prices")
        page.broadcast("prices", {"price": 11})
        assert page.state["seen"] == 0


def test_a_page_that_was_away_gets_what_was_pushed_in_its_resume(live):
    with mount(live, TickerView) as away, mount(live, TickerView) as here:
        away.drop()
        here.broadcast("prices", {"price": 42})
        settle(live)
        assert away.text("#price") == "0"  # nothing reached the page while it was away
        away.resume()
        assert away.mounts[-1] == "resume"
        assert away.text("#price") == "42"
        assert away.state["seen"] == 1


def test_a_slow_page_gets_one_render_of_the_newest_state_and_the_server_holds_no_backlog(live):
    """A transport that does not drain (a page that stopped reading): pushes change the
    state, renders wait, and what waits for the page does not grow with the pushes."""

    async def scenario():
        connection = live._live_connection(None)
        sent = []
        drained = asyncio.Event()  # never set: the page does not read
        connection.emit = sent.append
        connection.wait_drained = drained.wait
        for text in (
            protocol.encode(protocol.Hello(ref=1)),
            protocol.encode(
                protocol.Join(
                    ref=2, view="v", name=TickerView.view_name, token=live.signer.sign(TickerView.view_name, {})
                )
            ),
        ):
            await connection.receive(text)
        rendered_frames = len(sent)
        for price in range(500):
            live.broadcast("prices", {"price": price})
            await asyncio.sleep(0)
        while live.hub.pending and not all(
            task.get_coro().__qualname__.endswith("render") for task in live.hub.pending
        ):
            await asyncio.sleep(0.001)
        backlog = len(sent) - rendered_frames
        state = connection.views["v"]
        seen_while_stalled = state.view.seen
        drained.set()  # the page reads again
        while live.hub.pending:
            await asyncio.gather(*list(live.hub.pending))
        replies = [protocol.decode_server(frame) for frame in sent[rendered_frames:]]
        await connection.detach()
        return backlog, seen_while_stalled, replies, state.view.price

    backlog, seen, replies, price = _on_server(scenario())
    assert seen == 500  # every push was applied to the state, once
    assert backlog == 0  # nothing rendered for the page while it did not read
    assert len(replies) == 1 and isinstance(replies[0], protocol.Reply)  # then one render
    assert price == 499
    assert any("499" in json.dumps(op) for op in replies[0].ops)  # of the newest state
