"""A form whose handlers are slow, served for the browser suites: every field echoes what
its last event sent back into its render, a while after the event (time enough for a
person, or a test, to type on and click elsewhere before the replies come).

    python tests/browser/typing_app.py --port P [--transport ws|sse] [--interpreter pyodide|micropython]
        [--slow-ms MS]

The backend is the product's own (DJReconnect + uvicorn); the template is in this file.
"""

import argparse
import asyncio

import jinja2
from djreconnect import constants
from djreconnect_server import DJReconnect, LiveView, Settings, event_handler

SECRET_KEY = "djreconnect-typing-test-secret-key"
# How long each handler takes: several keystrokes' worth.
SLOW_SECONDS = 0.2

TYPING_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>typing</title>
<link rel="icon" href="data:,">
{{ djreconnect_scripts() }}
</head>
<body dj-view="{{ dj_view_id }}">
<div dj-root>
<input id="title" name="title" dj-input="type_title" value="{{ title }}" autocomplete="off">
<textarea id="body" name="body" dj-input="type_body">{{ body }}</textarea>
<input id="done" type="checkbox" name="done" dj-change="toggle_done"{% if done %} checked{% endif %}>
<select id="size" name="size" dj-change="pick_size">
{%- for option in sizes %}
<option value="{{ option }}"{% if option == size %} selected{% endif %}>{{ option }}</option>
{%- endfor %}
</select>
<fieldset id="priority">
{%- for option in priorities %}
<input id="priority-{{ option }}" type="radio" name="priority" value="{{ option }}" dj-change="pick_priority"
  {%- if option == priority %} checked{% endif %}>
{%- endfor %}
</fieldset>
<input id="code" name="code" dj-input="type_code" value="{{ code }}" autocomplete="off">
<button id="elsewhere" type="button">Elsewhere</button>
<button id="save" type="button" dj-click="save">Save</button>
<pre id="server-state">{{ view.state_json() }}</pre>
</div>
</body>
</html>
"""


class TypingView(LiveView):
    template_name = "typing.html"
    view_name = "typing"
    slow_seconds = SLOW_SECONDS  # --slow-ms

    def mount(self, request, **kwargs):
        self.title = ""
        self.body = ""
        self.done = False
        self.size = "s"
        self.sizes = ["s", "m", "l", "xl"]
        self.priority = "low"
        self.priorities = ["low", "mid", "high"]
        self.code = ""
        self.events = 0  # events handled, of every field
        self.saved = []

    async def _slowly(self):
        await asyncio.sleep(self.slow_seconds)
        self.events += 1

    @event_handler()
    async def type_title(self, value: str):
        await self._slowly()
        self.title = value

    @event_handler()
    async def type_body(self, value: str):
        await self._slowly()
        self.body = value

    @event_handler()
    async def toggle_done(self, value: bool):
        await self._slowly()
        self.done = value

    @event_handler()
    async def pick_size(self, value: str):
        await self._slowly()
        self.size = value

    @event_handler()
    async def pick_priority(self, value: str):
        await self._slowly()
        self.priority = value

    @event_handler()
    async def type_code(self, value: str):
        """The server's answer differs from what was typed: codes are upper case."""
        await self._slowly()
        self.code = value.upper()

    @event_handler()
    def save(self):
        """A click whose handler reads the title the server holds."""
        self.saved.append(self.title)


def create(**settings):
    settings.setdefault("secret_key", SECRET_KEY)
    # (The handlers' awaits are not work the connection is charged for: the default budget.)
    live = DJReconnect(Settings(**settings), [])
    live.templates.environment.loader = jinja2.DictLoader({"typing.html": TYPING_HTML})
    live.page("/", TypingView)
    return live


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=constants.TRANSPORTS, default=constants.TRANSPORT_WEBSOCKET)
    parser.add_argument("--interpreter", choices=constants.INTERPRETERS, default=constants.INTERPRETER_PYODIDE)
    parser.add_argument("--slow-ms", type=int, default=int(SLOW_SECONDS * 1000), help="how long each handler takes")
    args = parser.parse_args(argv)
    TypingView.slow_seconds = args.slow_ms / 1000
    import uvicorn

    live = create(transport=args.transport, interpreter=args.interpreter)
    uvicorn.run(live.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
