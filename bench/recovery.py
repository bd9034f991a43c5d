"""Recovery: socket open -> page equals server state, resume against remount, for 10, 100
and 1,000 changed fields.

A view (bench/apps.py ``form``, served by the real backend under uvicorn in a
subprocess) renders N text inputs, each ``dj-change="set_field" dj-value-index="i"``,
and ``<span id="synced">`` counting the fields the server holds a value for. In a real
Chromium, each run is a network blip: the page's context goes offline
(``context.set_offline``), every field gets a new value while the page is away, the
context goes online again after 200 ms, and the runtime reconnects by itself (the
``online`` event). Timed in-page from the new WebSocket's ``open`` event until a
MutationObserver sees #synced equal N (every changed field has reached the server and
its reply is applied). The page's fields are then checked against the server's render.

- resume (the product): the server keeps the session (default retention); the view is
  picked up where it was and form recovery sends the fields that differ from the
  server's last render.
- baseline, remount + recovery: the same page, fields and blip against a server that
  keeps no session (``session_retention_s=0``): the page's Hello finds no session, the
  view is mounted afresh and form recovery sends the fields that differ from the fresh
  render.

Before each run the server's values are emptied (a ``reset`` click), so both start from
the same server state, the one a fresh page has. Each run's mode is checked (the
runtime's ``djreconnect:mounted`` event says "resume" or "remount"). The two servers run
side by side, one page on each, and their runs alternate. Where the time goes is read
from the frames: when each arrives and how long the runtime takes to handle it. The
servers run with the work budget lifted (``--work-budget``): a timed run is on a new
connection, whose budget is full either way; the lift only spares the reset after a
1,000-field batch its wait.

Aims: resume at most as slow as remount, and <= 20 ms at 100 fields.

In-process (no network, no browser), the server's share of each: Hello + Join for a
resumed session against a remount (mount, render, patch from the page's HTML), then the
recovery batch; and the batch the runtime sends against N separate events.
"""

import argparse
import asyncio
import json
import sys
import time

import _support as S
from playwright.sync_api import sync_playwright

SIZES = (10, 100, 1000)
REPEATS = {10: 7, 100: 7, 1000: 5}
WARMUP = 1
OUTAGE_MS = 200
BIG_BURST = 5000
AIM_MS = 20.0
AIM_SIZE = 100
MODES = ("resume", "remount")
SERVER_REPEATS = 3
# bench/run gives a benchmark 300 s: on a busy machine, sizes stop early (after MIN_RUNS).
TIME_BUDGET_S = 220
MIN_RUNS = 2
# N separate events cost ~N^2 (each re-renders the whole form): 1,000 takes over a minute.
SEPARATE_SIZES = (10, 100)
UNPACED = 10**9

# Installed after S.FRAME_TIMER, before any page script: notes when each WebSocket opens
# (just before the runtime's own 'open' listener runs), when the page goes online, and
# how each view came back.
OPEN_TIMER = """
(() => {
  window.benchOpens = [];
  window.benchOnline = [];
  window.benchMounts = [];
  const add = WebSocket.prototype.addEventListener;
  const remove = WebSocket.prototype.removeEventListener;
  const wrappers = new WeakMap();
  WebSocket.prototype.addEventListener = function (type, listener, options) {
    if (type !== 'open' || typeof listener !== 'function') return add.call(this, type, listener, options);
    const wrapped = function (event) {
      const entry = {t0: performance.now(), t1: null};
      window.benchOpens.push(entry);
      try { return listener.call(this, event); } finally { entry.t1 = performance.now(); }
    };
    wrappers.set(listener, wrapped);
    return add.call(this, type, wrapped, options);
  };
  WebSocket.prototype.removeEventListener = function (type, listener, options) {
    return remove.call(this, type, (type === 'open' && wrappers.get(listener)) || listener, options);
  };
  window.addEventListener('online', () => window.benchOnline.push(performance.now()));
  document.addEventListener('djreconnect:mounted',
    (event) => window.benchMounts.push({t: performance.now(), mode: event.detail.mode}));
})();
"""

RESET = """
async () => {
  const synced = document.getElementById('synced');
  document.getElementById('reset').click();
  const end = performance.now() + 30000;
  while (synced.textContent !== '0') {
    if (performance.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}
"""

