"""Stores: a keystroke's round trip with the session stores ``sqlite:///`` and
``redis://`` against ``memory``.

Three real ``djreconnect demo`` processes, one started with ``--store memory`` (the
baseline), one with ``--store sqlite:///PATH`` (a fresh file under bench/results), one
with ``--store redis://...`` (a real ``redis-server`` on a free port, no persistence, as
the tests start it). A protocol-level WebSocket client (the ``websockets`` package, one connection to each)
sends what the runtime sends: Hello, the Join of the editor, then keystrokes: the
``dj-input="preview"`` event of the body textarea, its value one letter longer each
time. A keystroke is timed from its send to its Reply (the server applied it, rendered,
diffed, and, with SQLite or Redis, wrote the session before answering). The servers'
keystrokes alternate (their order is reversed every other round), one at a time, 20 ms apart;
20 untimed ones warm each up first. Also reported: the servers' CPU per keystroke.

Where the time goes, in-process (no network) on the same keystrokes: a keystroke's
``LiveConnection.receive`` with each store, and, with SQLite, ``SQLiteStore.save`` within
it and the stored form's encoding (``Session.to_dict`` + JSON).

Aim: p50 ratio sqlite/memory <= 1.3, redis/memory <= 1.5.
"""

import argparse
import asyncio
import json
import sys
import time

import _support as S

sys.path.insert(0, str(S.CHECKOUT / "tests"))
from services import RedisServer  # noqa: E402

KEYSTROKES = 300
QUICK_KEYSTROKES = 100
WARMUP = 20
GAP_S = 0.020
AIM_RATIO = {"sqlite": 1.3, "redis": 1.5}
VIEW_ID = "editor-1"
LETTERS = "abcdefghijklmnopqrstuvwxyz "
SLOW_SAVE_MS = 20


class Client:
    """One protocol-level connection to a demo server: Hello, Join, then events."""

    def __init__(self, name, server):
        self.name = name
        self.server = server
        self.socket = None
        self.ref = 0
        self.text = ""
        self.samples = []

    async def open(self):
        import websockets

        self.socket = await websockets.connect(
            "ws://127.0.0.1:%d/djreconnect/ws" % self.server.port, max_size=None, proxy=None
        )
        welcome = await self._ask({"t": "hello"}, "welcome")
        if not welcome.get("session"):
            raise RuntimeError("%s: no session in %r" % (self.name, welcome))
        await self._ask({"t": "join", "view": VIEW_ID, "name": "editor", "token": "", "html": ""}, "rendered")

    async def _ask(self, message, answer_type):
        self.ref += 1
        message = dict(message, ref=self.ref)
        await self.socket.send(json.dumps(message))
        while True:
            answer = json.loads(await asyncio.wait_for(self.socket.recv(), 10))
            if answer.get("t") == "error":
                raise RuntimeError("%s: %r answered %r" % (self.name, message.get("t"), answer))
            if answer.get("t") == answer_type and answer.get("ref") == self.ref:
                return answer

    async def keystroke(self, timed):
        self.text += LETTERS[len(self.text) % len(LETTERS)]
        event = {"t": "event", "view": VIEW_ID, "handler": "preview", "params": {"value": self.text}}
        began = time.perf_counter()
        await self._ask(event, "reply")
        elapsed = (time.perf_counter() - began) * 1000
        if timed:
            self.samples.append(elapsed)

    async def close(self):
        if self.socket is not None:
            await self.socket.close()


async def type_into(servers, keystrokes):
    clients = [Client(name, server) for name, server in servers]
    try:
        for client in clients:
            await client.open()
        for index in range(WARMUP + keystrokes):
            order = clients if index % 2 == 0 else clients[::-1]
            for client in order:
                await client.keystroke(index >= WARMUP)
            await asyncio.sleep(GAP_S)
        return {client.name: client.samples for client in clients}, clients[0].text
    finally:
        for client in clients:
            await client.close()


