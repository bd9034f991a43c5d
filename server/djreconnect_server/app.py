"""The backend: a FastAPI app serving view pages, the live WebSocket, and the browser assets."""

import logging
import mimetypes

from djreconnect import constants
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from djreconnect_server import npm
from djreconnect_server.compression import GzipCache, Gzipped
from djreconnect_server.live import LiveConnection
from djreconnect_server.signing import MountSigner
from djreconnect_server.sse import HEADER_CSRF, HEADER_SESSION, SSEHub, refused_stream
from djreconnect_server.templating import Templates, boot_script, pyscript_config
from djreconnect_server.views import LiveView

log = logging.getLogger("djreconnect")

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/zip", ".whl")


# Versioned URLs (the version is in the path) never change; the wheel's stable URL can
# (a checkout rebuilds it at the same version), so browsers revalidate it (ETag).
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"


def _public_assets(directory, cache_control, gzip_cache=None):
    """Static files any origin may load (a static page elsewhere includes them);
    compressible ones gzipped when ``gzip_cache`` is given."""
    files = StaticFiles(directory=directory)
    served = _CacheControl(files if gzip_cache is None else Gzipped(files, gzip_cache), cache_control)
    return CORSMiddleware(served, allow_origins=["*"], allow_methods=["GET"])


class _CacheControl:
    """Sets ``Cache-Control`` on the successful responses of a static mount."""

    def __init__(self, app, value):
        self.app = app
        self.value = value

    async def __call__(self, scope, receive, send):
        async def cached(message):
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers.append((b"cache-control", self.value))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, cached)


