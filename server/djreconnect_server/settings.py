"""Backend settings: transport, timing, where the browser assets come from, limits."""

import os
from pathlib import Path
from urllib.parse import urlsplit

from djreconnect import constants
from djreconnect.backoff import Backoff
from djreconnect.banner import BannerTexts
from djreconnect.connection import Settings as ConnectionSettings

from djreconnect_server.hosts import DEFAULT_PORTS, LOCAL_HOSTS, TrustedHosts
from djreconnect_server.stores import check_store_url

# A checkout keeps npm's assets and the built wheel beside the packages.
_CHECKOUT = Path(__file__).resolve().parents[2]
# How long a POST may take to send its body (seconds); past it, 408.
DEFAULT_BODY_TIMEOUT_S = 20.0


def default_trusted_hosts(public_url):
    """The hosts a backend answers for unless told: ``public_url``'s, or this machine's."""
    if public_url:
        url = urlsplit(public_url)
        try:
            host, port = url.hostname, url.port
        except ValueError:
            host = None
        if not host or url.scheme not in ("http", "https"):
            raise ValueError("public_url must be an absolute URL like https://example.com, not %r" % (public_url,))
        host = "[%s]" % host if ":" in host else host
        # A browser leaves the scheme's default port out of Host; any other port is kept.
        return [host if port in (None, DEFAULT_PORTS[url.scheme]) else "%s:%d" % (host, port)]
    return list(LOCAL_HOSTS)


