"""A backend for the boot suites, run as a real process:

    python boot_app.py --port P [--transport ws|sse] [--interpreter pyodide|micropython]
                       [--boot-timeout-ms N] [--interpreter-url URL] [--wheel-url URL]

``/`` serves a view that logs every click, link and submit it gets, in order (its
``#server-state`` shows the log); the other pages fail to start on purpose.
"""

import argparse
import os
from pathlib import Path

from djreconnect import constants
from djreconnect_server import DJReconnect, LiveView, Settings, event_handler

TEMPLATES = Path(__file__).resolve().parent / "boot_templates"


class BootView(LiveView):
    template_name = "boot.html"

    def mount(self, request, **kwargs):
        self.log = []

    @event_handler()
    def clicked(self, n: str = "", **kwargs):
        self.log.append("click " + n)

    @event_handler()
    def followed(self, **kwargs):
        self.log.append("link")

    @event_handler()
    def submitted(self, title: str = "", **kwargs):
        self.log.append("submit " + title)


class OwnErrorsView(BootView):
    """A page whose own scripts fail while the runtime boots."""

    template_name = "own_errors.html"


class BrokenConfigView(BootView):
    """The runtime raises while starting: its settings name a transport that does not exist."""

    template_name = "broken_config.html"


class BrokenEntryView(BootView):
    """A hand-written include whose entry point imports what the wheel does not have."""

    template_name = "broken_entry.html"
    include = {}  # the page's hand-written include: set by create_app

    def get_context(self):
        return dict(BootView.get_context(self), **self.include)


def create_app(transport, interpreter, boot_timeout_ms, interpreter_url=None, wheel_url=None):
    settings = Settings(
        os.environ.get("DJRECONNECT_SECRET_KEY", "boot-suite-secret-key-0123456789"),
        transport=transport,
        interpreter=interpreter,
        boot_timeout_ms=boot_timeout_ms,
        wheel_url=wheel_url,
        **{interpreter + "_url": interpreter_url},
    )
    live = DJReconnect(settings, [TEMPLATES])
    BrokenEntryView.include = {
        "core_js": settings.asset_urls()["pyscript"],
        "script_type": "mpy" if interpreter == constants.INTERPRETER_MICROPYTHON else "py",
        "interpreter": interpreter,
    }
    live.page("/", BootView)
    live.page("/own-errors", OwnErrorsView)
    live.page("/broken-config", BrokenConfigView)
    live.page("/broken-entry", BrokenEntryView)
    return live.app


def main():
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", default=constants.TRANSPORT_WEBSOCKET)
    parser.add_argument("--interpreter", default=constants.INTERPRETER_PYODIDE)
    parser.add_argument("--boot-timeout-ms", type=int, default=constants.DEFAULT_BOOT_TIMEOUT_MS)
    parser.add_argument("--interpreter-url", help="where pages load the interpreter (a broken one, on purpose)")
    parser.add_argument("--wheel-url", help="where pages load the browser wheel (a broken one, on purpose)")
    args = parser.parse_args()
    app = create_app(args.transport, args.interpreter, args.boot_timeout_ms, args.interpreter_url, args.wheel_url)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
