"""Herd on a deploy: 1,000 protocol-level clients over two demo processes sharing a Redis
store, behind nginx (round-robin); one process is restarted, and the reconnections of its
clients are measured.

Two scenarios, in the same run:
- deploy: SIGTERM (the process keeps its sessions in Redis and closes its connections
  with 1012 and the restart hint; pages come back within restart_window_ms, 2000 ms),
  then the process is started again;
- crash: SIGKILL, the process answers again ~5 s later (the section 3 backoff).

The clients are the runtime's core (djreconnect.client.Client, as in bench/herd.py) on real
WebSockets. Reported for the clients that dropped: reconnections per 100 ms window (the
busiest, as a share of all clients), the time until 99% have resumed (counted from the
moment the restarted process answered), and how many remounted instead (sessions lost).
Aim (deploy): busiest window <= 5% of the clients, 99% resumed <= 3 s after the process
answers again, no remount.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _support as S
import herd

sys.path.insert(0, str(S.CHECKOUT / "tests"))
from demo_server import free_port  # noqa: E402
from services import Nginx, RedisServer  # noqa: E402

CLIENTS = 1000
OBSERVE_S = 25.0  # after the restart begins, how long the clients are watched
CRASH_OUTAGE_S = 5.0


class Client(herd.RealClient):
    """A herd client that also records how each view came back (resume or remount)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.modes = []  # (time, mode)

    def run(self, todo):
        from djreconnect import effects as E

        for effect in todo:
            if type(effect) is E.RecoverView:
                self.modes.append((time.monotonic(), effect.mode))
        super().run(todo)


async def worker_main(args):
    from djreconnect.backoff import Backoff
    from djreconnect_server.diff import parse_render

    S.raise_fd_limit()
    loop = asyncio.get_running_loop()
    base = "http://127.0.0.1:%d" % args.port
    root_html = parse_render(S.http_get(base + "/").decode()).html
    url = "ws://127.0.0.1:%d/djreconnect/ws" % args.port
    clients = [Client(i, url, root_html, Backoff(), loop, args.seed) for i in range(args.clients)]
    started = time.monotonic()
    for client in clients:
        client.start()
        await asyncio.sleep(herd.STAGGER_S)
    while sum(1 for c in clients if c.mounts) < len(clients):
        if time.monotonic() - started > herd.SETUP_LIMIT_S:
            print("SETUP-FAILED %d" % sum(1 for c in clients if c.mounts), flush=True)
            return
        await asyncio.sleep(0.05)
    print("READY", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the restart begins
    await asyncio.sleep(OBSERVE_S)
    result = [{"drops": c.drops, "opens": c.opens, "modes": c.modes} for c in clients]
    with open(args.out, "w") as out:
        json.dump(result, out)
    print("DONE", flush=True)
    for c in clients:
        for key in list(c.timers):
            c._cancel_timer(key)
        c._close_transport()
    await asyncio.sleep(0.2)


def scenario(kind, env, tmp):
    redis = RedisServer().start()
    port = free_port()  # nginx's: the processes trust the host pages reach them under
    trusted = ("--trusted-host", "127.0.0.1:%d" % port)
    backends = [S.demo_server("--store", redis.url, *trusted, env=env).start() for _ in range(2)]
    proxy = Nginx([b.port for b in backends], tmp / kind, port=port).start()
    out = S.results_dir() / ("deploy-%s.json" % kind)
    worker = subprocess.Popen(
        [S.PYTHON, os.path.abspath(__file__), "--worker", "--port", str(proxy.port), "--out", str(out)],
        cwd=S.BENCH,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        line = herd.read_line(worker, time.monotonic() + herd.SETUP_LIMIT_S + 30)
        if line != "READY":
            raise RuntimeError("the clients did not all connect: %r" % (line,))
        time.sleep(1.0)
        worker.stdin.write(b"go\n")
        worker.stdin.flush()
        victim = backends[0]
        began = time.monotonic()
        if kind == "deploy":
            victim.process.terminate()
            victim.process.wait(timeout=30)
        else:
            victim.kill()
            time.sleep(max(0.0, CRASH_OUTAGE_S - 0.5))
        victim.stop()
        victim.start()
        ready = time.monotonic()
        line = herd.read_line(worker, time.monotonic() + OBSERVE_S + 30)
        if line != "DONE":
            raise RuntimeError("the clients did not finish: %r" % (line,))
        worker.wait(timeout=30)
        with open(out) as result:
            return figures(json.load(result), began, ready)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        proxy.stop()
        for backend in backends:
            backend.stop()
        redis.stop()


def figures(clients, began, ready):
    dropped = [c for c in clients if any(t >= began for t in c["drops"])]
    reopens, resumed_at, remounts, missing, waits = [], [], 0, 0, []
    for c in dropped:
        drop = min(t for t in c["drops"] if t >= began)
        opens = [t for t in c["opens"] if t > drop]
        if opens:
            reopens.append(opens[0])
        back = [(t, mode) for t, mode in c["modes"] if t > drop]
        if not back:
            missing += 1
            continue
        if back[0][1] != "resume":
            remounts += 1
        resumed_at.append(back[0][0])
        waits.append(back[0][0] - drop)
    windows = {}
    for t in reopens:
        windows[int((t - began) / herd.WINDOW_S)] = windows.get(int((t - began) / herd.WINDOW_S), 0) + 1
    resumed_at.sort()
    waits.sort()
    p99 = resumed_at[int(0.99 * (len(resumed_at) - 1))] - ready if resumed_at else None
    return {
        "clients": len(clients),
        "dropped": len(dropped),
        "busiest_window": max(windows.values()) if windows else 0,
        "busiest_share": (max(windows.values()) if windows else 0) / len(clients),
        "p99_back_after_ready_s": p99,
        "last_back_after_ready_s": (resumed_at[-1] - ready) if resumed_at else None,
        "drop_to_back_p50_s": waits[len(waits) // 2] if waits else None,
        "drop_to_back_p99_s": waits[int(0.99 * (len(waits) - 1))] if waits else None,
        "remounts": remounts,
        "not_back": missing,
        "outage_s": ready - began,
    }


def main():
    import tempfile

    S.raise_fd_limit()
    env = S.wheel_env()
    rows = []
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("deploy", "crash"):
            f = results[kind] = scenario(kind, env, Path(tmp))
            rows.append(
                [
                    kind,
                    "%d of %d" % (f["dropped"], f["clients"]),
                    "%.2f s" % f["outage_s"],
                    "%d (%.1f%% of N)" % (f["busiest_window"], 100 * f["busiest_share"]),
                    S.fmt(f["p99_back_after_ready_s"], 2) + " s",
                    "%s / %s s" % (S.fmt(f["drop_to_back_p50_s"], 2), S.fmt(f["drop_to_back_p99_s"], 2)),
                    str(f["remounts"]),
                    str(f["not_back"]),
                ]
            )
    body = S.table(
        [
            "restart",
            "dropped",
            "process back after",
            "busiest 100 ms",
            "99% back after it answers",
            "remounts",
            "not back",
        ],
        rows,
    )
    deploy = results["deploy"]
    ok = deploy["busiest_share"] <= 0.05 and (deploy["p99_back_after_ready_s"] or 99) <= 3 and not deploy["remounts"]
    body += "\n\nAim (deploy): busiest window <= 5%% of N, 99%% back <= 3 s, no remount: %s\n" % S.verdict(ok)
    S.report("deploy", "Herd on a deploy: 1,000 clients over two processes on Redis", body)
    print(body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--port", type=int)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--out")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker_main(args))
    else:
        main()
