"""Retained sessions: what a session of the demo editor costs the server while its page is
away, in bytes (the stored JSON, ``Session.size()``) and in memory, for 10,000 of them in
one process; against an idle attached view (bench/memory.py's figure) in the same run.

In-process, each figure in its own fresh Python process: N ``LiveConnection`` objects
share one ``SessionRegistry`` with a ``MemoryStore`` (the default bounds: 10,000
sessions, 256 MiB), and each is sent the frames a page sends: Hello, then the Join of the
public demo editor (the root's server-rendered HTML).

- baseline, attached: the N connections stay open and idle (bench/memory.py's case);
- retained, mounted: each connection then ends (``detach``): its session waits in the
  store, and the connection object is dropped;
- retained, after 2 events: the same, after the page typed a title and clicked once (the
  session then keeps the last two renders and two ids in its exactly-once record); 2,000
  of them (three frames each: the figures are per session).

Reported per session: the growth of the process's RSS (/proc/self/status) and of the
C heap in use (glibc's mallinfo2: memory the allocator handed out and did not get
back, which RSS overstates when freed memory is not returned), the store's estimate
(``Session.size()``, what the byte budget counts), and the stored form's length (JSON of
``Session.to_dict()``, what ``sqlite:///`` writes). A session whose exactly-once record
is full (its last 256 event ids) is measured apart, on a few sessions, with
tracemalloc: the bytes its record holds (released when it is dropped).

Aim: <= 20 KiB per retained session.
"""

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time

import _support as S
from memory import malloc_in_use, rss_bytes

SIZE = 10_000
QUICK_SIZE = 2_000
USED_SIZE = 2_000
FULL_RECORD_SESSIONS = 10
FULL_RECORD_FIRST_REF = 1000
# A worker still running after this is stopped (bench/run gives a benchmark 300 s).
WORKER_LIMIT_S = 270
AIM_KIB = 20.0
KINDS = ("attached", "retained", "used")
KIND_NAMES = {
    "attached": "baseline: attached, idle (mounted)",
    "retained": "retained, mounted",
    "used": "retained, after 2 events",
}


def _parts():
    from djreconnect_server.demo import TEMPLATES
    from djreconnect_server.demo.editor import EditorView
    from djreconnect_server.diff import parse_render
    from djreconnect_server.live import LiveConnection
    from djreconnect_server.sessions import SessionRegistry
    from djreconnect_server.settings import Settings
    from djreconnect_server.signing import MountSigner
    from djreconnect_server.stores import MemoryStore, StoreLimits
    from djreconnect_server.templating import Templates

    env = S.wheel_env()
    # No work budget: the figures are memory, and pacing would only make them slower.
    settings = Settings(
        "djreconnect-bench-secret-key",
        wheels_dir=env.get("DJRECONNECT_WHEELS") or None,
        max_work_per_second=10**9,
        max_work_burst=10**9,
    )
    templates = Templates(settings, [TEMPLATES])
    signer = MountSigner(settings.secret_key)
    registry = {EditorView.view_name: (EditorView, True)}
    page = EditorView()
    page.mount(None)
    root_html = parse_render(templates.render(page, {"dj_tokens": {}})).html
    limits = StoreLimits(settings.session_retention_s, settings.max_retained_sessions, settings.max_retained_bytes)
    sessions = SessionRegistry(MemoryStore(limits))

    def new():
        return LiveConnection(registry, templates, signer, settings, None, sessions)

    return new, sessions, root_html


HELLO = json.dumps({"t": "hello", "ref": 1})
VIEW_ID = "editor-1"


def _join(root_html):
    return json.dumps({"t": "join", "ref": 2, "view": VIEW_ID, "name": "editor", "token": "", "html": root_html})


def _event(ref, handler, params):
    return json.dumps({"t": "event", "ref": ref, "view": VIEW_ID, "handler": handler, "params": params})


TWO_EVENTS = (("validate_title", {"value": "A title typed before the page went away"}), ("increment", {"amount": "1"}))


async def _open(live, join, events=(), first_ref=3):
    await live.receive(HELLO)
    answer = await live.receive(join)
    if '"rendered"' not in answer[0]:
        raise RuntimeError("join refused: %s" % answer)
    for ref, (handler, params) in enumerate(events, start=first_ref):
        answer = await live.receive(_event(ref, handler, params))
        if '"reply"' not in answer[-1]:
            raise RuntimeError("event refused: %s" % answer)


