"""Patching: a 1,000-row table view, (a) one row changes, (b) every row changes.

Server, in-process, with the product's own Templates, ViewSession and
djreconnect_server.diff: the time of an update (ViewSession.rerender() after a
handler: render, parse, diff against the last render) and the bytes of its ops JSON,
and the update's parts measured one by one; against the baseline of sending
everything: render + parse of the full HTML (the update without the diff), and
the bytes of the view root's full HTML.

Client, in a real Chromium against the real backend serving that view (bench/apps.py
``table``, under uvicorn in a subprocess): a dj-click button changes one row / every
row; in-page, performance.now() from button.click() to the MutationObserver callback
on the table (patch applied), and, from a wrapper around the WebSocket's 'message'
listener (installed before any page script; no product change), the time the
runtime spends handling the reply frame (decode + apply the ops through Pyodide).
Client baseline in the same page: parsing the full root HTML with innerHTML into a
detached <template> (the cheapest a full re-send could be applied).

Aim: a one-row change applied in <= 5 ms, sent in <= 1% of the full HTML's bytes.
"""

import json
import statistics
import sys
import time

import _support as S
from playwright.sync_api import sync_playwright

SERVER_REPEATS = 15
CLICKS = {"one": 20, "all": 8}
WARMUP_CLICKS = 3
AIM_APPLY_MS = 5.0
AIM_BYTES = 0.01

CLICK_AND_MEASURE = """
async ({id, count, warmup}) => {
  const tbody = document.querySelector('#rows tbody');
  const button = document.getElementById(id);
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const out = [];
  for (let i = 0; i < warmup + count; i++) {
    const patched = new Promise((resolve) => {
      const observer = new MutationObserver(() => {
        observer.disconnect();
        clearTimeout(timer);
        resolve(performance.now());
      });
      const timer = setTimeout(() => { observer.disconnect(); resolve(null); }, 10000);
      observer.observe(tbody, {subtree: true, childList: true, characterData: true, attributes: true});
    });
    const t0 = performance.now();
    button.click();
    const t1 = await patched;
    const frame = window.benchFrames[window.benchFrames.length - 1];
    if (i >= warmup) {
      const sample = {total: t1 - t0, handle: frame.t1 - frame.t0, arrive: frame.t0 - t0, size: frame.size};
      out.push(t1 === null ? null : sample);
    }
    await pause(50);
  }
  return out;
}
"""

FULL_PARSE = """
async ({count}) => {
  const html = document.querySelector('[dj-root]').innerHTML;
  const times = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const template = document.createElement('template');
    template.innerHTML = html;
    times.push(performance.now() - t0);
  }
  return {times, size: new TextEncoder().encode(html).length};
}
"""


def timed(function):
    start = time.perf_counter()
    value = function()
    return (time.perf_counter() - start) * 1000, value


def server_side(wheels_dir):
    import apps
    from djreconnect import protocol
    from djreconnect_server.diff import diff, parse_render
    from djreconnect_server.live import ViewSession
    from djreconnect_server.settings import Settings
    from djreconnect_server.templating import Templates

    settings = Settings(apps.SECRET_KEY, wheels_dir=wheels_dir)
    templates = Templates(settings, [apps.TEMPLATES])
    results = {}
    for scenario, handler in (("one", "change_one"), ("all", "change_all")):
        view = apps.TableView()
        view.mount(None)
        session = ViewSession(view, templates)
        session.patch_from("")  # mounted: the session holds its first render
        old = parse_render(templates.render(view))  # the components' own copy of the last render
        samples = {"render": [], "parse": [], "diff": [], "update": [], "baseline": []}
        ops = None
        for repeat in range(SERVER_REPEATS + 2):
            # The whole update as the server runs it after a handler (ViewSession.rerender).
            getattr(view, handler)()
            update_ms, ops = timed(session.rerender)
            # Its parts, on the next change: render, parse of the new render, diff of the parses.
            getattr(view, handler)()
            render_ms, html = timed(lambda: templates.render(view))
            parse_ms, new = timed(lambda: parse_render(html))
            diff_ms, _ = timed(lambda: diff(old, new))
            old = new
            session.rerender()  # keep the session in step
            if repeat >= 2:  # two warm-up rounds
                samples["render"].append(render_ms)
                samples["parse"].append(parse_ms)
                samples["diff"].append(diff_ms)
                samples["update"].append(update_ms)
                samples["baseline"].append(render_ms + parse_ms)
        reply = protocol.encode(protocol.Reply(ref=1, view="table", ops=ops))
        results[scenario] = {
            "ms": {key: statistics.median(values) for key, values in samples.items()},
            "ops": len(ops),
            "ops_bytes": len(json.dumps(ops).encode()),
            "reply_bytes": len(reply.encode()),
            "root_bytes": len(old.html.encode()),
            "page_bytes": len(templates.render(view).encode()),
        }
    return results


