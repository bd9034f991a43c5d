"""Memory: what one connected, idle view costs the server, for 1,000 and 10,000 views.

In-process, like tests/server/test_live.py: N LiveConnection objects (the demo's
registry, templates and settings), each sent one join frame for the public demo
editor (the frame a page sends: the root's server-rendered HTML, so the mount's ops
are empty), then kept idle. Each measurement runs in a fresh Python process:

- allocated: tracemalloc's traced memory, before and after (tracemalloc on); it
  includes what selectolax's lexbor parser allocates;
- resident: the process's RSS (/proc/self/status VmRSS), tracemalloc off;
- what ViewSession.last (the last render, kept between events) holds: the memory
  released when it is dropped.

Baseline: the same N LiveConnections before any join (empty connections). Reported
in KiB per view (the joins' increase / N) and per empty connection. For comparison,
in the same processes: ViewSession.last holding a selectolax parse tree of the last
render (the design before commit c017376), and the cost of the current design (one
more parse of the last render per event).
Aim: <= 50 KiB per view.
"""

import argparse
import asyncio
import ctypes
import gc
import json
import subprocess
import sys
import time

import _support as S

SIZES = (1000, 10_000)
AIM_KIB = 50.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_in_use():
    """Bytes glibc's malloc has handed out and not got back (None if not glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def worker(n, mode):
    import tracemalloc

    from djreconnect_server.demo import TEMPLATES
    from djreconnect_server.demo.editor import EditorView
    from djreconnect_server.diff import parse_render
    from djreconnect_server.live import LiveConnection
    from djreconnect_server.settings import Settings
    from djreconnect_server.signing import MountSigner
    from djreconnect_server.templating import Templates

    env = S.wheel_env()
    settings = Settings("djreconnect-bench-secret-key", wheels_dir=env.get("DJRECONNECT_WHEELS") or None)
    templates = Templates(settings, [TEMPLATES])
    signer = MountSigner(settings.secret_key)
    registry = {EditorView.view_name: (EditorView, True)}
    page = EditorView()
    page.mount(None)
    root_html = parse_render(templates.render(page, {"dj_tokens": {}})).html
    frame = json.dumps({"t": "join", "ref": 1, "view": "editor-1", "name": "editor", "token": "", "html": root_html})

    def new():
        return LiveConnection(registry, templates, signer, settings, None)

    async def join_all(lives):
        for live in lives:
            answer = await live.receive(frame)
            if '"rendered"' not in answer[0]:
                raise RuntimeError("join refused: %s" % answer)

    # Warm-up: template compilation, handler caches, the parser's first allocations.
    asyncio.run(join_all([new() for _ in range(20)]))
    gc.collect()

    if mode == "py":
        tracemalloc.start()
        probe = lambda: tracemalloc.get_traced_memory()[0]  # noqa: E731
    else:
        probe = rss_bytes
    heap0 = malloc_in_use()
    start = time.monotonic()
    gc.collect()
    m0 = probe()
    lives = [new() for _ in range(n)]
    gc.collect()
    m1 = probe()
    asyncio.run(join_all(lives))
    gc.collect()
    m2 = probe()
    heap2 = malloc_in_use()
    joined = time.monotonic() - start
    # What ViewSession.last holds: drop it and measure what is released.
    sessions = [session for live in lives for session in live.sessions.values()]
    held_kind = type(sessions[0].last).__name__
    # Every view rendered the same page: one copy of its HTML rebuilds the trees below.
    text = sessions[0].last if isinstance(sessions[0].last, str) else sessions[0].last.html
    text = "".join(list(text))  # a copy of its own, not one of the views' objects
    measure = probe if mode == "py" else malloc_in_use
    before = measure()
    for session in sessions:
        session.last = None
    gc.collect()
    after = measure()
    held = (before - after) / n if before is not None and after is not None else None
    # For comparison: a parse tree per view instead (what ViewSession.last held before
    # commit c017376), measured the same way.
    rss_before = rss_bytes()
    for session in sessions:
        session.last = parse_render(text)
    gc.collect()
    tree = (probe() - after) / n if mode == "py" else (rss_bytes() - rss_before) / n
    reparse_ms = None
    if mode == "py":
        tracemalloc.stop()
        page_html = templates.render(page)
        samples = []
        for _ in range(200):
            began = time.perf_counter()
            parse_render(page_html)
            samples.append((time.perf_counter() - began) * 1000)
        reparse_ms = sorted(samples)[len(samples) // 2]
    result = {
        "n": n,
        "mode": mode,
        "empty": (m1 - m0) / n,
        "view": (m2 - m1) / n,
        "held": held,
        "held_kind": held_kind,
        "tree": tree,
        "c_heap": (heap2 - heap0) / n if heap2 is not None and heap0 is not None else None,
        "reparse_ms": reparse_ms,
        "seconds": joined,
        "sessions": sum(len(live.sessions) for live in lives),
        "root_bytes": len(root_html.encode()),
    }
    print(json.dumps(result), flush=True)


def main():
    started = time.monotonic()
    jobs = [(n, mode) for n in SIZES for mode in ("py", "rss")]
    results = {}
    # Two at a time (one per core): memory figures do not depend on speed.
    running = []
    pending = list(jobs)
    while pending or running:
        while pending and len(running) < 2:
            n, mode = pending.pop(0)
            process = subprocess.Popen(
                [S.PYTHON, __file__, "--worker", str(n), mode],
                cwd=S.BENCH,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            running.append(((n, mode), process, time.monotonic()))
        for entry in list(running):
            key, process, began = entry
            if process.poll() is None and time.monotonic() - began < 240:
                continue
            if process.poll() is None:
                process.kill()
            out, err = process.communicate()
            running.remove(entry)
            try:
                results[key] = json.loads(out.decode().strip().splitlines()[-1])
            except (ValueError, IndexError):
                results[key] = {"error": (err.decode(errors="replace") or "no output")[-500:]}
        time.sleep(0.1)

    rows = []
    notes = []
    trees = []
    kind = "?"
    for n in SIZES:
        py, rss = results.get((n, "py"), {}), results.get((n, "rss"), {})
        if "error" in py or "error" in rss:
            notes.append("N=%d failed: %s" % (n, py.get("error") or rss.get("error")))
            continue
        kind = py["held_kind"]
        per_view = rss["view"] / 1024
        rows.append(
            [
                "{:,}".format(n),
                "%d" % rss["sessions"],
                "**%s KiB**" % S.fmt(per_view, 1),
                "%s KiB" % S.fmt(py["view"] / 1024, 1),
                "%s KiB" % S.fmt(py["held"] / 1024, 1) if py.get("held") is not None else "n/a",
                "%s KiB / %s KiB" % (S.fmt(rss["empty"] / 1024, 2), S.fmt(py["empty"] / 1024, 2)),
                "%.0f" % (rss["view"] / rss["empty"]) if rss["empty"] > 0 else "n/a",
                "%s s" % S.fmt(rss["seconds"], 1),
                S.verdict(per_view <= AIM_KIB and py["view"] / 1024 <= AIM_KIB),
            ]
        )
        trees.append(
            [
                "{:,}".format(n),
                "%s KiB" % S.fmt(rss["tree"] / 1024, 1),
                "%s KiB" % S.fmt(py["tree"] / 1024, 1),
                "%s ms" % S.fmt(py["reparse_ms"], 3),
            ]
        )
    body = S.table(
        [
            "views",
            "mounted",
            "resident per view (RSS)",
            "allocated per view (tracemalloc)",
            "of which: ViewSession.last (%s)" % ("the render's HTML text" if kind == "str" else "a " + kind),
            "baseline: empty LiveConnection (RSS / allocated)",
            "ratio view/empty (RSS)",
            "N joins took",
            "aim <= 50 KiB",
        ],
        rows,
    )
    body += (
        "\n\nFor comparison, in the same processes: ViewSession.last holding a parse tree of the last render "
        "(selectolax/lexbor; what it held before commit c017376), and what the current design pays instead, "
        "one more parse of the last render per event:\n\n"
        + S.table(
            [
                "views",
                "parse tree per view: resident (RSS)",
                "allocated (tracemalloc)",
                "one more parse per event (median)",
            ],
            trees,
        )
    )
    any_result = next((r for r in results.values() if "root_bytes" in r), None)
    body += (
        "\n\nEach view: one LiveConnection with the demo editor mounted (LiveConnection.receive of a join frame whose "
        "html is the editor's root as the server renders it: %s B), then idle. 'Allocated' counts every byte "
        "handed out, lexbor's parse trees included (selectolax gives lexbor Python's raw allocator); 'resident' is "
        "what the process holds in RAM (a lexbor document allocates ~1 MiB, most of it never touched). Each figure "
        "from its own fresh process; %s. Total %.0f s."
        % (S.fmt(any_result["root_bytes"]) if any_result else "?", S.machine(), time.monotonic() - started)
    )
    if notes:
        body += "\n\n" + "\n".join("- " + note for note in notes)
    S.report("memory", "Memory per connected idle view (server)", body)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=2, metavar=("N", "MODE"))
    arguments = parser.parse_args()
    if arguments.worker:
        worker(int(arguments.worker[0]), arguments.worker[1])
        sys.exit(0)
    sys.exit(main())