class Settings:
    """Everything configurable about a djreconnect backend.

    ``banner_reconnecting``, ``banner_failed`` and ``banner_retry`` are the reconnection
    banner's words, with placeholders ``{attempt}``, ``{max}`` and (failed) ``{reason}``
    (see ``djreconnect.banner``); a bad one is a ValueError here, not a broken page.

    ``cdn_base_url``, when set, replaces the backend's own asset URLs: Pyodide is
    loaded from ``{cdn}/pyodide/``, PyScript from ``{cdn}/pyscript/`` and the wheel
    from ``{cdn}/wheels/`` (a mirror of the backend's layout under its prefix).

    ``trusted_hosts`` are the hosts the backend answers for (``Host`` header); any other
    gets 400. By default: the host of ``public_url`` when it is set, else this machine's
    own names (``localhost``, ``127.0.0.1``, ``[::1]``), so a backend reached under any
    other name must list it. ``body_timeout_s`` bounds the reading of a POSTed body.
    """

    def __init__(
        self,
        secret_key,
        transport=constants.TRANSPORT_WEBSOCKET,
        interpreter=constants.INTERPRETER_PYODIDE,
        backoff=None,
        heartbeat_interval_ms=constants.DEFAULT_HEARTBEAT_INTERVAL_MS,
        heartbeat_timeout_ms=constants.DEFAULT_HEARTBEAT_TIMEOUT_MS,
        connect_timeout_ms=constants.DEFAULT_CONNECT_TIMEOUT_MS,
        prefix=constants.DEFAULT_PREFIX,
        cdn_base_url=None,
        public_url="",
        allowed_origins=(),
        trusted_hosts=None,
        max_frame_bytes=constants.DEFAULT_MAX_FRAME_BYTES,
        max_frames_per_second=100,
        max_frame_burst=1000,
        max_views=32,
        max_work_per_second=200,
        max_work_burst=400,
        max_render_bytes=1 << 20,
        max_session_render_bytes=4 << 20,
        max_page_html_bytes=256 << 10,
        max_page_html_depth=256,
        max_stream_buffer_bytes=4 << 20,
        banner_delay_ms=constants.DEFAULT_BANNER_DELAY_MS,
        restart_window_ms=constants.DEFAULT_RESTART_WINDOW_MS,
        store=constants.DEFAULT_STORE,
        session_retention_s=constants.DEFAULT_SESSION_RETENTION_S,
        max_retained_sessions=constants.DEFAULT_MAX_RETAINED_SESSIONS,
        max_retained_bytes=constants.DEFAULT_MAX_RETAINED_BYTES,
        body_timeout_s=DEFAULT_BODY_TIMEOUT_S,
        node_modules_dir=None,
        wheels_dir=None,
        banner_reconnecting=constants.DEFAULT_BANNER_RECONNECTING,
        banner_failed=constants.DEFAULT_BANNER_FAILED,
        banner_retry=constants.DEFAULT_BANNER_RETRY,
    ):
        if not isinstance(secret_key, str) or len(secret_key) < 16:
            raise ValueError("secret_key must be a string of at least 16 characters")
        if transport not in constants.TRANSPORTS:
            raise ValueError("transport must be one of %s, not %r" % (", ".join(constants.TRANSPORTS), transport))
        if interpreter not in constants.INTERPRETERS:
            raise ValueError("interpreter must be one of %s, not %r" % (", ".join(constants.INTERPRETERS), interpreter))
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError("prefix must start with '/' and not end with one: %r" % (prefix,))
        for name, value in (
            ("max_work_per_second", max_work_per_second),
            ("max_work_burst", max_work_burst),
            ("max_render_bytes", max_render_bytes),
            ("max_session_render_bytes", max_session_render_bytes),
            ("max_page_html_bytes", max_page_html_bytes),
            ("max_page_html_depth", max_page_html_depth),
            ("max_stream_buffer_bytes", max_stream_buffer_bytes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError("%s must be a whole number > 0, not %r" % (name, value))
        if (
            not isinstance(body_timeout_s, (int, float))
            or isinstance(body_timeout_s, bool)
            or not (0 < body_timeout_s < float("inf"))
        ):
            raise ValueError("body_timeout_s must be a finite number > 0, not %r" % (body_timeout_s,))
        check_store_url(store)
        # The runtime's timing, validated once, by the class the runtime reads it with.
        self.timing = ConnectionSettings(
            backoff=backoff if backoff is not None else Backoff(),
            heartbeat_interval_ms=heartbeat_interval_ms,
            heartbeat_timeout_ms=heartbeat_timeout_ms,
            connect_timeout_ms=connect_timeout_ms,
            banner_delay_ms=banner_delay_ms,
            restart_window_ms=restart_window_ms,
        )
        self.secret_key = secret_key
        self.transport = transport
        self.interpreter = interpreter
        self.backoff = self.timing.backoff
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        self.prefix = prefix
        self.cdn_base_url = cdn_base_url.rstrip("/") if cdn_base_url else None
        self.public_url = public_url.rstrip("/")
        self.allowed_origins = tuple(origin.rstrip("/") for origin in allowed_origins)
        if trusted_hosts is None:
            trusted_hosts = default_trusted_hosts(self.public_url)
        self.trusted_hosts = TrustedHosts(trusted_hosts)
        self.max_frame_bytes = max_frame_bytes
        # A flood closes the connection (4029); a burst allows a recovery that replays
        # many fields at once.
        self.max_frames_per_second = max_frames_per_second
        self.max_frame_burst = max_frame_burst
        self.max_views = max_views
        # Work a connection may cause (units: one per event, per 16 KiB rendered, per ms
        # of handler and render time); past it the connection waits, it is not dropped.
        self.max_work_per_second = max_work_per_second
        self.max_work_burst = max_work_burst
        # One view's render, and what a session holds of renders (two per view).
        self.max_render_bytes = max_render_bytes
        self.max_session_render_bytes = max_session_render_bytes
        # HTML a page sends of what it shows: parsed only within these bounds, else the
        # view is rendered whole (an HTML parser is quadratic in nesting depth).
        self.max_page_html_bytes = max_page_html_bytes
        self.max_page_html_depth = max_page_html_depth
        # SSE: frames waiting for a page that does not read its stream.
        self.max_stream_buffer_bytes = max_stream_buffer_bytes
        # Sessions: where they wait for their page, for how long, and how many of them.
        self.store = store
        self.session_retention_s = session_retention_s
        self.max_retained_sessions = max_retained_sessions
        self.max_retained_bytes = max_retained_bytes
        self.body_timeout_s = body_timeout_s
        self.node_modules_dir = Path(
            node_modules_dir or os.environ.get("DJRECONNECT_NODE_MODULES") or _CHECKOUT / "node_modules"
        )
        self.wheels_dir = Path(wheels_dir or os.environ.get("DJRECONNECT_WHEELS") or _CHECKOUT / "wheels")
        # The reconnection banner's words, for every page (a page's include may override them).
        self.banner = BannerTexts(banner_reconnecting, banner_failed, banner_retry)

    def idle_timeout_s(self):
        """How long a connection may stay silent before the server drops it (its session
        is kept): two heartbeat periods, since a live page pings every interval."""
        return 2 * (self.heartbeat_interval_ms + self.heartbeat_timeout_ms) / 1000

    @property
    def pyodide_dir(self):
        return self.node_modules_dir / "pyodide"

    @property
    def micropython_dir(self):
        return self.node_modules_dir / "@micropython" / "micropython-webassembly-pyscript"

    @property
    def pyscript_dir(self):
        return self.node_modules_dir / "@pyscript" / "core" / "dist"

    def asset_base(self):
        """Where assets are fetched from: the CDN, or the backend's prefix."""
        return self.cdn_base_url or (self.public_url + self.prefix)

    def wheel_file(self):
        """The newest built browser wheel, or a clear error telling how to build it."""
        wheels = sorted(self.wheels_dir.glob("djreconnect-*-py3-none-any.whl"))
        if not wheels:
            raise RuntimeError(
                "no browser wheel in %s: build it with "
                "`pip wheel --no-deps -w wheels browser` (the setup command does)" % self.wheels_dir
            )
        return wheels[-1]

    def check_assets(self):
        """Raise a clear error when npm's assets or the wheel are missing (served locally)."""
        if self.cdn_base_url:
            return
        needed_files = (
            self.pyodide_dir / "pyodide.mjs",
            self.micropython_dir / "micropython.mjs",
            self.pyscript_dir / "core.js",
        )
        for needed in needed_files:
            if not needed.is_file():
                raise RuntimeError("missing %s: run `npm ci` (the setup command does)" % needed)
        self.wheel_file()

    def client_config(self):
        """The runtime settings a page's include carries."""
        config = {"url": self.public_url, "prefix": self.prefix, "transport": self.transport}
        config.update(self.timing.to_dict())
        config.update(self.banner.to_config())
        return config
