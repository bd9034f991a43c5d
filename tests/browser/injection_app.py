"""A backend for the patch-injection suite: user-supplied text rendered inside SVG and
MathML elements, and foreign, table and select children added by patches.

    python tests/browser/injection_app.py --port P [--transport ws|sse] [--interpreter pyodide|micropython]

It is the product's own backend (DJReconnect on uvicorn) with one view; the suite starts
it as a real process, like the demo.
"""

import argparse
from pathlib import Path

from djreconnect import constants
from djreconnect_server import DJReconnect, LiveView, Settings, event_handler

SECRET_KEY = "djreconnect-injection-suite-secret-key"
TEMPLATES = Path(__file__).resolve().parent / "templates"
# In SVG and MathML these are ordinary elements whose text the parser does not read raw.
FOREIGN_ROOTS = ("svg", "math")
RAW_TEXT_NAMES = ("style", "script", "xmp", "iframe", "noembed", "noframes")


class InjectionView(LiveView):
    """``payload`` is shown in every foreign context; ``shapes`` adds children to an
    <svg>, a <math>, a <tbody> and a <select>."""

    template_name = "injection.html"
    view_name = "injection"

    def mount(self, request, **kwargs):
        self.payload = ""
        self.version = 0
        self.shapes = 0

    def get_context(self):
        context = LiveView.get_context(self)
        context.update(roots=FOREIGN_ROOTS, tags=RAW_TEXT_NAMES)
        return context

    @event_handler()
    def inject(self, payload: str = "", **kwargs):
        self.payload = payload
        self.version += 1

    @event_handler()
    def add_shapes(self, **kwargs):
        self.shapes += 1
        self.version += 1


def create_app(transport=constants.TRANSPORT_WEBSOCKET, interpreter=constants.INTERPRETER_PYODIDE):
    settings = Settings(secret_key=SECRET_KEY, transport=transport, interpreter=interpreter)
    live = DJReconnect(settings, [TEMPLATES])
    live.page("/", InjectionView, public=True)
    return live.app


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=constants.TRANSPORTS, default=constants.TRANSPORT_WEBSOCKET)
    parser.add_argument("--interpreter", choices=constants.INTERPRETERS, default=constants.INTERPRETER_PYODIDE)
    args = parser.parse_args(argv)
    import uvicorn

    app = create_app(args.transport, args.interpreter)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