def worker(n, kind):
    """One figure, in this (fresh) process; prints it as JSON."""
    new, sessions, root_html = _parts()
    join = _join(root_html)
    events = TWO_EVENTS if kind == "used" else ()

    async def run(count, keep):
        lives = []
        for _ in range(count):
            live = new()
            await _open(live, join, events)
            if kind == "attached":
                lives.append(live)
            else:
                await live.detach()
        keep.extend(lives)

    # Warm-up (template compilation, caches, the parser's first allocations), then forgotten.
    warm = []
    asyncio.run(run(20, warm))
    warm.clear()
    sessions.attached.clear()
    asyncio.run(sessions.store.close())
    gc.collect()

    rss0, heap0 = rss_bytes(), malloc_in_use()
    started = time.monotonic()
    lives = []
    asyncio.run(run(n, lives))
    gc.collect()
    seconds = time.monotonic() - started
    rss1, heap1 = rss_bytes(), malloc_in_use()
    store = sessions.store
    if kind == "attached":
        held = list(sessions.attached.values())
    else:
        held = [entry[0] for entry in store.retained.values()]
    sizes = [session.size() for session in held]
    stored = [len(json.dumps(session.to_dict(), separators=(",", ":"))) for session in held]
    result = {
        "n": n,
        "kind": kind,
        "held": len(held),
        "attached": len(sessions.attached),
        "retained": len(store),
        "evicted": store.evicted,
        "store_bytes": store.bytes,
        "rss0": rss0,
        "rss1": rss1,
        "heap": (heap1 - heap0) if heap0 is not None and heap1 is not None else None,
        "size": sum(sizes) / len(sizes) if sizes else None,
        "stored": sum(stored) / len(stored) if stored else None,
        "seconds": seconds,
    }
    print(json.dumps(result), flush=True)


def full_record_worker(n):
    """Sessions whose exactly-once record is full: the memory the record holds (what
    tracemalloc sees released when it is dropped), ``Session.size()`` and the stored
    JSON's length."""
    import tracemalloc

    from djreconnect import constants

    new, sessions, root_html = _parts()
    join = _join(root_html)
    limit = constants.DEFAULT_EVENT_RECORD_SIZE
    events = [("increment", {"amount": "1"})] * (limit + 8)

    async def run():
        for _ in range(n):
            live = new()
            # A page that has lived long enough to fill its record has sent a few hundred
            # frames: its ids are past the small ints Python shares.
            await _open(live, join, events, first_ref=FULL_RECORD_FIRST_REF)
            await live.detach()

    tracemalloc.start()
    asyncio.run(run())
    held = [entry[0] for entry in sessions.store.retained.values()]
    full = all(len(session.record.entries) == limit for session in held)
    sizes = [session.size() for session in held]
    stored = [len(json.dumps(session.to_dict(), separators=(",", ":"))) for session in held]
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for session in held:
        session.record = None
    gc.collect()
    record_bytes = (before - tracemalloc.get_traced_memory()[0]) / len(held)
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "n": len(held),
                "full": full,
                "entries": limit,
                "record": record_bytes,
                "size": sum(sizes) / len(sizes),
                "stored": sum(stored) / len(stored),
            }
        ),
        flush=True,
    )


