"""Several processes on Redis: a broadcast from one process to pages on another, against
the same broadcast within one process; and the memory a process spends per idle
connection and per retained session.

Broadcast: protocol-level WebSocket clients (Hello, Join of the demo editor, which
subscribes to the comments topic). With Redis, two demo processes share a real
``redis-server``: a publisher page on the first adds a comment (the ``add_comment`` event,
which broadcasts), N pages on the second wait for it. Baseline, in the same run: one demo
process with ``memory``, publisher and pages on it. Timed per page and per broadcast:
the publisher's send -> the page has the pushed patch that shows the comment (the
server applied the push, rendered, diffed, and sent it). p50 and p99 over every page and
broadcast, and the ratio of the p50s.

Memory (RSS of the server process, /proc): N idle pages (Hello + Join, nothing else) on
one process, RSS growth per page; then they close (their sessions are retained): with
``memory`` the process keeps them (RSS growth per retained session, counted from before
the pages opened, less what the open pages used... measured as RSS after close minus
RSS before open), with Redis the process keeps none and Redis holds them (Redis's
``used_memory`` growth per retained session). Per GiB: 1 GiB divided by those.

    .venv/bin/python bench/crossprocess.py [--quick]
"""

import argparse
import asyncio
import json
import sys
import time

import _support as S

sys.path.insert(0, str(S.CHECKOUT / "tests"))
from services import RedisServer  # noqa: E402

VIEW_ID = "editor-1"
PAGES, QUICK_PAGES = 50, 20
ROUNDS, QUICK_ROUNDS = 20, 8
GAP_S = 0.2
IDLE, QUICK_IDLE = 1000, 300
GIB = 1 << 30


class Page:
    """One page's connection: Hello, Join, then it records when pushed patches arrive."""

    def __init__(self, server):
        self.server = server
        self.socket = None
        self.ref = 0
        self.seen = {}  # comment text -> perf_counter when a patch showing it arrived
        self.reader = None
        self.waiting = None

    async def open(self, read=True):
        import websockets

        self.socket = await websockets.connect(
            "ws://127.0.0.1:%d/djreconnect/ws" % self.server.port, max_size=None, proxy=None
        )
        await self._ask({"t": "hello"}, "welcome")
        await self._ask({"t": "join", "view": VIEW_ID, "name": "editor", "token": "", "html": ""}, "rendered")
        if read:
            self.reader = asyncio.ensure_future(self._read())
        return self

    async def _ask(self, message, answer_type):
        self.ref += 1
        await self.socket.send(json.dumps(dict(message, ref=self.ref)))
        while True:
            answer = json.loads(await asyncio.wait_for(self.socket.recv(), 20))
            if answer.get("t") == "error":
                raise RuntimeError("%r answered %r" % (message.get("t"), answer))
            if answer.get("t") == answer_type and answer.get("ref") == self.ref:
                return answer

    async def _read(self):
        async for text in self.socket:
            now = time.perf_counter()
            frame = json.loads(text)
            if frame.get("t") == "reply" and frame.get("ref") is None:
                ops = json.dumps(frame.get("ops"))
                for comment in list(self.expected):
                    if comment in ops:
                        self.seen.setdefault(comment, now)

    expected = set()

    async def send_comment(self, text):
        self.ref += 1
        event = {"t": "event", "ref": self.ref, "view": VIEW_ID, "handler": "add_comment", "params": {"comment": text}}
        await self.socket.send(json.dumps(event))

    async def close(self):
        if self.reader is not None:
            self.reader.cancel()
        if self.socket is not None:
            await self.socket.close()


async def broadcasts(publisher_server, page_server, pages, rounds, tag):
    """Latencies (ms) of every page for every broadcast, publisher on one server, pages on
    the other (or the same)."""
    publisher = await Page(publisher_server).open(read=False)
    readers = [await Page(page_server).open() for _ in range(pages)]
    Page.expected = set()
    samples, last = [], []
    try:
        for number in range(rounds + 2):
            text = "%s comment %d" % (tag, number)
            Page.expected.add(text)
            started = time.perf_counter()
            await publisher.send_comment(text)
            deadline = time.monotonic() + 10
            while not all(text in page.seen for page in readers):
                if time.monotonic() > deadline:
                    raise RuntimeError("%d pages never got %r" % (sum(text not in p.seen for p in readers), text))
                await asyncio.sleep(0.002)
            if number >= 2:  # two untimed first
                times = [(page.seen[text] - started) * 1000 for page in readers]
                samples.extend(times)
                last.append(max(times))
            await asyncio.sleep(GAP_S)
    finally:
        for page in [publisher] + readers:
            await page.close()
    return samples, last