# While offline: every field gets a new value; an observer waits for #synced to equal N.
ARM = """
({n, tag, timeoutMs}) => {
  const synced = document.getElementById('synced');
  const inputs = [...document.querySelectorAll('input[dj-change]')];
  inputs.forEach((input, i) => { input.value = tag + i; });
  window.benchMark = {
    frames: window.benchFrames.length,
    opens: window.benchOpens.length,
    online: window.benchOnline.length,
    mounts: window.benchMounts.length,
  };
  window.benchDone = new Promise((resolve) => {
    const timer = setTimeout(() => { observer.disconnect(); resolve(null); }, timeoutMs);
    const observer = new MutationObserver(() => {
      if (synced.textContent === String(n)) { observer.disconnect(); clearTimeout(timer); resolve(performance.now()); }
    });
    observer.observe(synced, {childList: true, characterData: true, subtree: true});
  });
  return inputs.length;
}
"""

COLLECT = """
async ({tag}) => {
  const t1 = await window.benchDone;
  const mark = window.benchMark;
  const inputs = [...document.querySelectorAll('input[dj-change]')];
  const opens = window.benchOpens.slice(mark.opens).filter((o) => t1 === null || o.t0 <= t1);
  const opened = opens.length ? opens[opens.length - 1] : null;
  const open = opened ? opened.t0 : null;
  const online = window.benchOnline[mark.online];
  const frames = window.benchFrames.slice(mark.frames).filter((f) => open !== null && f.t0 >= open);
  const welcome = frames.find((f) => f.kind === 'welcome');
  const rendered = frames.find((f) => f.kind === 'rendered');
  const reply = rendered ? frames.find((f) => f.kind === 'reply' && f.t0 >= rendered.t1) : undefined;
  return {
    ms: t1 === null || open === null ? null : t1 - open,
    opens: opens.length,
    onlineToOpen: online !== undefined && open !== null ? open - online : null,
    // Where the time goes: the runtime's open handler (the roots' HTML, Hello and Join
    // sent), then the Welcome and the Rendered frames arriving (server and network),
    // handling the Rendered (patch, recovery snapshot, the batch sent), the batch's reply
    // arriving (server and network), handling the reply (its patch applied).
    openHandled: opened && opened.t1 !== null ? opened.t1 - opened.t0 : null,
    toWelcome: welcome ? welcome.t0 - open : null,
    toRendered: rendered ? rendered.t0 - open : null,
    rendered: rendered ? rendered.t1 - rendered.t0 : null,
    toReply: reply ? reply.t0 - rendered.t1 : null,
    reply: reply ? reply.t1 - reply.t0 : null,
    renderedSize: rendered ? rendered.size : null,
    modes: window.benchMounts.slice(mark.mounts).map((m) => m.mode),
    synced: document.getElementById('synced').textContent,
    consistent: inputs.every((input, i) => input.defaultValue === tag + i && input.value === tag + i),
    state: window.djreconnect.state,
  };
}
"""


def new_page(browser, errors):
    """A page in a context of its own (going offline is per context), with the timers."""
    context = browser.new_context()
    S.OffHostGuard(context)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(S.FRAME_TIMER)
    page.add_init_script(OPEN_TIMER)
    return context, page


def load(page, server, size):
    page.goto("%s/form/%d" % (server.url, size))
    S.wait_connected(page)
    page.wait_for_function("() => window.djreconnect.mounted", timeout=S.BOOT_TIMEOUT_MS, polling=20)
    page.wait_for_timeout(300)


def blip(page, size, tag):
    """One timed run: reset, offline, change every field, online; returns the sample."""
    if not page.evaluate(RESET):
        return {"error": "the reset did not reach the server"}
    page.wait_for_timeout(100)
    page.context.set_offline(True)
    page.wait_for_function("() => window.djreconnect.state !== 'connected'", timeout=10_000, polling=5)
    page.evaluate(ARM, {"n": size, "tag": tag, "timeoutMs": 60_000})
    page.wait_for_timeout(OUTAGE_MS)
    page.context.set_offline(False)
    return page.evaluate(COLLECT, {"tag": tag})


