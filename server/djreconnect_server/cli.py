"""The ``djreconnect`` command: ``djreconnect demo`` runs the example editor."""

import argparse
import sys

from djreconnect import constants
from djreconnect.backoff import Backoff, BackoffError


def _positive(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _above_zero(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="djreconnect", description="Reconnection-resilient LiveView pages.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the example editor backend")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--transport", choices=constants.TRANSPORTS, default=constants.TRANSPORT_WEBSOCKET)
    demo.add_argument("--interpreter", choices=constants.INTERPRETERS, default=constants.INTERPRETER_PYODIDE)
    demo.add_argument("--backoff-min-ms", type=_positive, default=constants.DEFAULT_BACKOFF_MIN_MS)
    demo.add_argument("--backoff-base-ms", type=_positive, default=constants.DEFAULT_BACKOFF_BASE_MS)
    demo.add_argument("--backoff-max-ms", type=_positive, default=constants.DEFAULT_BACKOFF_MAX_MS)
    demo.add_argument("--max-attempts", type=_positive, default=constants.DEFAULT_MAX_ATTEMPTS)
    demo.add_argument("--heartbeat-interval-ms", type=_above_zero, default=constants.DEFAULT_HEARTBEAT_INTERVAL_MS)
    demo.add_argument("--heartbeat-timeout-ms", type=_above_zero, default=constants.DEFAULT_HEARTBEAT_TIMEOUT_MS)
    demo.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another origin whose pages may connect (repeatable), e.g. http://localhost:5000",
    )
    demo.add_argument(
        "--assets",
        choices=constants.ASSET_MODES,
        default=None,
        help="where pages load PyScript and the interpreters from: this backend (local: npm's packages), "
        "the CDN, or auto (local when installed; default, or DJRECONNECT_ASSETS)",
    )
    demo.add_argument("--cdn-url", default=constants.DEFAULT_CDN_URL, help="an npm CDN's base URL (assets=cdn)")
    demo.add_argument(
        "--no-preload", dest="preload", action="store_false", help="no preload links for the interpreter and wheel"
    )
    demo.add_argument("--no-compress", dest="compress", action="store_false", help="serve local assets without gzip")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return run_demo(args)
    return 2


def run_demo(args):
    import uvicorn

    from djreconnect_server.demo import create_app

    try:
        backoff = Backoff(args.backoff_min_ms, args.backoff_base_ms, args.backoff_max_ms, args.max_attempts)
        app = create_app(
            transport=args.transport,
            interpreter=args.interpreter,
            backoff=backoff,
            heartbeat_interval_ms=args.heartbeat_interval_ms,
            heartbeat_timeout_ms=args.heartbeat_timeout_ms,
            allowed_origins=args.allow_origin,
            assets=args.assets,
            cdn_url=args.cdn_url,
            preload=args.preload,
            compress=args.compress,
        )
    except (BackoffError, ValueError, RuntimeError) as error:
        print("djreconnect demo: %s" % error, file=sys.stderr)
        return 2
    print(
        "djreconnect demo on http://%s:%d/ (transport %s, %s, %s assets)"
        % (args.host, args.port, args.transport, args.interpreter, args.assets or "auto"),
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