def in_process(text, path):
    """The same keystrokes in-process (no network): ``LiveConnection.receive`` with a memory
    store and with an SQLite store, alternating; for SQLite, the time of each
    ``SQLiteStore.save`` within it and of the stored form's encoding
    (``Session.to_dict`` + JSON, timed apart after the keystroke). Medians and maxima, ms."""
    from djreconnect_server.demo import TEMPLATES
    from djreconnect_server.demo.editor import EditorView
    from djreconnect_server.live import LiveConnection
    from djreconnect_server.sessions import SessionRegistry
    from djreconnect_server.settings import Settings
    from djreconnect_server.signing import MountSigner
    from djreconnect_server.stores import MemoryStore, SQLiteStore
    from djreconnect_server.templating import Templates

    env = S.wheel_env()
    settings = Settings(
        "djreconnect-bench-secret-key",
        wheels_dir=env.get("DJRECONNECT_WHEELS") or None,
        max_work_per_second=10**9,  # the figures are the work, not the pacing
        max_work_burst=10**9,
    )
    templates = Templates(settings, [TEMPLATES])
    registry = {EditorView.view_name: (EditorView, True)}

    def build_view(name, state):
        view = EditorView()
        view.load_state(state)
        return view

    sqlite = SQLiteStore(str(path), build_view)
    saves = []
    save = sqlite.save

    async def timed_save(session):
        began = time.perf_counter()
        await save(session)
        saves.append((time.perf_counter() - began) * 1000)

    sqlite.save = timed_save
    stores = {"memory": MemoryStore(), "sqlite": sqlite}
    lives = {
        name: LiveConnection(
            registry, templates, MountSigner(settings.secret_key), settings, None, SessionRegistry(store)
        )
        for name, store in stores.items()
    }

    async def run():
        times = {name: [] for name in lives}
        encodes = []
        for live in lives.values():
            await live.receive(json.dumps({"t": "hello", "ref": 1}))
            await live.receive(json.dumps({"t": "join", "ref": 2, "view": VIEW_ID, "name": "editor", "html": ""}))
        for index in range(len(text)):
            event = json.dumps(
                {
                    "t": "event",
                    "ref": 3 + index,
                    "view": VIEW_ID,
                    "handler": "preview",
                    "params": {"value": text[: index + 1]},
                }
            )
            for name, live in lives.items() if index % 2 == 0 else reversed(lives.items()):
                began = time.perf_counter()
                await live.receive(event)
                times[name].append((time.perf_counter() - began) * 1000)
            session = lives["sqlite"].session
            began = time.perf_counter()
            data = json.dumps(session.to_dict(), separators=(",", ":"))
            encodes.append((time.perf_counter() - began) * 1000)
        await sqlite.close()
        keep = slice(WARMUP, None)
        figures = {name: (S.median(values[keep]), max(values[keep])) for name, values in times.items()}
        figures["save"] = (S.median(saves[keep]), max(saves[keep]))
        figures["slow_saves"] = sum(1 for value in saves[keep] if value > SLOW_SAVE_MS)
        figures["encode"] = (S.median(encodes[keep]), max(encodes[keep]))
        figures["bytes"] = len(data)
        figures["records"] = len(session.record.entries)
        return figures

    return asyncio.run(run())


