"""Server restart -> page connected again, in a real Chromium, for the default backoff and
a fast one; against the floor of the same run: the server's own time from spawn to
answering (no client can be back before it answers).

Each run: the demo page is connected, the server is SIGKILLed, stays down for the outage,
is started again on the same port; we time from "the new server answers HTTP" to
"the page is dj-connected" (``window.djreconnect.state``, polled every 10 ms).
"""

import time

from _support import (
    OffHostGuard,
    demo_server,
    fmt,
    launch_chromium,
    machine,
    median,
    report,
    table,
    wait_connected,
)
from playwright.sync_api import sync_playwright

RUNS = 5
OUTAGE_S = 2.0
CONFIGS = (
    ("default: min 500, base 1000, cap 30000 ms", []),
    (
        "fast: min 100, base 200, cap 1000 ms",
        ["--backoff-min-ms", "100", "--backoff-base-ms", "200", "--backoff-max-ms", "1000"],
    ),
)


def measure(browser, flags, interpreter):
    server = demo_server("--interpreter", interpreter, *flags).start()
    port = server.port
    context = browser.new_context()
    OffHostGuard(context)
    page = context.new_page()
    back, boots = [], []
    try:
        page.goto(server.url + "/")
        wait_connected(page)
        for _ in range(RUNS):
            server.kill()
            page.wait_for_function("window.djreconnect.state !== 'connected'", polling=10)
            time.sleep(OUTAGE_S)
            server = demo_server("--interpreter", interpreter, *flags, port=port).start()
            answered = time.monotonic()
            boots.append(server.boot_seconds)
            page.wait_for_function("window.djreconnect.state === 'connected'", polling=10, timeout=120_000)
            back.append(time.monotonic() - answered)
    finally:
        context.close()
        server.stop()
    return back, boots


def main():
    rows = []
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for interpreter in ("pyodide", "micropython"):
                for label, flags in CONFIGS:
                    back, boots = measure(browser, flags, interpreter)
                    rows.append(
                        [
                            label,
                            interpreter,
                            RUNS,
                            "%s s" % fmt(median(boots), 2),
                            "**%s s**" % fmt(median(back), 2),
                            "%s - %s s" % (fmt(min(back), 2), fmt(max(back), 2)),
                            fmt(median(back) / median(boots), 1),
                        ]
                    )
        finally:
            browser.close()
    body = table(
        [
            "backoff",
            "interpreter",
            "restarts",
            "floor: server spawn -> answers (median)",
            "server answers -> page connected (median)",
            "range",
            "ratio to floor",
        ],
        rows,
    )
    body += (
        "\n\nThe outage is %.0f s (SIGKILL, then the server is started again on the same port). "
        "With the default backoff a page that failed attempts 1-3 during the outage waits a delay drawn "
        "from up to 4 s (attempt 3) or 8 s (attempt 4) before trying again, so the figure spreads widely; "
        "that spread is the point of full jitter (see the herd benchmark). %s. Total %.0f s."
        % (OUTAGE_S, machine(), time.monotonic() - started)
    )
    report("restart", "Server restart: back to dj-connected", body)


if __name__ == "__main__":
    main()