def measure(browser, sizes, repeats, env, deadline):
    """{size: {mode: [sample, ...]}}, errors. One server and one page per mode; the page
    loads /form/N for each size (a warm reload), and the modes' runs alternate. Past its
    share of the time left before ``deadline`` (time.monotonic), a size stops after
    ``MIN_RUNS`` runs of each mode."""
    budget = ["--work-budget", str(UNPACED)]
    servers = {
        "resume": S.bench_app("form", *budget, env=env),
        "remount": S.bench_app("form", *budget, "--session-retention-s", "0", env=env),
    }
    results = {}
    errors = []
    contexts = []
    try:
        pages = {}
        for mode in MODES:
            servers[mode].start()
            context, pages[mode] = new_page(browser, errors)
            contexts.append(context)
        for position, size in enumerate(sizes):
            samples = results[size] = {mode: [] for mode in MODES}
            for mode in MODES:
                load(pages[mode], servers[mode], size)
            now = time.monotonic()
            size_deadline = now + (deadline - now) / (len(sizes) - position)
            for run in range(WARMUP + repeats[size]):
                if run >= WARMUP + MIN_RUNS and time.monotonic() > size_deadline:
                    break
                for mode in MODES if run % 2 == 0 else MODES[::-1]:
                    sample = blip(pages[mode], size, "r%d-" % run)
                    if run >= WARMUP:
                        samples[mode].append(sample)
    finally:
        for context in contexts:
            context.close()
        for mode, server in servers.items():
            server.stop()
            errors.extend("%s server logged: %s (%d)" % ((mode,) + item) for item in server.log_errors().items())
    return results, errors


# --- in-process: the server's share -------------------------------------------------------


def _server_parts(wheels_dir):
    import apps
    from djreconnect_server.diff import parse_render
    from djreconnect_server.live import LiveConnection
    from djreconnect_server.sessions import SessionRegistry
    from djreconnect_server.settings import Settings
    from djreconnect_server.signing import MountSigner
    from djreconnect_server.stores import MemoryStore
    from djreconnect_server.templating import Templates

    # No flood limit or work budget here: the figures are the server's work, not its pacing.
    settings = Settings(
        apps.SECRET_KEY,
        wheels_dir=wheels_dir,
        max_frame_burst=BIG_BURST,
        max_work_per_second=UNPACED,
        max_work_burst=UNPACED,
    )
    templates = Templates(settings, [apps.TEMPLATES])
    signer = MountSigner(apps.SECRET_KEY)
    registry = {apps.FormView.view_name: (apps.FormView, False)}
    sessions = SessionRegistry(MemoryStore())

    def connection():
        return LiveConnection(registry, templates, signer, settings, None, sessions)

    def root_html(n):
        view = apps.FormView()
        view.mount(None, n=str(n))
        return parse_render(templates.render(view)).html

    return connection, signer, root_html


async def _resume_against_remount(connection, signer, root_html, n, order):
    """Server time (ms) of each mode (in ``order``): Hello + Join, then the recovery batch."""
    token = signer.sign("form", {"n": str(n)})
    html = root_html(n)
    batch = json.dumps(
        {
            "t": "batch",
            "ref": 3,
            "view": "v",
            "events": [["set_field", {"index": str(i), "value": "v%d" % i}] for i in range(n)],
        }
    )
    # A page's first connection, then its drop: the session is retained.
    first = connection()
    welcome = json.loads((await first.receive(json.dumps({"t": "hello", "ref": 1})))[0])
    join = {"t": "join", "ref": 2, "view": "v", "name": "form", "token": token, "html": html}
    rendered = json.loads((await first.receive(json.dumps(join)))[0])
    await first.detach()
    times = {}
    for mode in order:
        live = connection()
        began = time.perf_counter()
        if mode == "resume":
            hello = {"t": "hello", "ref": 1, "session": welcome["session"], "secret": welcome["secret"]}
            answer = json.loads((await live.receive(json.dumps(hello)))[0])
            if not answer.get("resumed"):
                raise RuntimeError("the session was not resumed: %r" % answer)
            again = dict(join, version=rendered["version"])
        else:
            await live.receive(json.dumps({"t": "hello", "ref": 1}))
            again = join
        answer = json.loads((await live.receive(json.dumps(again)))[0])
        if answer.get("t") != "rendered" or answer.get("resumed") != (mode == "resume"):
            raise RuntimeError("unexpected answer to the join: %r" % (answer,))
        joined = time.perf_counter()
        await live.receive(batch)
        done = time.perf_counter()
        times[mode] = ((joined - began) * 1000, (done - joined) * 1000)
        await live.detach()
    return times


