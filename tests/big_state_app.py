"""The demo's editor beside a view holding about 1 MB of state, for the hardening suite
and benchmark: one client works that view hard while another uses the editor.

    python tests/big_state_app.py --port P

The backend is the product's own (DJReconnect on uvicorn, default limits); the big view's
template is in this file.
"""

import argparse

import jinja2
from djreconnect_server import DJReconnect, LiveView, Settings, event_handler
from djreconnect_server.demo import TEMPLATES
from djreconnect_server.demo.editor import EditorView

SECRET_KEY = "djreconnect-big-state-test-secret-key"
# The big view's rows: ROWS rows of ROW_CHARS characters render to about 0.9 MB, within
# the default max_render_bytes (1 MiB); two such views fill a session's render budget.
ROWS = 8000
ROW_CHARS = 100
BIG_VIEW = "big"

BIG_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>big</title><link rel="icon" href="data:,">
{{ djreconnect_scripts() }}</head>
<body dj-view="{{ dj_view_id }}">
<div dj-root>
<p><button id="touch" type="button" dj-click="touch">Touched {{ touches }}</button></p>
<ol id="rows">
{%- for row in rows %}
<li>{{ row }}</li>
{%- endfor %}
</ol>
</div>
</body>
</html>
"""


def row_text(index, touches):
    stamp = "%d.%d " % (index, touches)
    return stamp + "x" * (ROW_CHARS - len(stamp))


class BigView(LiveView):
    """ROWS rows of text; ``touch`` rewrites one row (the render changes a little, and is
    about 1 MB every time)."""

    template_name = "big.html"
    view_name = BIG_VIEW

    def mount(self, request, **kwargs):
        self.touches = 0
        self.rows = [row_text(index, 0) for index in range(ROWS)]

    @event_handler()
    def touch(self, row: int = 0, **kwargs):
        self.touches += 1
        index = row % ROWS
        self.rows[index] = row_text(index, self.touches)


def create(**settings):
    settings.setdefault("secret_key", SECRET_KEY)
    live = DJReconnect(Settings(**settings), [TEMPLATES])
    live.templates.environment.loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"big.html": BIG_HTML}), jinja2.FileSystemLoader(str(TEMPLATES))]
    )
    live.page("/", EditorView, public=True)
    live.page("/big", BigView, public=True)
    return live


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(create().app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