def client_side(env):
    server = S.bench_app("table", env=env).start()
    errors = []
    try:
        with sync_playwright() as playwright:
            browser = S.launch_chromium(playwright)
            try:
                context = browser.new_context()
                page = context.new_page()
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.add_init_script(S.FRAME_TIMER)
                page.goto(server.url + "/")
                S.wait_connected(page)
                page.wait_for_timeout(300)
                out = {"errors": errors}
                for scenario, count in CLICKS.items():
                    out[scenario] = page.evaluate(
                        CLICK_AND_MEASURE, {"id": scenario, "count": count, "warmup": WARMUP_CLICKS}
                    )
                out["full"] = page.evaluate(FULL_PARSE, {"count": 15})
                out["state"] = page.evaluate("window.djreconnect.state")
                values = page.evaluate("[...document.querySelectorAll('#rows td.v')].map(td => td.textContent)")
                # Every click applied: the page shows what the server's state must be.
                everyone = WARMUP_CLICKS + CLICKS["all"]
                expected = [str(everyone)] * 1000
                expected[1000 // 2] = str(everyone + WARMUP_CLICKS + CLICKS["one"])
                out["consistent"] = values == expected
                return out
            finally:
                browser.close()
    finally:
        server.stop()
        errors.extend("server logged: %s (%d)" % item for item in server.log_errors().items())


def main():
    started = time.monotonic()
    env = S.wheel_env()
    wheels_dir = env.get("DJRECONNECT_WHEELS") or str(S.CHECKOUT / "wheels")
    server = server_side(wheels_dir)
    client = client_side(env)

    server_rows = []
    for scenario, label in (("one", "(a) one row"), ("all", "(b) every row")):
        data = server[scenario]
        ms = data["ms"]
        share = data["ops_bytes"] / data["root_bytes"]
        server_rows.append(
            [
                label,
                data["ops"],
                "%s B" % S.fmt(data["ops_bytes"]),
                "%s B" % S.fmt(data["root_bytes"]),
                "**%.2f%%**" % (share * 100),
                "%s ms" % S.fmt(ms["update"], 2),
                "%s / %s / %s ms" % (S.fmt(ms["render"], 2), S.fmt(ms["parse"], 2), S.fmt(ms["diff"], 2)),
                "%s ms" % S.fmt(ms["baseline"], 2),
                "%.2f" % (ms["update"] / ms["baseline"]),
            ]
        )
    body = "Server (in-process, medians of %d):\n\n" % SERVER_REPEATS + S.table(
        [
            "change",
            "ops",
            "ops JSON",
            "full root HTML",
            "ops / full",
            "update: ViewSession.rerender()",
            "parts: render / parse / diff",
            "baseline render+parse",
            "ratio update/baseline",
        ],
        server_rows,
    )

    full = client["full"]
    full_ms = S.median(full["times"])
    client_rows = []
    verdicts = []
    for scenario, label in (("one", "(a) one row"), ("all", "(b) every row")):
        samples = [s for s in client[scenario] if s is not None]
        lost = len(client[scenario]) - len(samples)
        handle = S.median([s["handle"] for s in samples])
        total = S.median([s["total"] for s in samples])
        arrive = S.median([s["arrive"] for s in samples])
        row = [
            label,
            len(samples) if not lost else "%d (%d lost)" % (len(samples), lost),
            "**%s ms**" % S.fmt(handle, 2),
            "%s ms" % S.fmt(S.percentile([s["handle"] for s in samples], 0.95), 2),
            "%s ms" % S.fmt(arrive, 2),
            "%s ms" % S.fmt(total, 2),
            "%s B" % S.fmt(int(S.median([s["size"] for s in samples]))),
            "%s ms" % S.fmt(full_ms, 2),
            "%.1f" % (handle / full_ms if full_ms else float("nan")),
        ]
        client_rows.append(row)
        if scenario == "one":
            share = server["one"]["ops_bytes"] / server["one"]["root_bytes"]
            verdicts.append(
                "one-row change applied in %s ms (aim <= %g ms): %s; sent in %.2f%% of the full HTML "
                "(aim <= 1%%): %s"
                % (
                    S.fmt(handle, 2),
                    AIM_APPLY_MS,
                    S.verdict(handle <= AIM_APPLY_MS),
                    share * 100,
                    S.verdict(share <= AIM_BYTES),
                )
            )
    body += "\n\nClient (Chromium + Pyodide, medians; the page's root HTML is %s B):\n\n" % S.fmt(
        full["size"]
    ) + S.table(
        [
            "change",
            "clicks",
            "reply handled (decode + apply)",
            "p95",
            "click -> reply arrives",
            "click -> DOM patched",
            "reply frame",
            "baseline: innerHTML parse of full root (JS)",
            "ratio handled/baseline",
        ],
        client_rows,
    )
    body += "\n\nAim: " + "; ".join(verdicts) + "."
    body += (
        "\n\n'click -> reply arrives' is the runtime's click handler, the frame's trip, the server's handler and "
        "update (above), and the trip back. %d clicks of each after %d untimed, 50 ms apart. %s. Total %.0f s."
        % (CLICKS["one"], WARMUP_CLICKS, S.machine(), time.monotonic() - started)
    )
    notes = []
    if client["errors"]:
        notes.append("errors: %s" % client["errors"][:3])
    if not client["consistent"]:
        notes.append("the table the page shows is not the server's state after all clicks")
    if client["state"] != "connected":
        notes.append("the page ended in state %r" % client["state"])
    if notes:
        body += "\n\n" + "\n".join("- " + note for note in notes)
    S.report("patching", "Patching: a 1,000-row table", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
