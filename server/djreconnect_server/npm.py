"""The browser's assets: which npm packages (PyScript, Pyodide, MicroPython) pages load,
their pinned versions and Subresource Integrity hashes, and where each file's URL points.

The manifest (versions, hashes, the chunks to preload) is computed from npm's files
when the distribution is built (the build hook imports this module by path, so it
uses the standard library only) and ships as ``_assets.json`` beside this module.
In a checkout without that file it is computed from ``package.json`` and
``node_modules`` on first use.
"""

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any, TypedDict

MANIFEST_FORMAT = 1
MANIFEST_FILE = Path(__file__).resolve().parent / "_assets.json"
# A checkout keeps package.json and node_modules beside the packages.
CHECKOUT = Path(__file__).resolve().parents[2]


class NpmPackage(TypedDict):
    npm: str  # the package's name on npm
    dir: str  # the folder inside it that pages load from ("" for its top)
    entry: str  # the file a page loads first
    files: tuple[str, ...]  # the files a page loads (entry first)


# name in settings -> npm package, the directory inside it that pages load from,
# the files a page loads (entry first), and what the hash covers.
PACKAGES: dict[str, NpmPackage] = {
    "pyscript": {
        "npm": "@pyscript/core",
        "dir": "dist",
        "entry": "core.js",
        "files": ("core.js", "core.css"),
    },
    "pyodide": {
        "npm": "pyodide",
        "dir": "",
        "entry": "pyodide.mjs",
        "files": ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"),
    },
    "micropython": {
        "npm": "@micropython/micropython-webassembly-pyscript",
        "dir": "",
        "entry": "micropython.mjs",
        "files": ("micropython.mjs", "micropython.wasm"),
    },
}

_STATIC_IMPORT = re.compile(r"""\b(?:from|import)\s*["']\./([\w.-]+\.js)["']""")
_DYNAMIC_IMPORT = re.compile(r"""\bimport\s*\(\s*["']\./([\w.-]+\.js)["']\s*\)""")
# PyScript chunks loaded only on demand (editor, TOML configs, package lists).
_ON_DEMAND = ("codemirror", "toml-", "pyodide_graph-")


class AssetError(RuntimeError):
    """npm's files are missing or do not match the pinned versions."""


def integrity(data: bytes) -> str:
    """A Subresource Integrity value (sha384) for ``data``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def pinned_versions(root: str | Path = CHECKOUT) -> dict[str, str]:
    """The versions ``package.json`` pins, by npm name."""
    path = Path(root) / "package.json"
    try:
        versions: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))["dependencies"]
        return versions
    except (OSError, ValueError, KeyError) as error:
        raise AssetError("cannot read the pinned versions from %s: %s" % (path, error)) from None


def pyscript_modules(dist: str | Path) -> list[str]:
    """PyScript's modules that every page loads: core.js with what it imports, and the
    chunks those import at start (its plugins; ``zip`` unpacks wheels on MicroPython)."""
    dist = Path(dist)
    static: list[str] = []
    todo = ["core.js"]
    started: list[str] = []
    while todo:
        name = todo.pop(0)
        if name in static:
            continue
        static.append(name)
        text = (dist / name).read_text(encoding="utf-8", errors="replace")
        todo += _STATIC_IMPORT.findall(text)
        started += [found for found in _DYNAMIC_IMPORT.findall(text) if not found.startswith(_ON_DEMAND)]
    return static + [name for name in dict.fromkeys(started) if name not in static]


def build_manifest(root: str | Path = CHECKOUT, node_modules: str | Path | None = None) -> dict[str, Any]:
    """The manifest from npm's installed files (raises AssetError naming what to run)."""
    root = Path(root)
    node_modules = Path(node_modules) if node_modules else root / "node_modules"
    pins = pinned_versions(root)
    packages: dict[str, dict[str, Any]] = {}
    for key, package in PACKAGES.items():
        npm = package["npm"]
        folder = node_modules / npm
        try:
            installed = json.loads((folder / "package.json").read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError):
            raise AssetError("%s is not installed in %s: run `npm ci`" % (npm, node_modules)) from None
        if installed != pins.get(npm):
            raise AssetError(
                "%s %s in %s is not the pinned %s: run `npm ci`" % (npm, installed, node_modules, pins.get(npm))
            )
        base = folder / package["dir"]
        files = list(package["files"])
        modules: list[str] = []
        if key == "pyscript":
            modules = pyscript_modules(base)
            files += [name for name in sorted(p.name for p in base.glob("*.js")) if name not in files]
        hashes: dict[str, str] = {}
        for name in files:
            try:
                hashes[name] = integrity((base / name).read_bytes())
            except OSError:
                raise AssetError("%s is missing: run `npm ci`" % (base / name)) from None
        packages[key] = {"npm": npm, "version": installed, "dir": package["dir"], "integrity": hashes}
        if modules:
            packages[key]["modules"] = modules
    return {"format": MANIFEST_FORMAT, "packages": packages}


_manifest: dict[str, Any] | None = None


def manifest() -> dict[str, Any]:
    """The shipped manifest, or (in a checkout) one computed from node_modules."""
    global _manifest
    if _manifest is None:
        if MANIFEST_FILE.is_file():
            loaded: dict[str, Any] = json.loads(MANIFEST_FILE.read_text(encoding="utf-8"))
            if loaded.get("format") != MANIFEST_FORMAT:
                raise AssetError("%s has format %r, not %d" % (MANIFEST_FILE, loaded.get("format"), MANIFEST_FORMAT))
            _manifest = loaded
        else:
            _manifest = build_manifest()
    return _manifest


def pinned() -> dict[str, str]:
    """The pinned versions by npm name: from the shipped manifest, or ``package.json``."""
    if MANIFEST_FILE.is_file():
        return {p["npm"]: p["version"] for p in manifest()["packages"].values()}
    return pinned_versions()


def npm_install_command(directory: str | Path = "DIR") -> str:
    """The command that installs the pinned packages under ``directory``/node_modules."""
    try:
        versions = pinned()
    except AssetError:
        versions = {}
    specs = " ".join(
        "%s@%s" % (p["npm"], versions[p["npm"]]) if p["npm"] in versions else p["npm"] for p in PACKAGES.values()
    )
    return "npm install --no-save --prefix %s %s" % (directory, specs)


def package_path(key: str, node_modules: str | Path) -> Path:
    """The directory a package's page files are served from, inside ``node_modules``."""
    package = PACKAGES[key]
    return Path(node_modules) / package["npm"] / package["dir"]


def installed_version(key: str, node_modules: str | Path) -> str | None:
    """The version installed in ``node_modules``, or None when it is not there."""
    try:
        text = (Path(node_modules) / PACKAGES[key]["npm"] / "package.json").read_text(encoding="utf-8")
        version: str = json.loads(text)["version"]
        return version
    except (OSError, ValueError, KeyError):
        return None


def cdn_path(key: str, version: str | None) -> str:
    """A file's directory on an npm CDN, relative to its base: ``@pyscript/core@0.7.31/dist``."""
    package = PACKAGES[key]
    path = "%s@%s" % (package["npm"], version)
    return path + "/" + package["dir"] if package["dir"] else path