async def _batch_against_separate(connection, signer, n):
    """Server time (ms) and reply bytes: N separate events against one batch."""
    token = signer.sign("form", {"n": str(n)})
    join = json.dumps({"t": "join", "ref": 1, "view": "v", "name": "form", "token": token, "html": ""})
    live = connection()
    await live.receive(join)
    frames = [
        json.dumps(
            {
                "t": "event",
                "ref": 2 + i,
                "view": "v",
                "handler": "set_field",
                "params": {"index": str(i), "value": "v%d" % i},
            }
        )
        for i in range(n)
    ]
    began = time.perf_counter()
    replies = 0
    for frame in frames:
        replies += sum(len(out) for out in await live.receive(frame))
    separate = (time.perf_counter() - began) * 1000
    other = connection()
    await other.receive(join)
    batch = json.dumps(
        {
            "t": "batch",
            "ref": 2,
            "view": "v",
            "events": [["set_field", {"index": str(i), "value": "v%d" % i}] for i in range(n)],
        }
    )
    began = time.perf_counter()
    answer = await other.receive(batch)
    batched = (time.perf_counter() - began) * 1000
    return separate, batched, replies, sum(len(out) for out in answer)


def server_share(sizes, wheels_dir):
    """{N: {"resume": (join ms, batch ms), "remount": (...), "separate": (...)}}, medians."""
    connection, signer, root_html = _server_parts(wheels_dir)
    shares = {}
    for n in sizes:
        runs = [
            asyncio.run(_resume_against_remount(connection, signer, root_html, n, MODES if k % 2 else MODES[::-1]))
            for k in range(SERVER_REPEATS * 2)
        ]
        share = {}
        for mode in MODES:
            share[mode] = tuple(S.median([run[mode][part] for run in runs]) for part in (0, 1))
        if n in SEPARATE_SIZES:
            share["separate"] = asyncio.run(_batch_against_separate(connection, signer, n))
        shares[n] = share
    return shares


# --- the report -------------------------------------------------------------------------


def _med(samples, key):
    return S.median([s[key] for s in samples if s.get(key) is not None])