def _median_max(figure):
    return "%s (%s)" % (S.fmt(figure[0], 2), S.fmt(figure[1], 1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="%d keystrokes each" % QUICK_KEYSTROKES)
    arguments = parser.parse_args(argv)
    keystrokes = QUICK_KEYSTROKES if arguments.quick else KEYSTROKES

    started = time.monotonic()
    results = S.results_dir()
    database = results / "stores-bench.db"
    for suffix in ("", "-wal", "-shm"):
        (results / ("stores-bench.db" + suffix)).unlink(missing_ok=True)
    env = S.wheel_env()
    redis_server = RedisServer().start()
    servers = [
        ("memory", S.demo_server("--store", "memory", env=env)),
        ("sqlite", S.demo_server("--store", "sqlite:///%s" % database, env=env)),
        ("redis", S.demo_server("--store", redis_server.url, env=env)),
    ]
    cpu = {}
    try:
        for _, server in servers:
            server.start()
        before = {name: S.cpu_seconds(server.pid) for name, server in servers}
        samples, text = asyncio.run(type_into(servers, keystrokes))
        for name, server in servers:
            cpu[name] = (S.cpu_seconds(server.pid) - before[name]) / (WARMUP + keystrokes) * 1000
    finally:
        errors = []
        for name, server in servers:
            server.stop()
            errors.extend("%s server logged: %s (%d)" % ((name,) + item) for item in server.log_errors().items())
        redis_server.stop()
    saved = database.stat().st_size if database.exists() else 0
    parts = in_process(text, results / "stores-parts.db")
    for suffix in ("", "-wal", "-shm"):
        (results / ("stores-parts.db" + suffix)).unlink(missing_ok=True)

    p50 = {name: S.percentile(values, 0.5) for name, values in samples.items()}
    labels = {
        "memory": "baseline: memory",
        "sqlite": "sqlite:/// (one process, persistent)",
        "redis": "redis:// (several processes)",
    }
    rows = []
    for name, _ in servers:
        values = samples[name]
        ratio = p50[name] / p50["memory"]
        rows.append(
            [
                labels[name],
                len(values),
                "**%s ms**" % S.fmt(p50[name], 2),
                "%s ms" % S.fmt(S.percentile(values, 0.95), 2),
                "%s ms" % S.fmt(max(values), 1),
                "%s ms" % S.fmt(cpu[name], 2),
                "**%.2f**" % ratio if name != "memory" else "-",
                ("<= %s: %s" % (AIM_RATIO[name], S.verdict(ratio <= AIM_RATIO[name]))) if name != "memory" else "-",
            ]
        )
    body = S.table(
        [
            "store",
            "keystrokes",
            "p50 keystroke -> reply",
            "p95",
            "max",
            "server CPU per keystroke",
            "p50 ratio to memory",
            "aim",
        ],
        rows,
    )
    body += (
        "\n\nWhere the time goes, in-process (no network; the same %d keystrokes, alternating, medians with the "
        "maxima in brackets): LiveConnection.receive of a keystroke %s ms with memory, %s ms with SQLite "
        "(ratio %.2f); of which SQLiteStore.save %s ms (%d saves over %d ms), and encoding the stored form "
        "(Session.to_dict + JSON, %s with %d ids in its record) %s ms of that; SQLite's own write is the rest of "
        "the save. The database file after the run: %s."
        % (
            len(text),
            _median_max(parts["memory"]),
            _median_max(parts["sqlite"]),
            parts["sqlite"][0] / parts["memory"][0],
            _median_max(parts["save"]),
            parts["slow_saves"],
            SLOW_SAVE_MS,
            S.kib(parts["bytes"]),
            parts["records"],
            _median_max(parts["encode"]),
            S.kib(saved),
        )
    )
    body += (
        "\n\nThe servers run side by side; one client connection to each, the keystrokes alternating, one in "
        "flight at a time, %d ms apart, after %d untimed; timed with perf_counter from the send to the Reply. "
        "SQLite in WAL mode with synchronous=NORMAL (the store's settings): a save appends to the log without "
        "waiting for the disk, except the save that brings the log to 1,000 pages: it runs a checkpoint (the log "
        "written back to the database, both synced), on the event loop. %s. Total %.0f s."
        % (GAP_S * 1000, WARMUP, S.machine(), time.monotonic() - started)
    )
    if errors:
        body += "\n\n" + "\n".join("- " + error for error in errors[:5])
    S.report("stores", "Stores: keystroke round trip, sqlite:/// and redis:// against memory", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
