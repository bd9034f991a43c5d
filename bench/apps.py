"""Views defined for the benchmarks, and a command that serves them.

    python bench/apps.py table --port P                 # /: a 1,000-row table
    python bench/apps.py form --port P [--burst B]      # /form/N: N text inputs
        [--session-retention-s S] [--work-budget U]     # (either kind) Settings for sessions, pacing

Their templates are written into bench/results/templates at import; the backend is the
product's own (DJReconnect + uvicorn), nothing else.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))

from djreconnect_server import DJReconnect, LiveView, Settings, event_handler  # noqa: E402

SECRET_KEY = "djreconnect-bench-secret-key-for-localhost"
ROWS = 1000
CHANGED_ROW = ROWS // 2

TABLE_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>table bench</title>
<link rel="icon" href="data:,">
{{ djreconnect_scripts() }}
</head>
<body dj-view="{{ dj_view_id }}">
<div dj-root>
<p><button id="one" type="button" dj-click="change_one">one row</button>
<button id="all" type="button" dj-click="change_all">every row</button></p>
<table id="rows">
<thead><tr><th>id</th><th>label</th><th>value</th></tr></thead>
<tbody>
{%- for row in rows %}
<tr><td>{{ row.id }}</td><td>{{ row.label }}</td><td class="v">{{ row.value }}</td></tr>
{%- endfor %}
</tbody>
</table>
</div>
</body>
</html>
"""

FORM_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>form bench</title>
<link rel="icon" href="data:,">
{{ djreconnect_scripts() }}
</head>
<body dj-view="{{ dj_view_id }}">
<div dj-root>
<p>Synced: <span id="synced">{{ synced }}</span> of {{ values|length }}
<button id="reset" type="button" dj-click="reset">reset</button></p>
<form>
{%- for value in values %}
<input name="f{{ loop.index0 }}" dj-change="set_field" dj-value-index="{{ loop.index0 }}" value="{{ value }}">
{%- endfor %}
</form>
</div>
</body>
</html>
"""

# Under bench/results (gitignored): a server killed with SIGKILL leaves nothing in /tmp.
TEMPLATES = Path(__file__).resolve().parent / "results" / "templates"
TEMPLATES.mkdir(parents=True, exist_ok=True)
for _name, _text in (("table.html", TABLE_HTML), ("form.html", FORM_HTML)):
    _path = TEMPLATES / _name
    if not _path.is_file() or _path.read_text() != _text:
        _path.write_text(_text)


class TableView(LiveView):
    """A 1,000-row table; one handler changes one row, another every row."""

    template_name = "table.html"
    view_name = "table"

    def mount(self, request, **kwargs):
        self.rows = [{"id": i, "label": "Row number %d" % i, "value": 0} for i in range(ROWS)]

    @event_handler()
    def change_one(self, **kwargs):
        self.rows[CHANGED_ROW]["value"] += 1

    @event_handler()
    def change_all(self, **kwargs):
        for row in self.rows:
            row["value"] += 1


class FormView(LiveView):
    """N text inputs, each sending dj-change="set_field"; ``synced`` counts those set."""

    template_name = "form.html"
    view_name = "form"

    def mount(self, request, n="10", **kwargs):
        self.values = [""] * max(1, min(int(n), 5000))

    def get_context(self):
        context = LiveView.get_context(self)
        context["synced"] = sum(1 for value in self.values if value)
        return context

    @event_handler()
    def set_field(self, index: str = "0", value: str = "", **kwargs):
        self.values[int(index)] = value

    @event_handler()
    def reset(self, **kwargs):
        """Every value emptied (between runs on one page)."""
        self.values = [""] * len(self.values)


def create(kind, burst=None, retention_s=None, work_budget=None):
    extra = {}
    if work_budget is not None:
        extra["max_work_per_second"] = extra["max_work_burst"] = work_budget
    if burst is not None:
        extra["max_frame_burst"] = burst
    if retention_s is not None:
        extra["session_retention_s"] = retention_s
    live = DJReconnect(Settings(secret_key=SECRET_KEY, **extra), [TEMPLATES])
    if kind == "table":
        live.page("/", TableView)
    else:
        live.page("/", FormView)  # the probe's page
        live.page("/form/{n}", FormView)
    return live


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("table", "form"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--burst", type=int, default=None, help="Settings.max_frame_burst")
    parser.add_argument(
        "--session-retention-s", type=float, default=None, help="Settings.session_retention_s (0: never resume)"
    )
    parser.add_argument("--work-budget", type=int, default=None, help="Settings.max_work_per_second and max_work_burst")
    args = parser.parse_args(argv)
    import uvicorn

    live = create(args.kind, args.burst, args.session_retention_s, args.work_budget)
    uvicorn.run(live.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