def _least(samples):
    return min((s["ms"] for s in samples), default=float("nan"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per size and mode, no 1,000-field size")
    arguments = parser.parse_args(argv)
    sizes = SIZES[:2] if arguments.quick else SIZES
    repeats = {size: 3 for size in sizes} if arguments.quick else REPEATS

    started = time.monotonic()
    env = S.wheel_env()
    shares = server_share(sizes, env.get("DJRECONNECT_WHEELS") or str(S.CHECKOUT / "wheels"))
    with sync_playwright() as playwright:
        browser = S.launch_chromium(playwright)
        try:
            results, errors = measure(browser, sizes, repeats, env, started + TIME_BUDGET_S)
        finally:
            browser.close()

    rows = []
    parts = []
    notes = []
    if errors:
        notes.append("errors: %s" % errors[:3])
    for size in sizes:
        samples = results[size]
        figures = {}
        for mode in MODES:
            good = [s for s in samples[mode] if s.get("ms") is not None and s.get("modes") == [mode]]
            figures[mode] = (good, S.median([s["ms"] for s in good]))
            for sample in samples[mode]:
                if sample.get("error") or sample.get("ms") is None:
                    notes.append(
                        "%d fields, %s: a run did not finish (%s; #synced shows %s)"
                        % (size, mode, sample.get("error", "timeout"), sample.get("synced"))
                    )
                elif sample["modes"] != [mode]:
                    notes.append("%d fields, %s: a run came back as %s; left out" % (size, mode, sample["modes"]))
                elif not sample["consistent"]:
                    notes.append("%d fields, %s: the page's fields do not all show the server's values" % (size, mode))
                if sample.get("opens", 1) != 1:
                    notes.append("%d fields, %s: %d sockets opened in one run" % (size, mode, sample["opens"]))
        resume_good, resume_ms = figures["resume"]
        remount_good, remount_ms = figures["remount"]
        ratio = resume_ms / remount_ms if remount_ms else float("nan")
        # Runs i of the two modes ran one after the other: the ratio of each such pair.
        good_ids = {id(sample) for sample in resume_good + remount_good}
        pairs = [
            a["ms"] / b["ms"]
            for a, b in zip(samples["resume"], samples["remount"])
            if id(a) in good_ids and id(b) in good_ids and b["ms"]
        ]
        if len(samples["resume"]) < repeats[size]:
            notes.append(
                "%d fields: %d runs of each mode, not %d (the time budget)"
                % (size, len(samples["resume"]), repeats[size])
            )
        aims = [ratio <= 1.0]
        if size == AIM_SIZE:
            aims.append(resume_ms <= AIM_MS)
        rows.append(
            [
                "{:,}".format(size),
                "%d/%d, %d/%d" % (len(resume_good), len(samples["resume"]), len(remount_good), len(samples["remount"])),
                "**%s ms** (%s)" % (S.fmt(resume_ms, 1), S.fmt(_least(resume_good), 1)),
                "%s ms (%s)" % (S.fmt(remount_ms, 1), S.fmt(_least(remount_good), 1)),
                "**%.2f** (%.2f)" % (ratio, S.median(pairs)),
                "%s ms" % S.fmt(_med(resume_good + remount_good, "onlineToOpen"), 1),
                S.verdict(all(aims)),
            ]
        )
        for mode, good in (("resume", resume_good), ("remount", remount_good)):
            parts.append(
                ["{:,}".format(size), mode]
                + [
                    "%s ms" % S.fmt(_med(good, key), 1)
                    for key in ("openHandled", "toWelcome", "toRendered", "rendered", "toReply", "reply")
                ]
                + ["%s B" % S.fmt(_med(good, "renderedSize"), 0)]
            )
    body = S.table(
        [
            "changed fields",
            "runs ok (resume, remount)",
            "resume: socket open -> page = server state, median (fastest)",
            "baseline: remount + recovery",
            "ratio resume/remount (median of paired runs)",
            "online -> socket open (not counted)",
            "aim: resume <= remount%s" % (", <= 20 ms @ 100" if AIM_SIZE in sizes else ""),
        ],
        rows,
    )
    body += (
        "\n\nWhere the time goes (medians; in-page, from the frames' arrival and the runtime's handling of each):\n\n"
        + S.table(
            [
                "changed fields",
                "mode",
                "client: open handled (roots' HTML, Hello + Join sent)",
                "open -> Welcome arrives",
                "open -> Rendered arrives",
                "client: Rendered handled (patch, recovery snapshot, batch sent)",
                "batch sent -> reply arrives (server + network)",
                "client: reply's patch applied",
                "Rendered frame",
            ],
            parts,
        )
    )
    share_rows = []
    for size in sizes:
        share = shares[size]
        share_rows.append(
            [
                "{:,}".format(size),
                "%s ms" % S.fmt(share["resume"][0], 2),
                "%s ms" % S.fmt(share["remount"][0], 2),
                "%s ms" % S.fmt(share["resume"][1], 1),
                "%s ms" % S.fmt(share["remount"][1], 1),
                "%.2f" % (sum(share["resume"]) / sum(share["remount"])),
            ]
        )
    body += (
        "\n\nServer share, in-process (no network, no browser; median of %d, the modes' order alternating): "
        "Hello + Join of a resumed session (the page names the render it shows: nothing to mount, parse or diff) "
        "against a remount (mount, render, parse the page's HTML, diff), then the recovery batch of N fields:\n\n"
        % (SERVER_REPEATS * 2)
        + S.table(
            [
                "changed fields",
                "resume: Hello + Join",
                "remount: Hello + Join",
                "resume: batch",
                "remount: batch",
                "ratio resume/remount",
            ],
            share_rows,
        )
    )
    separate_rows = []
    for size in [size for size in sizes if "separate" in shares[size]]:
        product, whatif, replies, one = shares[size]["separate"]
        separate_rows.append(
            [
                "{:,}".format(size),
                "%s ms" % S.fmt(product, 1),
                "%s B" % S.fmt(replies),
                "%s ms" % S.fmt(whatif, 1),
                "%s B" % S.fmt(one),
                "%.0fx" % (product / whatif) if whatif else "n/a",
            ]
        )
    body += (
        "\n\nThe recovery batch (N handlers, then one re-render, diff and reply) against N separate events "
        "(handler, re-render, diff, reply: each), in-process:\n\n"
        + S.table(
            [
                "changed fields",
                "baseline: N events",
                "baseline: N replies",
                "batch (the product)",
                "batch: 1 reply",
                "speed-up",
            ],
            separate_rows,
        )
    )
    body += (
        "\n\nEach run: reset the server's values, context offline, every field changed, %d ms later online; "
        "timed from the new socket's open event (before the runtime's handler) to #synced = N, on Pyodide over "
        "WebSocket. A resumed view's Rendered carries no ops (the page names the render it shows); a remounted "
        "one is mounted, rendered and diffed against the page's HTML. Runs per size and mode (after %d untimed): "
        "%s; one server and one page per mode (loading /form/N for each size), the modes alternating. "
        "%s. Total %.0f s."
        % (
            OUTAGE_MS,
            WARMUP,
            ", ".join("%d: %d" % (size, repeats[size]) for size in sizes),
            S.machine(),
            time.monotonic() - started,
        )
    )
    if notes:
        body += "\n\n" + "\n".join("- " + note for note in notes)
    S.report("recovery", "Recovery: socket open -> page equals server state, resume against remount", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
