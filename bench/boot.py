"""Boot: navigation -> view live, per interpreter, against the bare interpreter as the floor.

In a real Chromium against real ``djreconnect demo`` processes (local assets: versioned
URLs, ``Cache-Control: immutable``), each page is timed from navigation start to
``window.djreconnect.mounted`` (the view is live; read in the page as performance.now()
by an observer installed before any page script runs). The floors, measured in the same
run and interleaved with the rest, are minimal pages that only load the bare interpreter
from the same served files: ``await loadPyodide()`` and ``await loadMicroPython()``
(served at a URL of the same backend origin through the DevTools Fetch domain, which
keeps the HTTP cache on).

Per page: cold (a new browser profile: an empty disk cache) and warm (a reload in the
same profile); network bytes (DevTools Network.loadingFinished encodedDataLength) and
requests; the longest main-thread task before the view is live (Long Tasks API); and
where the time goes: PyScript's ``py:ready`` (interpreter up, wheel unpacked, before the
entry point runs), ``py:done`` (the entry point ran: imports and ``main()``), then the
connection and mount. A lever is measured against the same page without it: the include's
preloads (``--no-preload``) and gzip (``--no-compress``), on localhost and on an emulated
network with latency. (The bare floors load the interpreter gzipped too.)
"""

import base64
import os
import shutil
import sys
import tempfile
import time

import _support as S
from djreconnect_server import npm
from playwright.sync_api import sync_playwright

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
WARM_RELOADS = 2  # per context: N warm samples = RUNS * WARM_RELOADS

# name -> (server, path); servers by name: (demo flags)
SERVERS = {
    "pyodide": ("--interpreter", "pyodide"),
    "micropython": ("--interpreter", "micropython"),
    "pyodide-nopreload": ("--interpreter", "pyodide", "--no-preload"),
    "micropython-nopreload": ("--interpreter", "micropython", "--no-preload"),
    "pyodide-nocompress": ("--interpreter", "pyodide", "--no-compress"),
    "micropython-nocompress": ("--interpreter", "micropython", "--no-compress"),
}
# A network with latency (localhost has none, which hides what chained downloads cost):
# 40 ms round trips, 10 Mbit/s down, 5 up (DevTools network emulation).
NETWORK = {"offline": False, "latency": 40, "downloadThroughput": 10e6 / 8, "uploadThroughput": 5e6 / 8}
# page -> (server, path, emulated network or None)
KINDS = {
    "bare Pyodide (floor)": ("pyodide", "/__bench/bare-pyodide.html", None),
    "runtime on Pyodide": ("pyodide", "/", None),
    "  without preloads": ("pyodide-nopreload", "/", None),
    "  without gzip": ("pyodide-nocompress", "/", None),
    "bare MicroPython (floor)": ("micropython", "/__bench/bare-micropython.html", None),
    "runtime on MicroPython": ("micropython", "/", None),
    "  without preloads ": ("micropython-nopreload", "/", None),
    "bare MicroPython, 40 ms RTT (floor)": ("micropython", "/__bench/bare-micropython.html", NETWORK),
    "runtime on MicroPython, 40 ms RTT": ("micropython", "/", NETWORK),
    "  without preloads, 40 ms RTT": ("micropython-nopreload", "/", NETWORK),
    "  without gzip, 40 ms RTT": ("micropython-nocompress", "/", NETWORK),
}
FLOOR = {
    "runtime on Pyodide": "bare Pyodide (floor)",
    "  without preloads": "bare Pyodide (floor)",
    "  without gzip": "bare Pyodide (floor)",
    "runtime on MicroPython": "bare MicroPython (floor)",
    "  without preloads ": "bare MicroPython (floor)",
    "runtime on MicroPython, 40 ms RTT": "bare MicroPython, 40 ms RTT (floor)",
    "  without preloads, 40 ms RTT": "bare MicroPython, 40 ms RTT (floor)",
    "  without gzip, 40 ms RTT": "bare MicroPython, 40 ms RTT (floor)",
}

