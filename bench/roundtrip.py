"""Round trip: a keystroke in the demo's dj-input textarea -> server -> patch applied.

In a real Chromium against a real ``djreconnect demo`` process, once per transport
(``--transport ws`` and ``--transport sse``), on the default interpreter (Pyodide)
and, for comparison, on the runtime's other one (``--interpreter micropython``).
All timing is in-page JS, so Playwright's own latency is not counted:
performance.now() just before the textarea's value is set and an 'input' event
dispatched (the runtime's listener runs inside dispatchEvent), then a
MutationObserver on #preview resolves when its text equals what was typed (the
reply's patch is applied). Keystrokes are sequential,
10 ms apart; 20 untimed ones warm up first.

Baseline, interleaved in the same page: fetch() of a small static file
(/djreconnect/boot.js, cache: 'no-store'): the network + server floor of
one HTTP request to the same backend. Aim: p50 <= 15 ms on localhost.
"""

import sys
import time

import _support as S
from playwright.sync_api import sync_playwright

KEYSTROKES = 200
WARMUP = 20
GAP_MS = 10
AIM_MS = 15.0

TYPE_AND_MEASURE = """
async ({count, warmup, gapMs}) => {
  const area = document.getElementById('body');
  const preview = document.getElementById('preview');
  area.focus();
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const applied = (text) => new Promise((resolve) => {
    let timer = null;
    const observer = new MutationObserver(() => {
      if (preview.textContent === text) { observer.disconnect(); clearTimeout(timer); resolve(performance.now()); }
    });
    observer.observe(preview, {childList: true, characterData: true, subtree: true});
    timer = setTimeout(() => { observer.disconnect(); resolve(null); }, 5000);
  });
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const keys = [], fetches = [];
  let text = area.value, lost = 0;
  for (let i = 0; i < warmup + count; i++) {
    text += letters[i % letters.length];
    const done = applied(text);
    const t0 = performance.now();
    area.value = text;
    area.dispatchEvent(new Event('input', {bubbles: true}));
    const t1 = await done;
    const f0 = performance.now();
    const response = await fetch('/djreconnect/boot.js', {cache: 'no-store'});
    await response.text();
    const f1 = performance.now();
    if (i >= warmup) {
      if (t1 === null) lost++; else keys.push(t1 - t0);
      fetches.push(f1 - f0);
    }
    await pause(gapMs);
  }
  return {keys, fetches, lost};
}
"""


CONFIGS = (("pyodide", "ws"), ("pyodide", "sse"), ("micropython", "ws"), ("micropython", "sse"))


def run_config(browser, interpreter, transport, env):
    server = S.demo_server("--transport", transport, "--interpreter", interpreter, env=env).start()
    context = browser.new_context()
    errors = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/")
        S.wait_connected(page)
        page.wait_for_timeout(300)  # let the mount's recovery settle
        result = page.evaluate(TYPE_AND_MEASURE, {"count": KEYSTROKES, "warmup": WARMUP, "gapMs": GAP_MS})
        result["errors"] = errors
        result["state"] = page.evaluate("window.djreconnect.state")
        return result
    finally:
        context.close()
        server.stop()
        errors.extend("server logged: %s (%d)" % item for item in server.log_errors().items())


def plot(results, path):
    """Cumulative distributions: keystroke -> patched per configuration, and the fetch() floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(9, 4.5))
    for (interpreter, transport), result in results.items():
        keys = sorted(result["keys"])
        if keys:
            axis.step(
                keys,
                [(i + 1) / len(keys) for i in range(len(keys))],
                where="post",
                label="keystroke, %s over %s" % (interpreter, transport),
            )
    fetches = sorted(f for result in results.values() for f in result["fetches"])
    if fetches:
        axis.step(
            fetches,
            [(i + 1) / len(fetches) for i in range(len(fetches))],
            where="post",
            color="black",
            linestyle=":",
            label="baseline fetch() (all pages)",
        )
    axis.axvline(AIM_MS, color="#b91c1c", linestyle="--", linewidth=1, label="aim: p50 <= 15 ms")
    axis.set_xscale("log")
    axis.set_xlabel("ms (log scale)")
    axis.set_ylabel("fraction of events")
    axis.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    started = time.monotonic()
    env = S.wheel_env()
    results = {}
    with sync_playwright() as playwright:
        browser = S.launch_chromium(playwright)
        try:
            for interpreter, transport in CONFIGS:
                results[(interpreter, transport)] = run_config(browser, interpreter, transport, env)
        finally:
            browser.close()

    rows = []
    notes = []
    for (interpreter, transport), result in results.items():
        name = "%s over %s" % (interpreter, transport)
        keys, fetches = result["keys"], result["fetches"]
        p50, p95 = S.percentile(keys, 0.5), S.percentile(keys, 0.95)
        f50, f95 = S.percentile(fetches, 0.5), S.percentile(fetches, 0.95)
        rows.append(
            [
                interpreter + (" (default)" if interpreter == "pyodide" else ""),
                transport,
                len(keys),
                "**%s ms**" % S.fmt(p50, 2),
                "%s ms" % S.fmt(p95, 2),
                "%s ms" % S.fmt(max(keys) if keys else float("nan"), 1),
                "%s ms" % S.fmt(f50, 2),
                "%s ms" % S.fmt(f95, 2),
                "%.1f" % (p50 / f50 if f50 else float("nan")),
                S.verdict(p50 <= AIM_MS),
            ]
        )
        if result["lost"]:
            notes.append("%s: %d keystrokes never showed in #preview within 5 s." % (name, result["lost"]))
        if result["errors"]:
            notes.append("%s: errors: %s" % (name, result["errors"][:3]))
        if result["state"] != "connected":
            notes.append("%s: the page ended in state %r." % (name, result["state"]))
    body = S.table(
        [
            "interpreter",
            "transport",
            "keystrokes",
            "p50 keystroke -> patched",
            "p95",
            "max",
            "p50 fetch() floor",
            "p95 fetch()",
            "ratio p50/floor",
            "aim p50 <= 15 ms",
        ],
        rows,
    )
    body += (
        "\n\nOne page per interpreter and transport, %d timed keystrokes after %d untimed ones, %d ms apart; each is "
        "followed by the baseline fetch(). A keystroke's time includes the runtime's Python input handler (describe "
        "the field, encode, send), the server's handler + re-render + diff of the whole editor, and the patch's "
        "application in the page (#preview, the textarea's text and #server-state change every time). %s. "
        "Total %.0f s." % (KEYSTROKES, WARMUP, GAP_MS, S.machine(), time.monotonic() - started)
    )
    try:
        plot(results, S.results_dir() / "roundtrip.png")
        body += "\n\nDistribution of every keystroke and fetch(): bench/results/roundtrip.png."
    except Exception as error:
        notes.append("no plot: %s" % error)
    if notes:
        body += "\n\n" + "\n".join("- " + note for note in notes)
    S.report("roundtrip", "Round trip: keystroke -> server -> patch applied", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
