"""What the suites that serve real pages need from the setup command: npm's assets and the
built browser wheel, and a marker that skips a module without them."""

from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
NODE_MODULES = CHECKOUT / "node_modules"
WHEELS = CHECKOUT / "wheels"
KEY = "a-test-secret-key-of-some-length"

needs_built_assets = pytest.mark.skipif(
    not (NODE_MODULES / "pyodide" / "pyodide.mjs").is_file() or not list(WHEELS.glob("djreconnect-*.whl")),
    reason="needs `npm ci` and a built wheel in wheels/ (the setup command does both)",
)


def asset_path(key, name, prefix="/djreconnect"):
    """The URL path a backend serves one of npm's files at (``assets="local"``): versioned,
    laid out as on an npm CDN (``key``: ``pyodide``, ``micropython`` or ``pyscript``)."""
    from djreconnect_server import npm

    version = npm.installed_version(key, NODE_MODULES)
    return "%s/npm/%s/%s" % (prefix, npm.cdn_path(key, version), name)
