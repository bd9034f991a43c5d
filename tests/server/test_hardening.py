"""One client must not stall or bloat the server for the others: each attack of the
hardening issue, over a real server process, while a bystander (another connection to
the same process) clicks the demo's counter and times each reply.

Each test prints its figures (bystander p50/p99/max before and during the attack, the
attacker's throughput, the server's RSS before and at its peak, and the documented
bound), and asserts generous sanity bounds: the aim is a bystander p99 under 50 ms;
on a loaded 2-core machine the tests assert P99_BOUND_MS and print the real figure.

Run with ``-s`` to see the figures.
"""

import queue
import sys
import time
from pathlib import Path

import pytest
from big_state_app import BIG_VIEW, ROW_CHARS, ROWS
from demo_server import DemoServer
from djreconnect import constants, protocol
from djreconnect.patch import OP_HTML
from live_clients import (
    Bystander,
    Closed,
    RSSPeak,
    UnreadSSE,
    answer_to,
    mib,
    mount,
    open_client,
)

TRANSPORTS = (constants.TRANSPORT_WEBSOCKET, constants.TRANSPORT_SSE)
BIG_STATE_APP = Path(__file__).resolve().parents[1] / "big_state_app.py"
# Generous: the aim is 50 ms; this is a loaded machine shared with other work.
P99_BOUND_MS = 500
# The settings' defaults (djreconnect_server.settings.Settings), which the servers run with.
MAX_FRAME_BYTES = constants.DEFAULT_MAX_FRAME_BYTES
MAX_PAGE_HTML_DEPTH = 256
MAX_STREAM_BUFFER_BYTES = 4 << 20
MAX_WORK_PER_SECOND = 200
MAX_WORK_BURST = 400
MAX_SESSION_RENDER_BYTES = 4 << 20
MAX_RENDER_BYTES = 1 << 20
RENDER_UNIT_BYTES = 16 << 10
# What the server's memory may grow by beyond a documented bound: interpreter, parser
# and allocator overhead, which no setting bounds.
RSS_SLACK = 64 << 20


class BigStateServer(DemoServer):
    """tests/big_state_app.py as a real process: the editor and a view of about 1 MB."""

    def command(self):
        return [sys.executable, str(BIG_STATE_APP), "--port", str(self.port)]


@pytest.fixture
def demo():
    server = DemoServer().start()
    yield server
    server.stop()


@pytest.fixture
def big():
    server = BigStateServer().start()
    yield server
    server.stop()


def quiet_baseline(server, transport, seconds=0.6):
    """The bystander's (p50, p99, max) with nobody attacking."""
    bystander = Bystander(server.url, transport).start()
    time.sleep(seconds)
    return bystander.stop()


def report(title, baseline, during, rss, bound, **figures):
    print("\n%s" % title)
    print("  bystander p50/p99/max: quiet %.1f / %.1f / %.1f ms" % baseline)
    print("  bystander p50/p99/max: attacked %.1f / %.1f / %.1f ms" % during)
    print(
        "  server RSS: before %.1f MiB, peak %.1f MiB (+%.1f MiB)"
        % (mib(rss.before), mib(rss.peak), mib(rss.peak - rss.before))
    )
    print("  documented bound: %s" % bound)
    for name, value in figures.items():
        print("  %s: %s" % (name.replace("_", " "), value))


def assert_bystander_served(during):
    p50, p99, _ = during
    assert p99 < P99_BOUND_MS, "bystander p99 %.1f ms during the attack" % p99


# --- finding 1: page HTML of a join ----------------------------------------------------