def rss(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def idle_memory(server, count, redis_client=None):
    """(RSS growth per idle page, RSS growth per retained session, Redis growth per
    retained session or None), bytes."""
    for _ in range(20):  # warm: the first connections allocate the process's pools
        page = await Page(server).open(read=False)
        await page.close()
    await asyncio.sleep(1)
    before = rss(server.pid)
    redis_before = (await redis_client.info("memory"))["used_memory"] if redis_client else 0
    pages = []
    for _ in range(count):
        pages.append(await Page(server).open(read=False))
    await asyncio.sleep(1)
    opened = rss(server.pid)
    for page in pages:
        await page.close()
    await asyncio.sleep(2)  # detached: sessions retained (here or in Redis)
    closed = rss(server.pid)
    redis_after = (await redis_client.info("memory"))["used_memory"] if redis_client else 0
    per_redis = (redis_after - redis_before) / count if redis_client else None
    return (opened - before) / count, (closed - before) / count, per_redis


def per_gib(size):
    return "-" if not size or size <= 0 else "{:,}".format(int(GIB / size))


async def measure(quick):
    import redis.asyncio

    pages = QUICK_PAGES if quick else PAGES
    rounds = QUICK_ROUNDS if quick else ROUNDS
    idle = QUICK_IDLE if quick else IDLE
    env = S.wheel_env()
    redis_server = RedisServer().start()
    servers = []
    try:
        local = S.demo_server("--store", "memory", env=env).start()
        first = S.demo_server("--store", redis_server.url, env=env).start()
        second = S.demo_server("--store", redis_server.url, env=env).start()
        servers = [local, first, second]
        # Alternate the two setups, half the rounds each time, so load drifts hit both.
        results = {"memory": ([], []), "redis": ([], [])}
        for half in range(2):
            for name, (publisher, target) in (("memory", (local, local)), ("redis", (first, second)))[:: 1 - 2 * half]:
                samples, last = await broadcasts(publisher, target, pages, rounds // 2, "%s%d" % (name, half))
                results[name][0].extend(samples)
                results[name][1].extend(last)
        for server in servers:
            server.stop()
        memory_server = S.demo_server("--store", "memory", env=env).start()
        redis_store_server = S.demo_server("--store", redis_server.url, env=env).start()
        servers = [memory_server, redis_store_server]
        client = redis.asyncio.Redis.from_url(redis_server.url)
        memory_figures = await idle_memory(memory_server, idle)
        redis_figures = await idle_memory(redis_store_server, idle, client)
        await client.aclose()
    finally:
        for server in servers:
            server.stop()
        redis_server.stop()
    return pages, rounds, idle, results, memory_figures, redis_figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pages, broadcasts and idle connections")
    arguments = parser.parse_args(argv)
    started = time.monotonic()
    pages, rounds, idle, results, memory_figures, redis_figures = asyncio.run(measure(arguments.quick))
    p50 = {name: S.percentile(samples, 0.5) for name, (samples, _) in results.items()}
    rows = []
    for name, label in (("memory", "baseline: one process, memory"), ("redis", "two processes on Redis")):
        samples, last = results[name]
        rows.append(
            [
                label,
                "%d x %d" % (len(last), pages),
                "**%s ms**" % S.fmt(p50[name], 1),
                "%s ms" % S.fmt(S.percentile(samples, 0.99), 1),
                "%s ms" % S.fmt(S.median(last), 1),
                "**%.2f**" % (p50[name] / p50["memory"]) if name == "redis" else "-",
            ]
        )
    body = S.table(
        ["setup", "broadcasts x pages", "publish -> page patched, p50", "p99", "last page patched, p50", "p50 ratio"],
        rows,
    )
    body += "\n\n" + S.table(
        [
            "store",
            "RSS per idle page (connection + mounted view)",
            "idle pages per GiB",
            "per retained session",
            "retained sessions per GiB",
        ],
        [
            [
                "memory",
                S.kib(memory_figures[0]),
                per_gib(memory_figures[0]),
                "%s of the process's RSS" % S.kib(memory_figures[1]),
                per_gib(memory_figures[1]),
            ],
            [
                "redis://",
                S.kib(redis_figures[0]),
                per_gib(redis_figures[0]),
                "%s of the process's RSS; %s of Redis's used_memory"
                % (S.kib(redis_figures[1]), S.kib(redis_figures[2])),
                "%s in Redis" % per_gib(redis_figures[2]),
            ],
        ],
    )
    body += (
        "\n\nBroadcasts: the demo's add_comment event sent by a publisher page, %d pages waiting, %d ms apart, two "
        "untimed first; the two setups alternate in halves. Memory: %d idle pages (Hello + Join of the demo editor "
        "over WebSocket) opened on one process after 20 warm-up ones, RSS from /proc before, with them open, and 2 s "
        "after they closed (the sessions retained); a process's RSS does not shrink when memory is freed, so "
        "'per retained session' with Redis is what the process did not give back, not what it keeps. "
        "%s. Total %.0f s." % (pages, GAP_S * 1000, idle, S.machine(), time.monotonic() - started)
    )
    S.report("crossprocess", "Several processes: cross-process broadcast, memory per idle page and session", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