def _run_workers(jobs):
    """Runs ``jobs`` ([args...]) as worker processes, two at a time; {tuple(args): result}."""
    results = {}
    pending = list(jobs)
    running = []
    while pending or running:
        while pending and len(running) < 2:
            args = pending.pop(0)
            process = subprocess.Popen(
                [S.PYTHON, __file__, "--worker", *args], cwd=S.BENCH, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            running.append((tuple(args), process, time.monotonic()))
        for entry in list(running):
            args, process, began = entry
            if process.poll() is None and time.monotonic() - began < WORKER_LIMIT_S:
                continue
            if process.poll() is None:
                process.kill()
            out, err = process.communicate()
            running.remove(entry)
            try:
                results[args] = json.loads(out.decode().strip().splitlines()[-1])
            except (ValueError, IndexError):
                results[args] = {"error": (err.decode(errors="replace") or "no output")[-500:]}
        time.sleep(0.1)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="%d sessions a row instead of %d" % (QUICK_SIZE, SIZE))
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker:
        if arguments.worker[0] == "full-record":
            full_record_worker(int(arguments.worker[1]))
        else:
            worker(int(arguments.worker[0]), arguments.worker[1])
        return 0

    started = time.monotonic()
    n = QUICK_SIZE if arguments.quick else SIZE
    # Sessions with events cost 3 frames each: fewer of them (the figures are per session).
    counts = {"attached": n, "retained": n, "used": min(n, USED_SIZE)}
    # Two run at a time, the longest first.
    jobs = [[str(counts[kind]), kind] for kind in ("attached", "retained", "used")]
    jobs.append(["full-record", str(FULL_RECORD_SESSIONS)])
    results = _run_workers(jobs)

    rows = []
    notes = []
    figures = {}
    for kind in KINDS:
        result = results.get((str(counts[kind]), kind), {"error": "no result"})
        if "error" in result:
            notes.append("%s failed: %s" % (KIND_NAMES[kind], result["error"]))
            continue
        held = result["held"]
        per_rss = (result["rss1"] - result["rss0"]) / held
        per_heap = result["heap"] / held if result["heap"] is not None else None
        figures[kind] = per_rss
        retained = kind != "attached"
        aim = retained and per_rss / 1024 <= AIM_KIB and result["size"] / 1024 <= AIM_KIB
        rows.append(
            [
                KIND_NAMES[kind],
                "{:,}".format(held),
                "%s -> %s MiB" % (S.fmt(result["rss0"] / 2**20, 0), S.fmt(result["rss1"] / 2**20, 0)),
                "**%s KiB**" % S.fmt(per_rss / 1024, 1),
                "%s KiB" % S.fmt(per_heap / 1024, 1) if per_heap is not None else "n/a",
                "%s KiB" % S.fmt(result["size"] / 1024, 1),
                "%s KiB" % S.fmt(result["stored"] / 1024, 1),
                "-" if not retained else "%.2f" % (per_rss / figures["attached"]) if "attached" in figures else "n/a",
                "%s s" % S.fmt(result["seconds"], 1),
                S.verdict(aim) if retained else "-",
            ]
        )
        if result["evicted"]:
            notes.append("%s: the store evicted %d sessions (its bounds)" % (KIND_NAMES[kind], result["evicted"]))
        if retained and (result["retained"] != counts[kind] or result["attached"]):
            notes.append(
                "%s: %d retained and %d still attached, of %d"
                % (KIND_NAMES[kind], result["retained"], result["attached"], counts[kind])
            )
    body = S.table(
        [
            "sessions",
            "count",
            "RSS before -> after",
            "RSS per session",
            "C heap in use per session",
            "Session.size() (the store's estimate)",
            "stored JSON (sqlite:///)",
            "ratio to attached (RSS)",
            "N sessions took",
            "aim <= 20 KiB",
        ],
        rows,
    )
    full = results.get(("full-record", str(FULL_RECORD_SESSIONS)), {"error": "no result"})
    if "error" in full:
        notes.append("full record: failed: %s" % full["error"])
    else:
        from djreconnect_server.sessions import RECORD_ENTRY_BYTES

        body += (
            "\n\nA session whose exactly-once record is full (%d sessions, %d events each: the record keeps the "
            "last %d ids): the record alone holds **%s** in memory (tracemalloc: released when it is dropped), "
            "%s an id, where Session.size() counts %d B an id (%s); Session.size() %s, stored JSON %s. "
            "Aim <= 20 KiB: %s.%s"
            % (
                full["n"],
                full["entries"] + 8,
                full["entries"],
                S.kib(full["record"]),
                "%s B" % S.fmt(full["record"] / full["entries"], 0),
                RECORD_ENTRY_BYTES,
                S.kib(RECORD_ENTRY_BYTES * full["entries"]),
                S.kib(full["size"]),
                S.kib(full["stored"]),
                S.verdict(full["record"] / 1024 <= AIM_KIB),
                "" if full["full"] else " (some records were not full)",
            )
        )
    used = results.get((str(counts["used"]), "used"), {})
    if "size" in used and used.get("size"):
        from djreconnect import constants

        fits = constants.DEFAULT_MAX_RETAINED_BYTES / used["size"]
        body += (
            "\n\nThe default bounds (%s sessions, %s MiB by Session.size()) hold %s sessions like the 'after 2 "
            "events' ones before the byte budget evicts."
            % (
                S.fmt(constants.DEFAULT_MAX_RETAINED_SESSIONS),
                S.fmt(constants.DEFAULT_MAX_RETAINED_BYTES // 2**20),
                S.fmt(int(min(fits, constants.DEFAULT_MAX_RETAINED_SESSIONS))),
            )
        )
    body += (
        "\n\nEach row from its own fresh process: Hello and the Join of the demo editor per connection (and the "
        "events), after 20 untimed ones; RSS and the C heap in use (glibc mallinfo2) measured before and after "
        "the N, after a garbage collection. A retained session's connection object is gone; its session (view "
        "object, last renders as HTML text, the record) waits in the memory store. %s. Total %.0f s."
        % (S.machine(), time.monotonic() - started)
    )
    if notes:
        body += "\n\n" + "\n".join("- " + note for note in notes)
    S.report("retention", "Retained sessions: bytes and memory per session (server)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
