"""Backend settings: transport, timing, where the browser assets come from, limits."""

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from djreconnect import constants
from djreconnect.backoff import Backoff
from djreconnect.banner import BannerTexts
from djreconnect.connection import Settings as ConnectionSettings

from djreconnect_server import npm
from djreconnect_server.hosts import DEFAULT_PORTS, LOCAL_HOSTS, TrustedHosts
from djreconnect_server.stores import check_store_url

# A checkout keeps npm's assets and the built wheel beside the packages.
_CHECKOUT = npm.CHECKOUT
# The browser wheel the distribution carries (built when the distribution is).
_BUNDLED_WHEELS = Path(__file__).resolve().parent / "wheels"
# How long a POST may take to send its body (seconds); past it, 408.
DEFAULT_BODY_TIMEOUT_S = 20.0


def default_trusted_hosts(public_url: str) -> list[str]:
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


def wheel_name() -> str:
    """The browser wheel's file name: the version of the client package this server speaks."""
    from djreconnect import __version__

    return "djreconnect-%s-py3-none-any.whl" % __version__


class Settings:
    """Everything configurable about a djreconnect backend.

    Not the runtime's ``djreconnect.connection.Settings`` (its reconnection timing,
    imported here as ``ConnectionSettings``): this one holds one of those, as ``timing``,
    and sends it to every page.

    ``banner_reconnecting``, ``banner_failed`` and ``banner_retry`` are the reconnection
    banner's words, with placeholders ``{attempt}``, ``{max}`` and (failed) ``{reason}``
    (see ``djreconnect.banner``); a bad one is a ValueError here, not a broken page.

    ``trusted_hosts`` are the hosts the backend answers for (``Host`` header); any other
    gets 400. By default: the host of ``public_url`` when it is set, else this machine's
    own names (``localhost``, ``127.0.0.1``, ``[::1]``), so a backend reached under any
    other name must list it. ``body_timeout_s`` bounds the reading of a POSTed body.


    Where pages load PyScript, the interpreter and the browser wheel from: ``assets``
    is ``"cdn"`` (PyScript, Pyodide and MicroPython from ``cdn_url``, an npm CDN, at the
    versions this release pins, with Subresource Integrity), ``"local"`` (the backend
    serves them from ``node_modules_dir`` under ``{prefix}/npm/``), or ``"auto"`` (the
    default: local when they are installed there, else the CDN). Each of
    ``pyscript_url``, ``pyodide_url``, ``micropython_url`` and ``wheel_url`` replaces
    that one URL. The wheel is served by the backend at
    ``{prefix}/wheels/djreconnect-VERSION-py3-none-any.whl`` unless ``wheel_url`` is set.
    """

    def __init__(
        self,
        secret_key: str,
        transport: str = constants.TRANSPORT_WEBSOCKET,
        interpreter: str = constants.INTERPRETER_PYODIDE,
        backoff: Backoff | None = None,
        heartbeat_interval_ms: int = constants.DEFAULT_HEARTBEAT_INTERVAL_MS,
        heartbeat_timeout_ms: int = constants.DEFAULT_HEARTBEAT_TIMEOUT_MS,
        connect_timeout_ms: int = constants.DEFAULT_CONNECT_TIMEOUT_MS,
        prefix: str = constants.DEFAULT_PREFIX,
        public_url: str = "",
        allowed_origins: Iterable[str] = (),
        trusted_hosts: str | Iterable[str] | None = None,
        max_frame_bytes: int = constants.DEFAULT_MAX_FRAME_BYTES,
        max_frames_per_second: float = 100,
        max_frame_burst: float = 1000,
        max_views: int = 32,
        max_work_per_second: int = 200,
        max_work_burst: int = 400,
        max_render_bytes: int = 1 << 20,
        max_session_render_bytes: int = 4 << 20,
        max_page_html_bytes: int = 256 << 10,
        max_page_html_depth: int = 256,
        max_stream_buffer_bytes: int = 4 << 20,
        banner_delay_ms: int = constants.DEFAULT_BANNER_DELAY_MS,
        restart_window_ms: int = constants.DEFAULT_RESTART_WINDOW_MS,
        store: str = constants.DEFAULT_STORE,
        session_retention_s: float = constants.DEFAULT_SESSION_RETENTION_S,
        max_retained_sessions: int = constants.DEFAULT_MAX_RETAINED_SESSIONS,
        max_retained_bytes: int = constants.DEFAULT_MAX_RETAINED_BYTES,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
        banner_reconnecting: str = constants.DEFAULT_BANNER_RECONNECTING,
        banner_failed: str = constants.DEFAULT_BANNER_FAILED,
        banner_retry: str = constants.DEFAULT_BANNER_RETRY,
        assets: str | None = None,
        cdn_url: str = constants.DEFAULT_CDN_URL,
        pyscript_url: str | None = None,
        pyodide_url: str | None = None,
        micropython_url: str | None = None,
        wheel_url: str | None = None,
        node_modules_dir: str | os.PathLike[str] | None = None,
        wheels_dir: str | os.PathLike[str] | None = None,
        preload: bool = True,
        compress: bool = True,
        boot_timeout_ms: int = constants.DEFAULT_BOOT_TIMEOUT_MS,
    ) -> None:
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
        # its handlers' own code runs and per ms of render); past it the connection
        # waits, it is not dropped.
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
        # The reconnection banner's words, for every page (a page's include may override them).
        self.banner = BannerTexts(banner_reconnecting, banner_failed, banner_retry)
        if assets is None:
            assets = os.environ.get("DJRECONNECT_ASSETS") or constants.ASSETS_AUTO
        if assets not in constants.ASSET_MODES:
            raise ValueError("assets must be one of %s, not %r" % (", ".join(constants.ASSET_MODES), assets))
        if not isinstance(boot_timeout_ms, int) or isinstance(boot_timeout_ms, bool) or boot_timeout_ms <= 0:
            raise ValueError("boot_timeout_ms must be an int > 0, not %r" % (boot_timeout_ms,))
        self.cdn_url = cdn_url.rstrip("/")
        # URLs set one by one; None: what ``assets`` gives.
        self.asset_overrides = {
            "pyscript": pyscript_url,
            "pyodide": pyodide_url,
            "micropython": micropython_url,
            "wheel": wheel_url,
        }
        self.node_modules_dir = Path(
            node_modules_dir or os.environ.get("DJRECONNECT_NODE_MODULES") or _CHECKOUT / "node_modules"
        )
        wheels_dir = wheels_dir or os.environ.get("DJRECONNECT_WHEELS")
        self.wheels_dir = Path(wheels_dir) if wheels_dir else None
        self.preload = bool(preload)
        self.compress = bool(compress)
        self.boot_timeout_ms = boot_timeout_ms
        if assets == constants.ASSETS_AUTO:
            assets = constants.ASSETS_LOCAL if self._installed_locally() else constants.ASSETS_CDN
        self.assets = assets
        self._packages: dict[str, dict[str, Any]] | None = None

    def idle_timeout_s(self) -> float:
        """How long a connection may stay silent before the server drops it (its session
        is kept): two heartbeat periods, since a live page pings every interval."""
        return 2 * (self.heartbeat_interval_ms + self.heartbeat_timeout_ms) / 1000

    # --- where pages load their assets from ---------------------------------------

    def _served_packages(self) -> list[str]:
        """The npm packages whose URLs this backend decides (not set one by one)."""
        return [key for key in npm.PACKAGES if not self.asset_overrides[key]]

    def _installed_locally(self) -> bool:
        return all(
            (npm.package_path(key, self.node_modules_dir) / npm.PACKAGES[key]["entry"]).is_file()
            for key in self._served_packages()
        )

    def packages(self) -> dict[str, dict[str, Any]]:
        """Per npm package: its version and (PyScript) the modules a page always loads."""
        if self._packages is None:
            packages: dict[str, dict[str, Any]] = {}
            if self.assets == constants.ASSETS_CDN:
                try:
                    manifest = npm.manifest()
                except npm.AssetError as error:
                    raise RuntimeError(
                        "assets='cdn' needs the pinned versions and their hashes (%s): %s; or serve npm's packages "
                        "with Settings(assets='local', node_modules_dir=...)" % (npm.MANIFEST_FILE.name, error)
                    ) from None
                for key, package in manifest["packages"].items():
                    packages[key] = dict(package)
            else:
                for key in npm.PACKAGES:
                    version = npm.installed_version(key, self.node_modules_dir)
                    packages[key] = {"version": version, "integrity": {}}
                    if key == "pyscript" and version is not None:
                        packages[key]["modules"] = npm.pyscript_modules(npm.package_path(key, self.node_modules_dir))
            self._packages = packages
        return self._packages

    def package_url(self, key: str, base: str) -> str:
        """The folder a package's page files are loaded from (``base``: the backend's
        URL and prefix, as pages see it)."""
        path = npm.cdn_path(key, self.packages()[key]["version"])
        if self.assets == constants.ASSETS_CDN:
            return self.cdn_url + "/" + path
        return base + constants.PATH_NPM + "/" + path

    def asset_urls(self, base: str | None = None) -> dict[str, str]:
        """Every URL a page loads, by name: ``pyscript`` (core.js), ``pyscript_css``,
        ``pyodide``, ``micropython`` (their .mjs) and ``wheel``."""
        base = self.public_url + self.prefix if base is None else base
        urls: dict[str, str] = {}
        for key, package in npm.PACKAGES.items():
            urls[key] = self.asset_overrides[key] or self.package_url(key, base) + "/" + package["entry"]
        urls["pyscript_css"] = urls["pyscript"].rsplit("/", 1)[0] + "/core.css"
        urls["wheel"] = self.asset_overrides["wheel"] or base + constants.PATH_WHEELS + "/" + wheel_name()
        return urls

    def integrity(self, base: str | None = None) -> dict[str, str]:
        """Subresource Integrity values by URL, for the CDN files this release pins."""
        if self.assets != constants.ASSETS_CDN:
            return {}
        hashes: dict[str, str] = {}
        for key in self._served_packages():
            folder = self.package_url(key, base or "")  # a CDN's URL: no part of it is base's
            for name, value in self.packages()[key]["integrity"].items():
                hashes[folder + "/" + name] = value
        return hashes

    def preloads(self, interpreter: str | None = None, base: str | None = None) -> list[tuple[str, str]]:
        """What the first HTML can start fetching at once, as (url, "module" | "fetch"):
        PyScript's modules, the interpreter and its files, and the wheel."""
        interpreter = interpreter or self.interpreter
        if not self.preload:
            return []
        urls = self.asset_urls(base)
        found = []
        if not self.asset_overrides["pyscript"]:
            folder = self.package_url("pyscript", base if base is not None else self.public_url + self.prefix)
            modules = self.packages()["pyscript"].get("modules", [])
            if interpreter == constants.INTERPRETER_PYODIDE:
                modules = [name for name in modules if not name.startswith("zip-")]
            found += [(folder + "/" + name, "module") for name in modules]
        found.append((urls[interpreter], "module"))
        if not self.asset_overrides[interpreter]:
            folder = urls[interpreter].rsplit("/", 1)[0]
            for name in npm.PACKAGES[interpreter]["files"][1:]:
                found.append((folder + "/" + name, "module" if name.endswith(".mjs") else "fetch"))
        found.append((urls["wheel"], "fetch"))
        return found

    def wheel_file(self) -> Path:
        """The browser wheel this backend serves, or a clear error saying how to get one."""
        name = wheel_name()
        folders = [self.wheels_dir] if self.wheels_dir is not None else [_BUNDLED_WHEELS, _CHECKOUT / "wheels"]
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
        raise RuntimeError(
            "no browser wheel %s in %s: set Settings(wheels_dir=...) or DJRECONNECT_WHEELS to a folder that "
            "holds it, or Settings(wheel_url=...) to where pages can load it; in a checkout `./dev setup` builds "
            "it (`pip wheel --no-deps -w wheels browser`)" % (name, " or ".join(str(folder) for folder in folders))
        )

    def check_assets(self) -> None:
        """Raise a clear error, naming the setting and what to run, when something a page
        needs cannot be served."""
        if self.assets == constants.ASSETS_LOCAL:
            for key in self._served_packages():
                entry = npm.package_path(key, self.node_modules_dir) / npm.PACKAGES[key]["entry"]
                if not entry.is_file():
                    raise RuntimeError(
                        "assets='local' needs npm's packages in %s (Settings(node_modules_dir=...) or "
                        "DJRECONNECT_NODE_MODULES), and %s is missing: install them with `%s` (in a checkout: "
                        "`npm ci`), or use Settings(assets='cdn')"
                        % (self.node_modules_dir, entry, npm.npm_install_command(self.node_modules_dir.parent))
                    )
        self.packages()
        if not self.asset_overrides["wheel"]:
            self.wheel_file()

    def client_config(self) -> dict[str, Any]:
        """The runtime settings a page's include carries."""
        config = {"url": self.public_url, "prefix": self.prefix, "transport": self.transport}
        config.update(self.timing.to_dict())
        config.update(self.banner.to_config())
        return config