def nested(opening, size=MAX_FRAME_BYTES - 1024):
    """Nested elements (never closed) filling ``size`` bytes: ``opening`` repeated."""
    return opening * (size // len(opening))


DEEP_PAGES = {
    "div": nested("<div>"),
    "ul": nested("<ul><li>"),
    "dl": nested("<dl><dt><dd>"),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_join_with_deeply_nested_page_html_is_rendered_whole_and_stalls_no_one(demo, transport):
    """Before: the page HTML of a join was parsed on the event loop, quadratic in its
    depth; one 1 MiB join kept the process busy 141 s (a bystander's click took 141 s).
    Now it is measured in one linear pass and, past max_page_html_depth, not parsed: the
    view is rendered whole with one ``html`` op."""
    baseline = quiet_baseline(demo, transport)
    bystander = Bystander(demo.url, transport).start()
    rss = RSSPeak(demo.process.pid).start()
    attacker = open_client(demo.url, transport)
    answers, started = [], time.perf_counter()
    try:
        # Each shape twice over, a join frame of about 1 MiB at a time (within max_frame_bytes).
        for round_ in range(2):
            for shape, html in DEEP_PAGES.items():
                assert len(protocol.encode(protocol.Join(ref=1, view="v", name="editor", html=html))) <= MAX_FRAME_BYTES
                sent = time.perf_counter()
                rendered = mount(attacker, view="v-%s-%d" % (shape, round_), html=html)
                answers.append((shape, rendered, time.perf_counter() - sent))
        elapsed = time.perf_counter() - started
    finally:
        during = bystander.stop()
        rss.stop()
        attacker.close()
    report(
        "finding 1, %s: joins of 1 MiB of nested div / ul-li / dl-dt-dd" % transport,
        baseline,
        during,
        rss,
        "page HTML parsed only within max_page_html_bytes 1 MiB and max_page_html_depth %d" % MAX_PAGE_HTML_DEPTH,
        attacker_joins="%d in %.2f s (%.1f MiB/s of page HTML)"
        % (len(answers), elapsed, mib(len(answers) * MAX_FRAME_BYTES) / elapsed),
        slowest_join="%.2f s" % max(took for _, _, took in answers),
        old_behaviour="one such frame held the event loop 141 s (issue 11, finding 1)",
    )
    for shape, rendered, took in answers:
        assert isinstance(rendered, protocol.Rendered), (shape, rendered)
        # The whole view as one op replacing the root's content: nothing of the page's HTML parsed.
        assert [op[0] for op in rendered.ops] == [OP_HTML], (shape, rendered.ops[:1])
        assert rendered.ops[0][1] == [] and 'id="server-state"' in rendered.ops[0][2]
        assert took < 10, "a deep join took %.1f s" % took
    assert_bystander_served(during)
    assert rss.peak - rss.before < 2 * MAX_FRAME_BYTES + RSS_SLACK


# The aim, doubled: a bystander p99 the server should keep under any one attack.
AIM_P99_MS = 100


@pytest.mark.xfail(
    strict=True,
    reason="page HTML within the bounds is measured (pagehtml.measure_depth) and turned into "
    "Python nodes (diff.parse_fragment) on a worker thread, holding the GIL for ~0.8 s per MiB: "
    "the event loop convoys behind it and the bystander's p99 is 300-500 ms, not 50",
)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_join_with_wide_page_html_within_the_bounds_is_parsed_off_the_loop(demo, transport):
    """Page HTML within the bounds (1 MiB of shallow siblings) is parsed and diffed on a
    worker thread; the bystander should not feel it."""
    html = nested("<p>x</p>")
    baseline = quiet_baseline(demo, transport)
    bystander = Bystander(demo.url, transport).start()
    rss = RSSPeak(demo.process.pid).start()
    attacker = open_client(demo.url, transport)
    try:
        started = time.perf_counter()
        rendered = mount(attacker, html=html)
        took = time.perf_counter() - started
        time.sleep(0.2)
    finally:
        during = bystander.stop()
        rss.stop()
        attacker.close()
    report(
        "finding 1, %s: a join of 1 MiB of flat <p> siblings (within the depth bound: parsed)" % transport,
        baseline,
        during,
        rss,
        "max_page_html_bytes 1 MiB; parsed on one of two worker threads",
        attacker_join="%.2f s" % took,
    )
    assert isinstance(rendered, protocol.Rendered), rendered
    assert rendered.ops and rendered.ops[0][0] != OP_HTML  # a real patch from the page's HTML
    assert during[1] < AIM_P99_MS, "bystander p99 %.1f ms while 1 MiB of page HTML was parsed" % during[1]


# --- finding 2: what waits for a page ------------------------------------------------


def big_title_event(client, index, size=400_000):
    """An event whose reply is about ``size`` bytes or more (the title shows in the page
    twice): it alternates between two titles so that every reply carries one."""
    value = "ab"[index % 2] * size
    return protocol.Event(ref=client.next_ref(), view="v", handler="validate_title", params={"value": value})


def test_a_page_that_does_not_read_its_stream_is_closed_1013_within_the_byte_budget(demo):
    """An SSE page that POSTs events with big replies and never reads its stream: what
    waits for it is bounded by max_stream_buffer_bytes; past it the channel is refused,
    its POSTs are 404 (nothing more is handled), the stream ends with a close event
    1013 once read, and the server's memory stays bounded."""
    transport = constants.TRANSPORT_SSE
    baseline = quiet_baseline(demo, transport)
    bystander = Bystander(demo.url, transport).start()
    rss = RSSPeak(demo.process.pid).start()
    attacker = UnreadSSE(demo.url)
    statuses = []
    try:
        started = time.perf_counter()
        assert attacker.post(protocol.Join(ref=attacker.next_ref(), view="v", name="editor")).status_code == 204
        # Up to three times the budget's worth of replies: more than the budget, the
        # kernel's buffers and the frame on its way out together.
        for index in range(3 * MAX_STREAM_BUFFER_BYTES // 800_000):
            statuses.append(attacker.post(big_title_event(attacker, index)).status_code)
            if statuses[-1] != 204:
                break
        elapsed = time.perf_counter() - started
        time.sleep(0.3)
    finally:
        during = bystander.stop()
        rss.stop()
    try:
        # The page reads at last: what had waited for it, then the close.
        messages = attacker.read_all(timeout=3)
    finally:
        attacker.close()
    received = len(attacker.received)
    report(
        "finding 2, sse: a page that never reads its stream, sent events with ~0.8 MB replies",
        baseline,
        during,
        rss,
        "max_stream_buffer_bytes %.1f MiB per connection" % mib(MAX_STREAM_BUFFER_BYTES),
        attacker_sent="%d POSTs in %.1f s: %s" % (len(statuses), elapsed, statuses),
        attacker_read_later="%.2f MiB in %d frames, then %r" % (mib(received), len(messages) - 1, messages[-1]),
    )
    # Refused once the budget was full: the last POST is 404 and handled nothing.
    assert statuses[-1] == 404 and set(statuses[:-1]) == {204}, statuses
    closed = messages[-1]
    assert isinstance(closed, Closed) and closed.code == constants.CLOSE_TRY_AGAIN_LATER, closed
    # Only what the budget held (and what was already on its way) reached the page.
    # What the page reads later is what the server held plus what the kernel's socket
    # buffers took on the way (the server's send buffer grows up to tcp_wmem's maximum).
    assert received < MAX_STREAM_BUFFER_BYTES + kernel_send_buffer_max() + (2 << 20)
    assert all(isinstance(message, (protocol.Rendered, protocol.Reply)) for message in messages[:-1])
    assert_bystander_served(during)
    assert rss.peak - rss.before < MAX_STREAM_BUFFER_BYTES + RSS_SLACK


def test_a_post_of_more_frames_than_allowed_is_413_and_handles_none(demo):
    client = open_client(demo.url, constants.TRANSPORT_SSE)
    try:
        assert isinstance(mount(client), protocol.Rendered)
        clicks = [
            protocol.Event(ref=client.next_ref(), view="v", handler="increment", params={"amount": "1"})
            for _ in range(constants.SSE_MAX_FRAMES_PER_POST + 44)
        ]
        started = time.perf_counter()
        response = client.post(*clicks)
        took = time.perf_counter() - started
        assert response.status_code == 413, (response.status_code, response.text)
        # None of them was handled: the next click is the first.
        ref = client.next_ref()
        client.send(protocol.Event(ref=ref, view="v", handler="increment", params={"amount": "1"}))
        reply = answer_to(client, ref)
        assert isinstance(reply, protocol.Reply)
        assert any(op[0] == "text" and op[2] == "Clicked 1 time" for op in reply.ops), reply.ops
    finally:
        client.close()
    print("\nfinding 2: a POST of %d frames: %d in %.3f s" % (len(clicks), response.status_code, took))
    assert took < 2


def test_a_post_of_the_most_frames_allowed_does_not_hold_the_loop(demo):
    """256 frames in one POST (about 0.9 MiB of events, each re-rendering a 3.5 KB title)
    are all handled, one at a time, with the loop yielded between them."""
    transport = constants.TRANSPORT_SSE
    baseline = quiet_baseline(demo, transport)
    bystander = Bystander(demo.url, transport).start()
    rss = RSSPeak(demo.process.pid).start()
    attacker = open_client(demo.url, transport)
    try:
        assert isinstance(mount(attacker), protocol.Rendered)
        events = [big_title_event(attacker, index, size=3500) for index in range(constants.SSE_MAX_FRAMES_PER_POST)]
        body = "\n".join(protocol.encode(event) for event in events)
        assert len(body.encode()) <= MAX_FRAME_BYTES
        started = time.perf_counter()
        response = attacker.post(*events)
        took = time.perf_counter() - started
        replies = [answer_to(attacker, event.ref) for event in events]
    finally:
        during = bystander.stop()
        rss.stop()
        attacker.close()
    report(
        "finding 2, sse: one POST of %d frames" % len(events),
        baseline,
        during,
        rss,
        "%d frames per POST, one POST at a time per channel" % constants.SSE_MAX_FRAMES_PER_POST,
        attacker_post="%d in %.2f s (%.0f frames/s)" % (response.status_code, took, len(events) / took),
    )
    assert response.status_code == 204, (response.status_code, response.text)
    assert all(isinstance(reply, protocol.Reply) for reply in replies)
    assert_bystander_served(during)


def test_a_post_to_an_ended_stream_is_404(demo):
    """Finding 7: a channel ends with its stream; a POST to it is refused at once, not
    handled for the rest of the session's life."""
    client = open_client(demo.url, constants.TRANSPORT_SSE)
    grant = client.grant
    assert isinstance(mount(client), protocol.Rendered)
    poster = open_client(demo.url, constants.TRANSPORT_SSE)  # its http client outlives the stream
    client.close()
    poster.grant = grant
    try:
        started = time.perf_counter()
        statuses = []
        while time.perf_counter() - started < 5:
            event = protocol.Event(ref=poster.next_ref(), view="v", handler="increment", params={"amount": "1"})
            statuses.append(poster.post(event).status_code)
            if statuses[-1] == 404:
                break
            time.sleep(0.01)
        took = time.perf_counter() - started
    finally:
        poster.close()
    print("\nfinding 7, sse: POSTs to a channel whose stream ended: %s, 404 after %.3f s" % (statuses, took))
    assert statuses[-1] == 404, statuses
    assert took < 1


# --- finding 3: work per connection ----------------------------------------------------


# Finding 3's stall before the work budget was a bystander max of 20.6 s (p50 1.8 s). The
# budget keeps it well under that, but renders of the big view on the worker threads still
# hold the GIL for hundreds of ms (the aim of 50 ms is not met): this bound catches
# a stall of seconds, the figures printed show the rest.
STALL_BOUND_MS = 2000


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_events_on_a_big_view_are_slowed_to_the_work_budget_and_stall_no_one(big, transport):
    """A view with about 1 MB of state and small events at 90 a second: each costs a unit
    and one per 16 KiB rendered (and per ms), so the attacker's replies come at the work
    budget's rate; it is slowed, not disconnected, and the bystander is served meanwhile."""
    baseline = quiet_baseline(big, transport)
    bystander = Bystander(big.url, transport).start()
    rss = RSSPeak(big.process.pid).start()
    # No protocol pings: a page's heartbeat is the runtime's own Ping frame.
    attacker = (
        open_client(big.url, transport, ping_interval=None) if transport == "ws" else open_client(big.url, transport)
    )
    sending, window = 4.0, 8.0
    try:
        rendered = mount(attacker, name=BIG_VIEW, view="big")
        assert isinstance(rendered, protocol.Rendered), rendered
        started = time.perf_counter()
        sent, refs = 0, []
        while time.perf_counter() - started < sending:
            ref = attacker.next_ref()
            event = protocol.Event(ref=ref, view="big", handler="touch", params={"row": str(sent)})
            if transport == constants.TRANSPORT_WEBSOCKET:
                attacker.send(event)  # at 90 a second, whatever comes back
            else:
                # A POST returns once its frame is handled: one POST at a time per channel.
                response = attacker.post(event)
                assert response.status_code == 204, (response.status_code, response.text)
            refs.append(ref)
            sent += 1
            time.sleep(max(0.0, started + sent / 90 - time.perf_counter()))
        elapsed = time.perf_counter() - started
        # The replies that come within the window, in order; the connection stays open.
        answered, closed = 0, None
        deadline = max(started + window, time.perf_counter() + 2)
        for ref in refs:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                message = answer_to(attacker, ref, timeout=left)
            except (AssertionError, TimeoutError, queue.Empty):
                break  # the rest wait for the budget
            if isinstance(message, Closed):
                closed = message
                break
            assert isinstance(message, protocol.Reply), message
            answered += 1
        total = time.perf_counter() - started
    finally:
        during = bystander.stop()
        rss.stop()
        attacker.close()
    render_units = ROWS * ROW_CHARS / RENDER_UNIT_BYTES
    most = (MAX_WORK_BURST + MAX_WORK_PER_SECOND * total) / (1 + render_units)
    report(
        "finding 3, %s: touch events at 90/s on a view of %.1f MB" % (transport, ROWS * ROW_CHARS / 1e6),
        baseline,
        during,
        rss,
        "max_work_per_second %d (burst %d): at most %.0f replies in %.1f s at >= %.0f units each; "
        "max_session_render_bytes %.0f MiB"
        % (MAX_WORK_PER_SECOND, MAX_WORK_BURST, most, total, 1 + render_units, mib(MAX_SESSION_RENDER_BYTES)),
        attacker_sent="%d events in %.1f s (%.0f/s)" % (sent, elapsed, sent / elapsed),
        attacker_answered="%d in %.1f s (%.2f/s)" % (answered, total, answered / total),
    )
    assert closed is None, "the attacker was disconnected: %r" % closed
    assert answered >= 1
    # Slowed to the budget: no more replies than its units allow.
    assert answered <= most + 1
    assert during[1] < STALL_BOUND_MS, "bystander p99 %.1f ms" % during[1]
    assert rss.peak - rss.before < 4 * MAX_SESSION_RENDER_BYTES + RSS_SLACK


def test_a_batch_of_2000_events_costs_2000_units(big):
    """A batch is charged per event: after 2,000 the connection's next frame waits until
    its budget is back above zero (about (2000 - burst) / rate seconds)."""
    transport = constants.TRANSPORT_WEBSOCKET
    bystander = Bystander(big.url, transport).start()
    attacker = open_client(big.url, transport)
    try:
        assert isinstance(mount(attacker), protocol.Rendered)
        ref = attacker.next_ref()
        events = [["increment", {"amount": "1"}]] * protocol.MAX_BATCH
        started = time.perf_counter()
        attacker.send(protocol.Batch(ref=ref, view="v", events=events))
        reply = answer_to(attacker, ref, timeout=60)
        batch_took = time.perf_counter() - started
        ref = attacker.next_ref()
        attacker.send(protocol.Event(ref=ref, view="v", handler="increment", params={"amount": "1"}))
        after = answer_to(attacker, ref, timeout=60)
        next_waited = time.perf_counter() - started - batch_took
    finally:
        during = bystander.stop()
        attacker.close()
    owed = (protocol.MAX_BATCH - MAX_WORK_BURST) / MAX_WORK_PER_SECOND
    print(
        "\nfinding 3, ws: a batch of %d events answered in %.2f s; the next frame waited %.2f s "
        "(the budget owes at least %.1f s); bystander p50/p99/max %.1f / %.1f / %.1f ms"
        % ((protocol.MAX_BATCH, batch_took, next_waited, owed) + during)
    )
    assert isinstance(reply, protocol.Reply), reply
    assert any(op[0] == "text" and op[2] == "Clicked %d times" % protocol.MAX_BATCH for op in reply.ops), reply.ops
    assert isinstance(after, protocol.Reply), after
    assert next_waited > 0.8 * owed
    assert during[1] < STALL_BOUND_MS, "bystander p99 %.1f ms" % during[1]


def test_renders_a_session_keeps_are_bounded(big):
    """One connection mounting the ~1 MB view over and over: the views past the session's
    render budget are refused (render_too_big), and the server's memory stays bounded."""
    transport = constants.TRANSPORT_WEBSOCKET
    bystander = Bystander(big.url, transport).start()
    rss = RSSPeak(big.process.pid).start()
    attacker = open_client(big.url, transport)
    outcomes = []
    try:
        for number in range(12):
            answer = mount(attacker, name=BIG_VIEW, view="big-%d" % number)
            outcomes.append(answer.code if isinstance(answer, protocol.Error) else type(answer).__name__)
    finally:
        during = bystander.stop()
        rss.stop()
        attacker.close()
    report(
        "finding 3, ws: twelve mounts of the %.1f MB view on one connection" % (ROWS * ROW_CHARS / 1e6),
        (float("nan"),) * 3,
        during,
        rss,
        "max_session_render_bytes %.0f MiB, max_render_bytes %.0f MiB"
        % (mib(MAX_SESSION_RENDER_BYTES), mib(MAX_RENDER_BYTES)),
        outcomes=outcomes,
    )
    mounted = outcomes.count("Rendered")
    assert mounted * ROWS * ROW_CHARS <= MAX_SESSION_RENDER_BYTES
    assert outcomes[mounted:] == ["render_too_big"] * (len(outcomes) - mounted), outcomes
    assert during[1] < STALL_BOUND_MS, "bystander p99 %.1f ms" % during[1]
    assert rss.peak - rss.before < 4 * MAX_SESSION_RENDER_BYTES + RSS_SLACK


def kernel_send_buffer_max():
    """The most a TCP socket's send buffer may grow to on this machine (Linux)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as limits:
            return int(limits.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20
