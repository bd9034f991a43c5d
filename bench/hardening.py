"""One client attacking, another clicking: a bystander's round trip (the demo's counter)
with and without each attack of the hardening issue, in the same run, the attacker's
throughput and the server's RSS (before and peak). The issue's aim: bystander p99 under
50 ms while any one client attacks within the limits.

    .venv/bin/python bench/hardening.py
"""

import sys
import time

import _support as S  # noqa: F401  (puts tests/ on the path)
from big_state_app import BIG_VIEW
from demo_server import DemoServer
from djreconnect import constants, protocol
from live_clients import Bystander, RSSPeak, UnreadSSE, answer_to, mib, mount, open_client

WS, SSE = constants.TRANSPORT_WEBSOCKET, constants.TRANSPORT_SSE
QUIET_S = 2.0


class BigStateServer(DemoServer):
    def command(self):
        return [sys.executable, str(S.CHECKOUT / "tests" / "big_state_app.py"), "--port", str(self.port)]


def deep_joins(url, transport):
    client = open_client(url, transport)
    html = "<div>" * ((constants.DEFAULT_MAX_FRAME_BYTES - 1024) // 5)
    started, count = time.perf_counter(), 0
    while time.perf_counter() - started < 3:
        assert isinstance(mount(client, view="v%d" % count, html=html), protocol.Rendered)
        count += 1
    client.close()
    return "%d joins of 1 MiB nested divs, %.1f/s" % (count, count / (time.perf_counter() - started))


def wide_join(url, transport):
    client = open_client(url, transport)
    started = time.perf_counter()
    assert isinstance(mount(client, html="<p>x</p>" * 130_000), protocol.Rendered)
    took = time.perf_counter() - started
    client.close()
    return "one join of 1 MiB flat <p>s: %.2f s" % took


def title_event(client, index, size):
    value = "ab"[index % 2] * size
    return protocol.Event(ref=client.next_ref(), view="v", handler="validate_title", params={"value": value})


def unread_stream(url, transport):
    client = UnreadSSE(url)
    client.post(protocol.Join(ref=client.next_ref(), view="v", name="editor"))
    statuses, started = [], time.perf_counter()
    for index in range(15):
        statuses.append(client.post(title_event(client, index, 400_000)).status_code)
        if statuses[-1] != 204:
            break
    took = time.perf_counter() - started
    client.close()
    return "%d POSTs of 0.8 MB replies in %.1f s, then %d" % (len(statuses), took, statuses[-1])


def full_post(url, transport):
    client = open_client(url, SSE)
    mount(client)
    events = [title_event(client, index, 3500) for index in range(constants.SSE_MAX_FRAMES_PER_POST)]
    started = time.perf_counter()
    status = client.post(*events).status_code
    took = time.perf_counter() - started
    client.close()
    return "one POST of %d frames: %d in %.2f s" % (len(events), status, took)


def big_view_events(url, transport):
    options = {"ping_interval": None} if transport == WS else {}
    client = open_client(url, transport, **options)
    mount(client, name=BIG_VIEW, view="big")
    started, refs = time.perf_counter(), []
    while time.perf_counter() - started < 4:
        ref = client.next_ref()
        event = protocol.Event(ref=ref, view="big", handler="touch", params={"row": str(len(refs))})
        if transport == WS:
            client.send(event)
        else:
            client.post(event)
        refs.append(ref)
        time.sleep(max(0.0, started + len(refs) / 90 - time.perf_counter()))
    answered = 0
    for ref in refs:
        left = max(started + 8, time.perf_counter() + 0.5) - time.perf_counter()
        try:
            answer_to(client, ref, timeout=max(left, 0.01))
        except Exception:
            break
        answered += 1
    total = time.perf_counter() - started
    client.close()
    return "%d events sent at 90/s, %d answered in %.1f s" % (len(refs), answered, total)


ATTACKS = (
    ("1: deep page HTML in joins", DemoServer, deep_joins, (WS, SSE)),
    ("1: 1 MiB flat page HTML (parsed)", DemoServer, wide_join, (WS, SSE)),
    ("2: SSE stream never read", DemoServer, unread_stream, (SSE,)),
    ("2: 256 frames in one POST", DemoServer, full_post, (SSE,)),
    ("3: events on a 0.8 MB view at 90/s", BigStateServer, big_view_events, (WS, SSE)),
)


def measure(server_class, attack, transport):
    server = server_class().start()
    try:
        bystander = Bystander(server.url, transport).start()
        time.sleep(QUIET_S)
        quiet = bystander.stop()
        bystander = Bystander(server.url, transport).start()
        rss = RSSPeak(server.process.pid).start()
        figure = attack(server.url, transport)
        time.sleep(0.2)
        attacked = bystander.stop()
        rss.stop()
        return quiet, attacked, rss, figure
    finally:
        server.stop()


def main():
    rows = []
    for title, server_class, attack, transports in ATTACKS:
        for transport in transports:
            quiet, attacked, rss, figure = measure(server_class, attack, transport)
            rows.append(
                [
                    title,
                    transport,
                    "%.1f / %.1f" % quiet[:2],
                    "%.1f / %.1f / %.1f" % attacked,
                    S.fmt(attacked[1] / quiet[1], 1) + "x",
                    S.verdict(attacked[1] < 50),
                    figure,
                    "%.0f → %.0f MiB" % (mib(rss.before), mib(rss.peak)),
                ]
            )
            print(rows[-1], file=sys.stderr, flush=True)
    body = (
        "Bystander: another page clicking the demo's counter every 20 ms on the same server "
        "process; quiet first, then during the attack, each on a fresh server. Default limits: "
        "page HTML 1 MiB / depth 256, stream buffer 4 MiB, work 200 units/s (burst 400), "
        "render 1 MiB, session renders 4 MiB.\n\n"
        + S.table(
            [
                "attack (finding)",
                "transport",
                "quiet p50 / p99 ms",
                "attacked p50 / p99 / max ms",
                "p99 ratio",
                "aim p99 < 50 ms",
                "attacker",
                "server RSS",
            ],
            rows,
        )
    )
    S.report("hardening", "One client attacking: a bystander's round trip", body)


if __name__ == "__main__":
    main()
