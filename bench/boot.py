"""Boot: navigation -> connected, for the demo page, against bare Pyodide.

Measures, in a real Chromium against a real ``djreconnect demo`` process, the time
from navigation start to ``<body class="dj-connected">`` (window.djreconnect.state ===
'connected'), read in the page as performance.now() by a MutationObserver installed
before any page script runs. The baseline, measured in the same run and interleaved
with it, is a minimal page that only does ``await loadPyodide()`` from the same
served /djreconnect/pyodide/pyodide.mjs: the page is served at a URL of the same
backend origin through the DevTools Fetch domain (Playwright's own routing would
turn the HTTP cache off), timed the same way (navigation start -> loadPyodide()
resolved).

Cold: a new browser context (empty cache) for every run. Warm: a reload in the
same context. N runs each; medians, and the ratio runtime / bare. Bytes are network
bytes (DevTools Network.loadingFinished encodedDataLength, headers included).
Aim: the runtime adds <= 15% to bare Pyodide. The same page on the runtime's other
interpreter (``--interpreter micropython``) is measured alongside, against the same
bare-Pyodide baseline, for comparison.
"""

import base64
import sys
import time

import _support as S
from playwright.sync_api import sync_playwright

RUNS = 5
WARM_RELOADS = 2  # per context: N warm samples = RUNS * WARM_RELOADS
AIM = 1.15
KINDS = ("runtime", "bare", "micropython")

BARE_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>bare pyodide</title><link rel="icon" href="data:,"></head>
<body>
<script type="module">
import { loadPyodide } from "/djreconnect/pyodide/pyodide.mjs";
await loadPyodide();
window.benchReadyAt = performance.now();
</script>
</body></html>
"""
BARE_PATH = "/__bench/bare-pyodide.html"

# Before any page script: note when <body> turns dj-connected, and PyScript's
# py:ready (interpreter up) and py:done (the runtime's entry point has run).
INIT_SCRIPT = """
(() => {
  window.benchMarks = {};
  const mark = (name) => { if (window.benchMarks[name] === undefined) window.benchMarks[name] = performance.now(); };
  new MutationObserver(() => {
    if (document.body && document.body.classList.contains('dj-connected')) {
      mark('connected');
      window.benchReadyAt = window.benchMarks.connected;
    }
  }).observe(document, {attributes: true, subtree: true, attributeFilter: ['class']});
  for (const type of ['py', 'mpy']) {
    document.addEventListener(type + ':ready', () => mark('py_ready'), true);
    document.addEventListener(type + ':done', () => mark('py_done'), true);
  }
})();
"""


class Probe:
    """One page's CDP session: network bytes, and (for the bare page) the served HTML."""

    def __init__(self, context, page, serve_bare):
        self.cdp = context.new_cdp_session(page)
        self.bytes = 0
        self.requests = 0
        self.from_cache = 0
        self.cdp.send("Network.enable")
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.requestServedFromCache", self._cached)
        if serve_bare:
            self.cdp.send(
                "Fetch.enable", {"patterns": [{"urlPattern": "*" + BARE_PATH + "*", "requestStage": "Request"}]}
            )
            self.cdp.on("Fetch.requestPaused", self._serve_bare)

    def _finished(self, event):
        self.bytes += event.get("encodedDataLength", 0)
        self.requests += 1

    def _cached(self, event):
        self.from_cache += 1

    def _serve_bare(self, event):
        self.cdp.send(
            "Fetch.fulfillRequest",
            {
                "requestId": event["requestId"],
                "responseCode": 200,
                "responseHeaders": [{"name": "Content-Type", "value": "text/html; charset=utf-8"}],
                "body": base64.b64encode(BARE_HTML.encode()).decode(),
            },
        )

    def reset(self):
        self.bytes = self.requests = self.from_cache = 0


def measure(browser, servers, kind, warm_runs):
    """A cold load in a new context, then ``warm_runs`` reloads in it."""
    context = browser.new_context()
    off_host = []
    try:
        page = context.new_page()
        page.on(
            "request",
            lambda request: (
                None
                if request.url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:"))
                else off_host.append(request.url)
            ),
        )
        page.add_init_script(INIT_SCRIPT)
        probe = Probe(context, page, kind == "bare")
        url = servers[kind].url + (BARE_PATH if kind == "bare" else "/")
        samples = []
        for run in range(1 + warm_runs):
            probe.reset()
            if run == 0:
                page.goto(url)
            else:
                page.reload()
            page.wait_for_function("() => window.benchReadyAt !== undefined", timeout=S.BOOT_TIMEOUT_MS, polling=20)
            marks = page.evaluate("window.benchMarks")
            ready = page.evaluate("window.benchReadyAt")
            page.wait_for_timeout(150)  # late responses (none expected) still counted
            samples.append(
                {
                    "ms": ready,
                    "bytes": probe.bytes,
                    "requests": probe.requests,
                    "cached": probe.from_cache,
                    "marks": marks,
                    "warm": run > 0,
                }
            )
        if off_host:
            raise RuntimeError("the page reached off 127.0.0.1: %s" % off_host[:5])
        return samples
    finally:
        context.close()