BARE_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>bare %(name)s</title><link rel="icon" href="data:,"></head>
<body>
<script type="module">
import { %(loader)s } from "%(url)s";
await %(loader)s();
window.benchReadyAt = performance.now();
</script>
</body></html>
"""


def bare_pages():
    base = "/djreconnect/npm/"
    node_modules = S.CHECKOUT / "node_modules"
    pages = {}
    for key, loader in (("pyodide", "loadPyodide"), ("micropython", "loadMicroPython")):
        url = base + npm.cdn_path(key, npm.installed_version(key, node_modules))
        url += "/" + npm.PACKAGES[key]["entry"]
        pages["/__bench/bare-%s.html" % key] = BARE_HTML % {"name": key, "loader": loader, "url": url}
    return pages


# Before any page script: when the view is live, PyScript's py:ready and py:done, and
# every long task (Long Tasks API).
INIT_SCRIPT = """
(() => {
  window.benchMarks = {};
  window.benchLongTasks = [];
  const mark = (name) => { if (window.benchMarks[name] === undefined) window.benchMarks[name] = performance.now(); };
  const live = () => {
    if (window.djreconnect && window.djreconnect.mounted && window.benchReadyAt === undefined) {
      mark('connected');
      window.benchReadyAt = window.benchMarks.connected;
    }
  };
  new MutationObserver(live).observe(document, {attributes: true, subtree: true, attributeFilter: ['class']});
  document.addEventListener('djreconnect:mounted', live, true);
  for (const type of ['py', 'mpy']) {
    document.addEventListener(type + ':ready', () => mark('py_ready'), true);
    document.addEventListener(type + ':done', () => mark('py_done'), true);
  }
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.benchLongTasks.push([entry.startTime, entry.duration]);
    }).observe({type: 'longtask', buffered: true});
  } catch (error) {}
})();
"""


class Probe:
    """One page's CDP session: network bytes, and the bare pages served at the backend's origin."""

    def __init__(self, context, page, pages):
        self.cdp = context.new_cdp_session(page)
        self.pages = pages
        self.bytes = 0
        self.requests = 0
        self.from_cache = 0
        self.cdp.send("Network.enable")
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.requestServedFromCache", self._cached)
        self.cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "*/__bench/*", "requestStage": "Request"}]})
        self.cdp.on("Fetch.requestPaused", self._serve)

    def _finished(self, event):
        self.bytes += event.get("encodedDataLength", 0)
        self.requests += 1

    def _cached(self, event):
        self.from_cache += 1

    def _serve(self, event):
        path = "/" + event["request"]["url"].split("/", 3)[3]
        self.cdp.send(
            "Fetch.fulfillRequest",
            {
                "requestId": event["requestId"],
                "responseCode": 200,
                "responseHeaders": [{"name": "Content-Type", "value": "text/html; charset=utf-8"}],
                "body": base64.b64encode(self.pages[path].encode()).decode(),
            },
        )

    def reset(self):
        self.bytes = self.requests = self.from_cache = 0


def measure(playwright, servers, kind, warm_runs, pages):
    """A cold load in a new browser profile (an empty disk cache, as a first visit has),
    then ``warm_runs`` reloads in it. (A Playwright context without a profile keeps its
    cache in memory, which never holds a file as big as Pyodide's 9.6 MB wasm.)"""
    server, path, network = KINDS[kind]
    profile = tempfile.mkdtemp(prefix="djreconnect-bench-profile-")
    context = playwright.chromium.launch_persistent_context(
        profile, **S.launch_options(playwright, ["--no-proxy-server"])
    )
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
        probe = Probe(context, page, pages)
        if network:
            probe.cdp.send("Network.emulateNetworkConditions", network)
        samples = []
        for run in range(1 + warm_runs):
            probe.reset()
            if run == 0:
                page.goto(servers[server].url + path, wait_until="commit", timeout=S.BOOT_TIMEOUT_MS)
            else:
                page.reload(wait_until="commit", timeout=S.BOOT_TIMEOUT_MS)
            page.wait_for_function("() => window.benchReadyAt !== undefined", timeout=S.BOOT_TIMEOUT_MS, polling=20)
            ready = page.evaluate("window.benchReadyAt")
            marks = page.evaluate("window.benchMarks")
            tasks = page.evaluate("window.benchLongTasks")
            page.wait_for_timeout(150)  # late responses (none expected) still counted
            longest = max([duration for start, duration in tasks if start < ready] or [0])
            samples.append(
                {
                    "ms": ready,
                    "bytes": probe.bytes,
                    "requests": probe.requests,
                    "cached": probe.from_cache,
                    "marks": marks,
                    "longest_task": longest,
                }
            )
        if off_host:
            raise RuntimeError("the page reached off 127.0.0.1: %s" % off_host[:5])
        return samples
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def main():
    started = time.monotonic()
    env = S.wheel_env()
    pages = bare_pages()
    servers = {}
    results = {kind: {"cold": [], "warm": []} for kind in KINDS}
    try:
        for name, flags in SERVERS.items():
            servers[name] = S.demo_server("--assets", "local", *flags, env=env).start()
        with sync_playwright() as playwright:
            for kind in KINDS:  # one untimed load of each: OS file cache and servers warm
                measure(playwright, servers, kind, 0, pages)
            for _ in range(RUNS):  # interleaved: every page shares what the machine is doing
                for kind in KINDS:
                    cold, *warm = measure(playwright, servers, kind, WARM_RELOADS, pages)
                    results[kind]["cold"].append(cold)
                    results[kind]["warm"].extend(warm)
    finally:
        for server in servers.values():
            server.stop()

    rows = []
    for kind in KINDS:
        for phase in ("cold", "warm"):
            samples = results[kind][phase]
            times = [s["ms"] for s in samples]
            floor = FLOOR.get(kind)
            if floor:
                paired = S.median([t / b["ms"] for t, b in zip(times, results[floor][phase])])
                ratio = "%.2f" % paired
            else:
                ratio = "1.00"
            rows.append(
                [
                    kind.strip() if not kind.startswith(" ") else "↳ " + kind.strip(),
                    phase,
                    "%s ms" % S.fmt(S.median(times), 0),
                    "%s-%s" % (S.fmt(min(times), 0), S.fmt(max(times), 0)),
                    ratio,
                    "%s MB" % S.fmt(S.median([s["bytes"] for s in samples]) / 1e6, 2),
                    "%d (%d cached)"
                    % (S.median([s["requests"] for s in samples]), S.median([s["cached"] for s in samples])),
                    "%s ms" % S.fmt(S.median([s["longest_task"] for s in samples]), 0),
                ]
            )
    body = S.table(
        [
            "page",
            "load",
            "nav -> live (median)",
            "range",
            "ratio to its bare interpreter (paired)",
            "bytes",
            "requests",
            "longest main-thread task",
        ],
        rows,
    )
    phases = []
    for kind in ("runtime on Pyodide", "runtime on MicroPython"):
        for phase in ("cold", "warm"):
            marks = [s["marks"] for s in results[kind][phase]]
            ready = S.median([m.get("py_ready", float("nan")) for m in marks])
            done = S.median([m.get("py_done", float("nan")) - m.get("py_ready", float("nan")) for m in marks])
            live = S.median([m.get("connected", float("nan")) - m.get("py_done", float("nan")) for m in marks])
            own = S.median([m.get("connected", float("nan")) - m.get("py_ready", float("nan")) for m in marks])
            phases.append(
                [
                    kind.split()[-1],
                    phase,
                    "%s ms" % S.fmt(ready, 0),
                    "%s ms" % S.fmt(done, 0),
                    "%s ms" % S.fmt(live, 0),
                    "**%s ms**" % S.fmt(own, 0),
                ]
            )
    body += "\n\nWhere the runtime's time goes (medians; PyScript's events):\n\n" + S.table(
        [
            "interpreter",
            "load",
            "nav -> py:ready (PyScript, interpreter, wheel)",
            "ready -> done (imports, main())",
            "done -> live (connect, mount)",
            "the runtime's own start (ready -> live)",
        ],
        phases,
    )
    body += (
        "\n\nN=%d runs of each: cold, a new browser profile each; warm, %d reloads in each (N=%d), "
        "interleaved, after one untimed load of each; `djreconnect demo --assets local` (and `--interpreter "
        "micropython`, `--no-preload`); %s. Total %.0f s."
        % (RUNS, WARM_RELOADS, RUNS * WARM_RELOADS, S.machine(), time.monotonic() - started)
    )
    S.report("boot", "Boot: navigation -> view live, against the bare interpreter", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
