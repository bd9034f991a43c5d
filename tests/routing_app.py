"""The demo over SSE on a Redis store, beside a view whose handler waits for a gate, with the
SSE router's bounds given on the command line: for the suite of POSTs routed between
processes.

    python tests/routing_app.py --port P --store redis://... [--max-waiting N] ...

The backend is the product's own (the demo's create_app, served by serving.run); only
the router's limits are set here, on the attributes the router documents.
"""

import argparse
import asyncio

import jinja2
from djreconnect_server import LiveView, event_handler, serving
from djreconnect_server.demo import create_app
from fastapi.responses import JSONResponse

SLOW_VIEW = "slow"
SLOW_HTML = '<div dj-view="{{ dj_view_id }}"><p id="waits">{{ waits }}</p></div>'
# The longest a handler waits for the gate (s).
GATE_WAIT_S = 10.0


class Gate:
    """Handlers waiting until the test opens the gate (``POST /gate``), and how many wait."""

    event = None
    waiting = 0


class SlowView(LiveView):
    """``wait`` holds its POST until the gate opens, then counts."""

    template_name = "slow.html"
    view_name = SLOW_VIEW

    def mount(self, request, **kwargs):
        self.waits = 0

    @event_handler()
    async def wait(self, **kwargs):
        if Gate.event is None:
            Gate.event = asyncio.Event()
        Gate.waiting += 1
        try:
            await asyncio.wait_for(Gate.event.wait(), GATE_WAIT_S)
        finally:
            Gate.waiting -= 1
        self.waits += 1


async def gate_state():
    return JSONResponse({"waiting": Gate.waiting})


async def open_gate():
    """Let the waiting handlers go; the next ones wait again."""
    if Gate.event is not None:
        Gate.event.set()
    Gate.event = asyncio.Event()
    return JSONResponse({"opened": True})


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--max-waiting", type=int)
    parser.add_argument("--max-waiting-bytes", type=int)
    parser.add_argument("--route-timeout-s", type=float)
    args = parser.parse_args(argv)
    app = create_app(transport="sse", store=args.store)
    live = app.state.djreconnect
    live.templates.environment.loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"slow.html": SLOW_HTML}), live.templates.environment.loader]
    )
    live.register(SlowView, public=True)
    app.add_api_route("/gate", gate_state, methods=["GET"])
    app.add_api_route("/gate", open_gate, methods=["POST"])
    router = live.sse.router
    if args.max_waiting is not None:
        router.max_waiting = args.max_waiting
    if args.max_waiting_bytes is not None:
        router.max_waiting_bytes = args.max_waiting_bytes
    if args.route_timeout_s is not None:
        router.timeout_s = args.route_timeout_s
    serving.run(app, port=args.port, settings=live.settings, log_level="warning")


if __name__ == "__main__":
    main()
