"""The ``djreconnect`` command: ``djreconnect demo`` runs the example editor."""

import argparse
import sys
from collections.abc import Iterable, Sequence

from djreconnect import constants
from djreconnect.backoff import Backoff, BackoffError

from djreconnect_server.serving import DEFAULT_HEADER_TIMEOUT_S
from djreconnect_server.settings import DEFAULT_BODY_TIMEOUT_S


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _above_zero(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds > 0")
    return value


def demo_trusted_hosts(host: str, port: int, extra: Iterable[str] = ()) -> list[str]:
    """The hosts the demo answers for: its bind address and port, this machine's names
    on that port when it listens on loopback or on every interface, and ``extra``."""
    bracketed = "[%s]" % host if ":" in host and not host.startswith("[") else host
    hosts = ["%s:%d" % (bracketed, port)]
    if host in ("127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0", "::", "[::]"):
        hosts += ["%s:%d" % (name, port) for name in ("localhost", "127.0.0.1", "[::1]")]
    hosts += list(extra)
    return list(dict.fromkeys(hosts))


def build_parser() -> argparse.ArgumentParser:
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
    demo.add_argument("--connect-timeout-ms", type=_above_zero, default=constants.DEFAULT_CONNECT_TIMEOUT_MS)
    demo.add_argument(
        "--banner-delay-ms",
        type=_positive,
        default=constants.DEFAULT_BANNER_DELAY_MS,
        help="how long a drop goes unshown (0: the banner at once)",
    )
    demo.add_argument(
        "--restart-window-ms",
        type=_positive,
        default=constants.DEFAULT_RESTART_WINDOW_MS,
        help="pages told that this server restarts reconnect at a random moment within this window",
    )
    demo.add_argument(
        "--store",
        default=constants.DEFAULT_STORE,
        metavar="URL",
        help="where sessions wait for their page: memory (default), sqlite:///PATH or redis://HOST:PORT/DB",
    )
    demo.add_argument(
        "--session-retention-s",
        type=_positive,
        default=constants.DEFAULT_SESSION_RETENTION_S,
        help="how long a session outlives its connection",
    )
    demo.add_argument("--max-retained-sessions", type=_positive, default=constants.DEFAULT_MAX_RETAINED_SESSIONS)
    demo.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another origin whose pages may connect (repeatable), e.g. http://localhost:5000",
    )
    demo.add_argument(
        "--banner-reconnecting",
        default=constants.DEFAULT_BANNER_RECONNECTING,
        metavar="TEXT",
        help="the reconnecting banner's words; {attempt} and {max} are filled in (default: %(default)r)",
    )
    demo.add_argument(
        "--banner-failed",
        default=constants.DEFAULT_BANNER_FAILED,
        metavar="TEXT",
        help="the failed banner's words; {reason}, {attempt}, {max} are filled in (default: %(default)r)",
    )
    demo.add_argument(
        "--banner-retry",
        default=constants.DEFAULT_BANNER_RETRY,
        metavar="TEXT",
        help="the failed banner's button (default: %(default)r)",
    )
    demo.add_argument(
        "--trusted-host",
        action="append",
        default=[],
        metavar="HOST",
        help="another Host the demo answers for (repeatable): name, name:port or *.domain; "
        "by default only its bind address and port (and localhost forms of it)",
    )
    demo.add_argument(
        "--header-timeout-s",
        type=_seconds,
        default=DEFAULT_HEADER_TIMEOUT_S,
        help="time a connection has to send a request head (default %(default)s)",
    )
    demo.add_argument(
        "--body-timeout-s",
        type=_seconds,
        default=DEFAULT_BODY_TIMEOUT_S,
        help="time a POST has to send its body (default %(default)s)",
    )
    demo.add_argument(
        "--limit-concurrency",
        type=_above_zero,
        default=None,
        help="connections served at once (default: from the open-file limit, raised to its hard limit)",
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return run_demo(args)
    return 2


def run_demo(args: argparse.Namespace) -> int:
    from djreconnect_server import serving
    from djreconnect_server.demo import create_app

    try:
        backoff = Backoff(args.backoff_min_ms, args.backoff_base_ms, args.backoff_max_ms, args.max_attempts)
        app = create_app(
            transport=args.transport,
            interpreter=args.interpreter,
            backoff=backoff,
            heartbeat_interval_ms=args.heartbeat_interval_ms,
            heartbeat_timeout_ms=args.heartbeat_timeout_ms,
            connect_timeout_ms=args.connect_timeout_ms,
            banner_delay_ms=args.banner_delay_ms,
            restart_window_ms=args.restart_window_ms,
            store=args.store,
            session_retention_s=args.session_retention_s,
            max_retained_sessions=args.max_retained_sessions,
            allowed_origins=args.allow_origin,
            banner_reconnecting=args.banner_reconnecting,
            banner_failed=args.banner_failed,
            banner_retry=args.banner_retry,
            trusted_hosts=demo_trusted_hosts(args.host, args.port, args.trusted_host),
            body_timeout_s=args.body_timeout_s,
            assets=args.assets,
            cdn_url=args.cdn_url,
            preload=args.preload,
            compress=args.compress,
        )
    except (BackoffError, ValueError, RuntimeError) as error:
        print("djreconnect demo: %s" % error, file=sys.stderr)
        return 2
    fd_limit = serving.raise_open_file_limit()
    limit = args.limit_concurrency or serving.connection_limit(fd_limit)
    print(
        "djreconnect demo on http://%s:%d/ (transport %s, %s, %s assets; at most %d connections, open-file limit %d)"
        % (args.host, args.port, args.transport, args.interpreter, args.assets or "auto", limit, fd_limit),
        flush=True,
    )
    if args.host in ("0.0.0.0", "::"):
        print("djreconnect demo: reached by another name or address? add --trusted-host NAME:%d" % args.port)
    serving.run(
        app,
        host=args.host,
        port=args.port,
        settings=app.state.djreconnect.settings,
        limit_concurrency=limit,
        header_timeout_s=args.header_timeout_s,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