def main():
    started = time.monotonic()
    env = S.wheel_env()
    servers = {}
    results = {kind: {"cold": [], "warm": []} for kind in KINDS}
    try:
        servers["runtime"] = servers["bare"] = S.demo_server(env=env).start()
        servers["micropython"] = S.demo_server("--interpreter", "micropython", env=env).start()
        with sync_playwright() as playwright:
            browser = S.launch_chromium(playwright)
            try:
                # One throwaway load of each, so the OS file cache and the servers are warm.
                for kind in KINDS:
                    measure(browser, servers, kind, 0)
                # Interleaved: runtime and bare share whatever the machine is doing.
                # Each context gives one cold load and WARM_RELOADS warm reloads.
                for _ in range(RUNS):
                    for kind in KINDS:
                        cold, *warm = measure(browser, servers, kind, WARM_RELOADS)
                        results[kind]["cold"].append(cold)
                        results[kind]["warm"].extend(warm)
            finally:
                browser.close()
    finally:
        for server in set(servers.values()):
            server.stop()

    rows = []
    bare = {phase: [s["ms"] for s in results["bare"][phase]] for phase in ("cold", "warm")}
    bare_bytes = {phase: S.median([s["bytes"] for s in results["bare"][phase]]) for phase in ("cold", "warm")}
    for kind, label in (
        ("bare", "bare loadPyodide() (baseline)"),
        ("runtime", "**runtime on Pyodide** (the aim)"),
        ("micropython", "runtime on MicroPython (for comparison)"),
    ):
        for phase in ("cold", "warm"):
            times = [s["ms"] for s in results[kind][phase]]
            ratio = S.median(times) / S.median(bare[phase])
            # Each sample against the bare sample measured right next to it (same round):
            # robust to the machine's load drifting during the run.
            paired = S.median([t / b for t, b in zip(times, bare[phase])])
            size = S.median([s["bytes"] for s in results[kind][phase]])
            rows.append(
                [
                    label,
                    phase,
                    "%s ms" % S.fmt(S.median(times), 0),
                    "%s-%s" % (S.fmt(min(times), 0), S.fmt(max(times), 0)),
                    "**%.2f** (%+.0f%%)" % (paired, (paired - 1) * 100) if kind != "bare" else "1.00",
                    "%.2f" % ratio if kind != "bare" else "1.00",
                    "%s MB" % S.fmt(size / 1e6, 2),
                    "%d" % S.median([s["requests"] for s in results[kind][phase]]),
                    "%.3f" % (size / bare_bytes[phase]) if bare_bytes[phase] else "n/a",
                    S.verdict(paired <= AIM) if kind == "runtime" else "-",
                ]
            )
    body = S.table(
        [
            "page",
            "load",
            "nav -> ready (median)",
            "range",
            "ratio to bare (median of paired runs)",
            "ratio of medians",
            "bytes",
            "requests",
            "bytes ratio",
            "aim <= 1.15",
        ],
        rows,
    )
    # Where the runtime's time goes (medians): PyScript's py:ready (interpreter up and the
    # wheel unpacked), py:done (the runtime's main() ran), then the socket and the mount.
    phases = []
    for kind in ("runtime", "micropython"):
        for phase in ("cold", "warm"):
            marks = [s["marks"] for s in results[kind][phase]]
            ready = S.median([m.get("py_ready", float("nan")) for m in marks])
            done = S.median([m.get("py_done", float("nan")) for m in marks])
            connected = S.median([m.get("connected", float("nan")) for m in marks])
            phases.append(
                [
                    "Pyodide" if kind == "runtime" else "MicroPython",
                    phase,
                    "%s ms" % S.fmt(ready, 0),
                    "%s ms" % S.fmt(done - ready, 0),
                    "%s ms" % S.fmt(connected - done, 0),
                ]
            )
    body += "\n\nWhere the runtime's time goes (medians; PyScript's events):\n\n" + S.table(
        [
            "interpreter",
            "load",
            "nav -> ready (PyScript + interpreter + wheel)",
            "ready -> done (runtime main())",
            "done -> connected (socket + mount)",
        ],
        phases,
    )
    warm_cached = S.median([s["cached"] for s in results["runtime"]["warm"]])
    body += (
        "\n\nN=%d runs of each: cold, a new context each; warm, %d reloads in each of those contexts (N=%d). "
        "Runtime and bare runs are interleaved and paired, after one untimed load of each; "
        "`djreconnect demo --transport ws` (and `--interpreter micropython`); %s. "
        "Warm reloads served %d requests from the HTTP cache; Pyodide's 9.6 MB pyodide.asm.wasm is fetched "
        "again on every warm reload, by both Pyodide pages (Chromium's in-memory cache of a Playwright context does "
        "not keep it; the asset routes send no Cache-Control, only ETag/Last-Modified). Total %.0f s."
        % (RUNS, WARM_RELOADS, RUNS * WARM_RELOADS, S.machine(), warm_cached, time.monotonic() - started)
    )
    S.report("boot", "Boot: navigation -> connected vs bare loadPyodide()", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
