"""Backend settings: transport, timing, where the browser assets come from, limits."""

import os
from pathlib import Path

from djreconnect import constants
from djreconnect.backoff import Backoff

from djreconnect_server import npm

# A checkout keeps npm's assets and the built wheel beside the packages.
_CHECKOUT = npm.CHECKOUT
# The browser wheel the distribution carries (built when the distribution is).
_BUNDLED_WHEELS = Path(__file__).resolve().parent / "wheels"


def wheel_name():
    """The browser wheel's file name: the version of the client package this server speaks."""
    from djreconnect import __version__

    return "djreconnect-%s-py3-none-any.whl" % __version__


class Settings:
    """Everything configurable about a djreconnect backend.

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
        secret_key,
        transport=constants.TRANSPORT_WEBSOCKET,
        interpreter=constants.INTERPRETER_PYODIDE,
        backoff=None,
        heartbeat_interval_ms=constants.DEFAULT_HEARTBEAT_INTERVAL_MS,
        heartbeat_timeout_ms=constants.DEFAULT_HEARTBEAT_TIMEOUT_MS,
        prefix=constants.DEFAULT_PREFIX,
        public_url="",
        allowed_origins=(),
        max_frame_bytes=constants.DEFAULT_MAX_FRAME_BYTES,
        max_frames_per_second=100,
        max_frame_burst=1000,
        max_views=32,
        assets=None,
        cdn_url=constants.DEFAULT_CDN_URL,
        pyscript_url=None,
        pyodide_url=None,
        micropython_url=None,
        wheel_url=None,
        node_modules_dir=None,
        wheels_dir=None,
        preload=True,
        compress=True,
        boot_timeout_ms=constants.DEFAULT_BOOT_TIMEOUT_MS,
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
            ("heartbeat_interval_ms", heartbeat_interval_ms),
            ("heartbeat_timeout_ms", heartbeat_timeout_ms),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
                raise ValueError("%s must be a finite number > 0, not %r" % (name, value))
        self.secret_key = secret_key
        self.transport = transport
        self.interpreter = interpreter
        self.backoff = backoff if backoff is not None else Backoff()
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        self.prefix = prefix
        self.public_url = public_url.rstrip("/")
        self.allowed_origins = tuple(origin.rstrip("/") for origin in allowed_origins)
        self.max_frame_bytes = max_frame_bytes
        # A flood closes the connection (4029); a burst allows a recovery that replays
        # many fields at once.
        self.max_frames_per_second = max_frames_per_second
        self.max_frame_burst = max_frame_burst
        self.max_views = max_views
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
        self._packages = None

    # --- where pages load their assets from ---------------------------------------

    def _served_packages(self):
        """The npm packages whose URLs this backend decides (not set one by one)."""
        return [key for key in npm.PACKAGES if not self.asset_overrides[key]]

    def _installed_locally(self):
        return all(
            (npm.package_path(key, self.node_modules_dir) / npm.PACKAGES[key]["entry"]).is_file()
            for key in self._served_packages()
        )

    def packages(self):
        """Per npm package: its version and (PyScript) the modules a page always loads."""
        if self._packages is None:
            packages = {}
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

    def package_url(self, key, base):
        """The folder a package's page files are loaded from (``base``: the backend's
        URL and prefix, as pages see it)."""
        path = npm.cdn_path(key, self.packages()[key]["version"])
        if self.assets == constants.ASSETS_CDN:
            return self.cdn_url + "/" + path
        return base + constants.PATH_NPM + "/" + path

    def asset_urls(self, base=None):
        """Every URL a page loads, by name: ``pyscript`` (core.js), ``pyscript_css``,
        ``pyodide``, ``micropython`` (their .mjs) and ``wheel``."""
        base = self.public_url + self.prefix if base is None else base
        urls = {}
        for key, package in npm.PACKAGES.items():
            urls[key] = self.asset_overrides[key] or self.package_url(key, base) + "/" + package["entry"]
        urls["pyscript_css"] = urls["pyscript"].rsplit("/", 1)[0] + "/core.css"
        urls["wheel"] = self.asset_overrides["wheel"] or base + constants.PATH_WHEELS + "/" + wheel_name()
        return urls

    def integrity(self, base=None):
        """Subresource Integrity values by URL, for the CDN files this release pins."""
        if self.assets != constants.ASSETS_CDN:
            return {}
        hashes = {}
        for key in self._served_packages():
            folder = self.package_url(key, base)
            for name, value in self.packages()[key]["integrity"].items():
                hashes[folder + "/" + name] = value
        return hashes

    def preloads(self, interpreter=None, base=None):
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

    def wheel_file(self):
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

    def check_assets(self):
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

    def client_config(self):
        """The runtime settings a page's include carries."""
        return {
            "url": self.public_url,
            "prefix": self.prefix,
            "transport": self.transport,
            "backoff": self.backoff.to_dict(),
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "heartbeat_timeout_ms": self.heartbeat_timeout_ms,
        }
