"""A todo list served for the browser suites: forms whose handlers clear their fields.

    python tests/browser/todo_app.py --port P [--transport ws|sse] [--interpreter pyodide|micropython]

The backend is the product's own (DJReconnect + uvicorn); the template is in this file.
"""

import argparse
import asyncio

import jinja2
from djreconnect import constants
from djreconnect_server import DJReconnect, LiveView, Settings, event_handler

SECRET_KEY = "djreconnect-todo-test-secret-key"
# How long add_slowly takes: time enough for a person (or a test) to type after submitting.
SLOW_SECONDS = 0.6

TODO_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>todo</title>
<link rel="icon" href="data:,">
{{ djreconnect_scripts() }}
</head>
<body dj-view="{{ dj_view_id }}">
<div dj-root>
<form id="todo-form" dj-submit="add">
  <input id="todo-text" name="text" value="{{ draft }}" autocomplete="off">
  <input id="todo-done" type="checkbox" name="done"{% if done_default %} checked{% endif %}>
  <button id="todo-add" type="submit">Add</button>
</form>
<form id="bound-form" dj-submit="add_bound">
  <input id="bound-text" name="text" dj-input="type_bound" value="{{ bound_text }}" autocomplete="off">
</form>
<form id="slow-form" dj-submit="add_slowly">
  <input id="slow-text" name="text" value="" autocomplete="off">
</form>
<p><input id="note" name="note" value="{{ note }}" autocomplete="off">
<button id="stamp" type="button" dj-click="stamp">Stamp</button></p>
<ul id="items">
{%- for item in items %}
<li>{{ item }}</li>
{%- endfor %}
</ul>
<pre id="server-state">{{ view.state_json() }}</pre>
</div>
</body>
</html>
"""


class TodoView(LiveView):
    template_name = "todo.html"
    view_name = "todo"

    def mount(self, request, **kwargs):
        self.items = []
        self.draft = ""
        self.done_default = False
        self.bound_text = ""
        self.note = ""
        self.stamps = 0

    @event_handler()
    def add(self, text: str, done: bool = False):
        """The plain todo form: its input is not bound to any state while typing."""
        if text.strip():
            self.items.append(text + (" (done)" if done else ""))
        self.draft = ""

    @event_handler()
    def type_bound(self, value: str):
        self.bound_text = value

    @event_handler()
    def add_bound(self, text: str):
        """A form whose input is bound (dj-input): clearing it is a change of state."""
        if text.strip():
            self.items.append(text)
        self.bound_text = ""

    @event_handler()
    async def add_slowly(self, text: str):
        await asyncio.sleep(SLOW_SECONDS)
        if text.strip():
            self.items.append(text)

    @event_handler()
    def stamp(self):
        """A reply that changes #note's rendered value while the user may be typing in it."""
        self.stamps += 1
        self.note = "stamped %d" % self.stamps


def create(**settings):
    settings.setdefault("secret_key", SECRET_KEY)
    live = DJReconnect(Settings(**settings), [])
    live.templates.environment.loader = jinja2.DictLoader({"todo.html": TODO_HTML})
    live.page("/", TodoView)
    return live


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=constants.TRANSPORTS, default=constants.TRANSPORT_WEBSOCKET)
    parser.add_argument("--interpreter", choices=constants.INTERPRETERS, default=constants.INTERPRETER_PYODIDE)
    args = parser.parse_args(argv)
    import uvicorn

    live = create(transport=args.transport, interpreter=args.interpreter)
    uvicorn.run(live.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
