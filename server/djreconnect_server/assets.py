"""The browser assets a backend serves: only the files the runtime loads, with their cache policy.

npm's packages hold more than the runtime needs (Pyodide's ``console.html`` is a page
that would run on the backend's origin, source maps, other builds); anything not on
these lists is 404. The lists are what a page of each interpreter requests, as seen in
Chromium (the browser suites boot every combination through them).
"""

import os
import re
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

from djreconnect_server.compression import GzipCache, Gzipped
from djreconnect_server.headers import cache_control

PYODIDE_FILES = frozenset(
    ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
)
MICROPYTHON_FILES = frozenset(("micropython.mjs", "micropython.wasm"))
PYSCRIPT_FILES = frozenset(("core.js", "core.css"))
# PyScript's chunks are named by content hash (core-C9KDLldu.js): such a URL is versioned.
PYSCRIPT_CHUNK = re.compile(
    r"(?:core|deprecations-manager|donkey|error|py-editor|py-game|py-terminal|zip)-[A-Za-z0-9_-]{6,16}\.js"
)
WHEEL = re.compile(r"djreconnect-[A-Za-z0-9_.+]+-py3-none-any\.whl")
# A test on a file's name (its path under the served folder).
NameTest = Callable[[str], bool]


def pyodide_file(name: str) -> bool:
    return name in PYODIDE_FILES


def micropython_file(name: str) -> bool:
    return name in MICROPYTHON_FILES


def pyscript_file(name: str) -> bool:
    return name in PYSCRIPT_FILES or pyscript_chunk(name)


def pyscript_chunk(name: str) -> bool:
    return PYSCRIPT_CHUNK.fullmatch(name) is not None


def wheel_file(name: str) -> bool:
    return WHEEL.fullmatch(name) is not None


def unversioned(name: str) -> bool:
    return False


def versioned(name: str) -> bool:
    """Every file under a URL that carries its package's version (``/npm/NAME@VERSION/``)."""
    return True


# The allow-list of each npm package's files, by its key in ``npm.PACKAGES``.
ALLOWED: dict[str, NameTest] = {"pyodide": pyodide_file, "micropython": micropython_file, "pyscript": pyscript_file}


class AssetFiles(StaticFiles):
    """Files of ``directory`` for which ``allowed(name)`` holds (else 404), each with the
    Cache-Control that ``versioned(name)`` calls for (see ``headers.cache_control``)."""

    def __init__(self, directory: str | os.PathLike[str], allowed: NameTest, versioned: NameTest = unversioned) -> None:
        super().__init__(directory=directory)
        self.allowed = allowed
        self.versioned = versioned

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not self.allowed(path):
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = cache_control(self.versioned(path))
        return response


def public_assets(
    directory: str | os.PathLike[str],
    allowed: NameTest,
    versioned: NameTest = unversioned,
    gzip_cache: GzipCache | None = None,
) -> ASGIApp:
    """``AssetFiles`` that any origin may load (a static page elsewhere includes them);
    compressible ones gzipped when ``gzip_cache`` is given."""
    files = AssetFiles(directory, allowed, versioned)
    served: ASGIApp = files if gzip_cache is None else Gzipped(files, gzip_cache)
    return CORSMiddleware(served, allow_origins=["*"], allow_methods=["GET"])