class DJReconnect:
    """A djreconnect backend on a FastAPI app (a new one unless ``app`` is given).

    ``page(path, ViewClass)`` serves a view as a page; ``register(ViewClass)`` makes
    a view mountable by name only (from a static page's ``dj-view``).
    """

    def __init__(self, settings, template_dirs, app=None):
        settings.check_assets()
        self.settings = settings
        self._boot_js = boot_script(settings)
        self.templates = Templates(settings, template_dirs)
        self.signer = MountSigner(settings.secret_key)
        self.views = {}
        self.app = app if app is not None else FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        prefix = settings.prefix
        self.app.add_api_websocket_route(prefix + constants.PATH_WEBSOCKET, self.websocket)
        self.app.add_api_route(prefix + "/pyscript.json", self.pyscript_json, methods=["GET"])
        self.sse = SSEHub(self._live_connection)
        self.app.add_api_route(prefix + constants.PATH_SSE, self.sse_stream, methods=["GET"])
        self.app.add_api_route(prefix + constants.PATH_POST, self.sse_post, methods=["POST"])
        if settings.allowed_origins:
            # Pages on the allowed origins POST frames with the session headers.
            self.app.add_middleware(
                CORSMiddleware,
                allow_origins=list(settings.allowed_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type", HEADER_SESSION, HEADER_CSRF],
            )
        self.app.add_api_route(prefix + constants.PATH_BOOT_JS, self.boot_js, methods=["GET"])
        self._mount_assets()

    def _mount_assets(self):
        """Serve what pages load from this backend: npm's packages (local assets) at
        versioned URLs laid out as on an npm CDN, and the browser wheel."""
        settings = self.settings
        self.gzip_cache = GzipCache() if settings.compress else None
        if settings.assets == constants.ASSETS_LOCAL:
            base = settings.prefix + constants.PATH_NPM + "/"
            for key, package in settings.packages().items():
                if settings.asset_overrides[key] or package["version"] is None:
                    continue
                directory = npm.package_path(key, settings.node_modules_dir)
                path = base + npm.cdn_path(key, package["version"])
                served = _public_assets(directory, IMMUTABLE, self.gzip_cache)
                self.app.mount(path, served, name="djreconnect-" + key)
        if not settings.asset_overrides["wheel"]:
            wheels = settings.wheel_file().parent
            self.app.mount(
                settings.prefix + constants.PATH_WHEELS, _public_assets(wheels, REVALIDATE), name="djreconnect-wheels"
            )

    # --- views ------------------------------------------------------------------

    def register(self, view_cls, public=False):
        """Make ``view_cls`` mountable. A page served by ``page`` carries a signed grant
        for its view; only a ``public`` view may be mounted without one (with no mount
        params), as a static page on another origin does."""
        if not (isinstance(view_cls, type) and issubclass(view_cls, LiveView)):
            raise TypeError("%r is not a LiveView subclass" % (view_cls,))
        known = self.views.get(view_cls.view_name)
        if known is not None and known[0] is not view_cls:
            raise ValueError("two views are named %r" % (view_cls.view_name,))
        self.views[view_cls.view_name] = (view_cls, public or (known is not None and known[1]))
        return view_cls

    def page(self, path, view_cls, public=False):
        """Serve ``view_cls`` at ``path``: server-rendered HTML, mounted live by the runtime."""
        self.register(view_cls, public)

        async def render_page(request: Request):
            return HTMLResponse(self.render_page(view_cls, request, dict(request.path_params)))

        render_page.__name__ = "page_" + view_cls.view_name
        self.app.add_api_route(path, render_page, methods=["GET"], response_class=HTMLResponse)
        return view_cls

    def render_page(self, view_cls, request, params):
        view = view_cls()
        view.mount(request, **params)
        tokens = {view_cls.view_name: self.signer.sign(view_cls.view_name, params)}
        return self.templates.render(view, {"dj_tokens": tokens})

    async def pyscript_json(self, request: Request):
        """PyScript's config with absolute URLs, for static pages on other origins
        (PyScript resolves the URLs in its config against the page, not the backend)."""
        base = str(request.base_url).rstrip("/") + self.settings.prefix
        interpreter = request.query_params.get("interpreter", self.settings.interpreter)
        if interpreter not in constants.INTERPRETERS:
            return Response("unknown interpreter %r" % interpreter, status_code=400, media_type="text/plain")
        config = pyscript_config(self.settings, base, interpreter)
        return JSONResponse(config, headers={"Access-Control-Allow-Origin": "*"})

    async def boot_js(self, request: Request):
        """The boot loader, for static pages (the include inlines it)."""
        headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}
        return Response(self._boot_js, media_type="text/javascript", headers=headers)

    # --- the live connection ------------------------------------------------------

    def origin_allowed(self, connection):
        origin = connection.headers.get("origin")
        if origin is None:
            return True  # not a browser: origins only guard browsers against other sites
        origin = origin.rstrip("/")
        if origin in self.settings.allowed_origins or "*" in self.settings.allowed_origins:
            return True
        host = connection.headers.get("host", "")
        return origin in ("http://" + host, "https://" + host)

    async def websocket(self, websocket: WebSocket):
        await websocket.accept()
        if not self.origin_allowed(websocket):
            await websocket.close(constants.CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
            return
        live = self._live_connection(websocket)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                frames = await (live.handle(text) if text is not None else live.handle_binary())
                for frame in frames:
                    await websocket.send_text(frame)
                if live.close_code is not None:
                    # A close reason is at most 123 bytes of UTF-8.
                    reason = live.close_reason.encode("utf-8")[:120].decode("utf-8", "ignore")
                    await websocket.close(live.close_code, reason)
                    return
        except WebSocketDisconnect:
            return

    def _live_connection(self, connection):
        return LiveConnection(self.views, self.templates, self.signer, self.settings, connection)

    # --- Server-Sent Events ---------------------------------------------------------

    async def sse_stream(self, request: Request):
        if not self.origin_allowed(request):
            origin = request.headers.get("origin")
            return refused_stream(origin, constants.CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
        last = request.query_params.get("last_event_id") or request.headers.get("last-event-id")
        try:
            last = int(last) if last is not None else None
        except ValueError:
            last = None
        params = request.query_params
        return self.sse.stream(request, params.get("session"), params.get("key"), last)

    async def _bounded_body(self, request):
        """The request body, or None once it exceeds ``max_frame_bytes`` (read no further)."""
        limit = self.settings.max_frame_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def sse_post(self, request: Request):
        if not self.origin_allowed(request):
            return Response("origin not allowed", status_code=403, media_type="text/plain")
        session, refused = self.sse.find(request.headers.get(HEADER_SESSION), request.headers.get(HEADER_CSRF))
        if refused is not None:
            return Response(refused[1], status_code=refused[0], media_type="text/plain")
        body = await self._bounded_body(request)
        if body is None:
            return Response("request too large", status_code=413, media_type="text/plain")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return Response("frames must be UTF-8 text", status_code=400, media_type="text/plain")
        await self.sse.post(session, text)
        return Response(status_code=204)
