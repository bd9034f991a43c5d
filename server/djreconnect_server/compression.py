"""gzip for the static assets a backend serves itself (``assets="local"``): each
compressible file is compressed once, on its first request, and kept in a bounded cache."""

import gzip
import mimetypes
import os
from collections import OrderedDict

import anyio
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from djreconnect_server.headers import cache_control

# Text and wasm shrink to 20-45%; the wheel and python_stdlib.zip are zips already.
COMPRESSIBLE = (".js", ".mjs", ".wasm", ".json", ".css")
GZIP_LEVEL = 6
# Bounds of the cache: Pyodide, MicroPython and PyScript together take about 4.3 MB gzipped.
GZIP_CACHE_FILES = 64
GZIP_CACHE_BYTES = 32 << 20
GZIP_MAX_FILE_BYTES = 32 << 20  # larger files are served as they are
# A cached file: (path, size, modification time in ns).
CacheKey = tuple[str, int, int]


class GzipCache:
    """Compressed file bodies by (path, size, mtime): at most ``max_files`` files and
    ``max_bytes`` bytes of compressed data; past either, the least recently used go."""

    def __init__(self, max_files: int = GZIP_CACHE_FILES, max_bytes: int = GZIP_CACHE_BYTES) -> None:
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.entries: OrderedDict[CacheKey, bytes] = OrderedDict()
        self.bytes = 0
        self.compressing: dict[CacheKey, anyio.Lock] = {}  # key -> lock, while a file is being compressed

    async def get(self, path: str, stat: os.stat_result) -> bytes:
        key = (path, stat.st_size, stat.st_mtime_ns)
        body = self.entries.get(key)
        if body is not None:
            self.entries.move_to_end(key)
            return body
        lock = self.compressing.setdefault(key, anyio.Lock())
        async with lock:  # one compression per file, even when many ask at once
            body = self.entries.get(key)
            if body is None:
                body = await anyio.to_thread.run_sync(_compress, path)
                self._keep(key, body)
        self.compressing.pop(key, None)
        return body

    def _keep(self, key: CacheKey, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        self.entries[key] = body
        self.bytes += len(body)
        while len(self.entries) > self.max_files or self.bytes > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= len(dropped)


def _compress(path: str) -> bytes:
    with open(path, "rb") as source:
        return gzip.compress(source.read(), GZIP_LEVEL, mtime=0)


class Gzipped:
    """A StaticFiles app whose compressible files go out gzipped to clients that accept it
    (whole GETs only; ranges, HEAD and other clients get the file as it is)."""

    def __init__(self, files: StaticFiles, cache: GzipCache) -> None:
        self.files = files
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.files(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if (
            scope["method"] != "GET"
            or "gzip" not in headers.get("accept-encoding", "")
            or "range" in headers
            or not scope["path"].endswith(COMPRESSIBLE)
        ):
            await self.files(scope, receive, send)
            return
        path = self.files.get_path(scope)
        allowed = getattr(self.files, "allowed", None)  # an allow-list of the files app, if it has one
        if allowed is not None and not allowed(path):
            await self.files(scope, receive, send)  # which refuses it
            return
        full_path, stat = await anyio.to_thread.run_sync(self.files.lookup_path, path)
        if stat is None or not 0 < stat.st_size <= GZIP_MAX_FILE_BYTES:
            await self.files(scope, receive, send)
            return
        etag = '"%x-%x-gz"' % (stat.st_mtime_ns, stat.st_size)
        common = {"etag": etag, "vary": "Accept-Encoding"}
        versioned = getattr(self.files, "versioned", None)  # the files app's cache policy, if it has one
        if versioned is not None:
            common["cache-control"] = cache_control(versioned(path))
        if etag in headers.get("if-none-match", ""):
            await Response(status_code=304, headers=common)(scope, receive, send)
            return
        body = await self.cache.get(full_path, stat)
        media_type = mimetypes.guess_type(full_path)[0] or "application/octet-stream"
        response = Response(body, media_type=media_type, headers=dict(common, **{"content-encoding": "gzip"}))
        await response(scope, receive, send)
