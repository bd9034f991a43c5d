"""Server push at scale, in one process: one broadcast to 100 and to 1,000 mounted views
(each on its own LiveConnection, the demo editor), publish -> last view's patch ready,
p50 and p99 over repeated broadcasts; the server's cost per view against the cost of one
client event in the same run; and memory per subscribed idle view against an
unsubscribed one.

    .venv/bin/python bench/fanout.py [--quick]
"""

import argparse
import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(CHECKOUT / "browser"), str(CHECKOUT / "server")]

from djreconnect import protocol  # noqa: E402
from djreconnect_server.demo import create_app  # noqa: E402
from djreconnect_server.demo.editor import COMMENTS_TOPIC, EditorView  # noqa: E402


async def mount_views(live, count):
    connections = []
    for index in range(count):
        connection = live._live_connection(None)
        await connection.receive(protocol.encode(protocol.Hello(ref=1)))
        token = live.signer.sign(EditorView.view_name, {})
        join = protocol.Join(ref=2, view="v", name=EditorView.view_name, token=token)
        await connection.receive(protocol.encode(join))
        connections.append(connection)
    return connections


async def settle(live):
    while live.hub.pending:
        await asyncio.gather(*list(live.hub.pending))


async def fanout(live, connections, rounds):
    """(latencies in ms, server CPU ms per view) of ``rounds`` broadcasts to every view."""
    latencies = []
    cpu = 0.0
    for round_number in range(rounds):
        for connection in connections:
            connection.pushed.clear()
        message = {"comments": ["comment %d" % round_number]}
        started = time.perf_counter()
        cpu_started = time.process_time()
        live.broadcast(COMMENTS_TOPIC, message)
        await settle(live)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu += (time.process_time() - cpu_started) * 1000
        assert all(len(connection.pushed) == 1 for connection in connections), "every view gets one patch"
    return latencies, cpu / rounds / len(connections)


async def client_event_cost(connections, rounds):
    """Server CPU ms of one client event (a click: handler, render, diff, reply)."""
    connection = connections[0]
    started = time.process_time()
    for ref in range(rounds):
        event = protocol.Event(ref=1000 + ref, view="v", handler="increment", params={})
        await connection.receive(protocol.encode(event))
    return (time.process_time() - started) * 1000 / rounds


async def memory_per_view(subscribed, count):
    live = create_app().state.djreconnect
    if not subscribed:
        original = EditorView.subscribe
        EditorView.subscribe = lambda self, topic: None
    try:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        connections = await mount_views(live, count)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
    finally:
        if not subscribed:
            EditorView.subscribe = original
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del connections
    return size / count / 1024


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(quick):
    rounds = 10 if quick else 30
    rows = []
    for count in (100, 1000):
        live = create_app().state.djreconnect
        connections = await mount_views(live, count)
        await fanout(live, connections, 2)  # untimed
        latencies, per_view = await fanout(live, connections, rounds)
        event_cost = await client_event_cost(connections, rounds)
        rows.append((count, statistics.median(latencies), percentile(latencies, 0.99), per_view, event_cost))
        for connection in connections:
            await connection.detach()
    print("## Server push: one broadcast to N mounted views (in one process, the demo editor)\n")
    print(
        "| views | publish -> last patch ready, p50 | p99 | server CPU per view"
        " | baseline: one client event | ratio | aim <= 1x |"
    )
    print("|---|---|---|---|---|---|---|")
    for count, p50, p99, per_view, event_cost in rows:
        ratio = per_view / event_cost
        print(
            "| %d | %.1f ms | %.1f ms | %.3f ms | %.3f ms | %.2f | %s |"
            % (count, p50, p99, per_view, event_cost, ratio, "met" if ratio <= 1 else "**missed**")
        )
    count = 200 if quick else 1000
    subscribed = await memory_per_view(True, count)
    plain = await memory_per_view(False, count)
    print("\n## Memory per idle mounted view (tracemalloc, %d views)\n" % count)
    print("| view | KiB per view |")
    print("|---|---|")
    print("| baseline: not subscribed | %.2f |" % plain)
    print("| subscribed to one topic | %.2f (+%.2f) |" % (subscribed, subscribed - plain))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
