"""The backend: a FastAPI app serving view pages, the live WebSocket, and the browser assets."""

import asyncio
import logging
import mimetypes

from djreconnect import constants
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.websockets import WebSocketDisconnect

from djreconnect_server import assets
from djreconnect_server.headers import SecurityHeadersMiddleware
from djreconnect_server.hosts import TrustedHostMiddleware, parse_host
from djreconnect_server.live import LiveConnection
from djreconnect_server.serving import install_log_filter
from djreconnect_server.signing import MountSigner
from djreconnect_server.sse import HEADER_CSRF, HEADER_SESSION, SSEHub, refused_stream
from djreconnect_server.templating import Templates, pyscript_config
from djreconnect_server.views import LiveView

log = logging.getLogger("djreconnect")

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/zip", ".whl")


class DJReconnect:
    """A djreconnect backend on a FastAPI app (a new one unless ``app`` is given).

    ``page(path, ViewClass)`` serves a view as a page; ``register(ViewClass)`` makes
    a view mountable by name only (from a static page's ``dj-view``).
    """

    def __init__(self, settings, template_dirs, app=None):
        settings.check_assets()
        self.settings = settings
        self.templates = Templates(settings, template_dirs)
        self.signer = MountSigner(settings.secret_key)
        self.views = {}
        self.app = app if app is not None else FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        self.app.state.djreconnect = self
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
        if not settings.cdn_base_url:
            # Only what the runtime loads; see assets.py for the lists and cache policy.
            mounts = (
                ("pyodide", settings.pyodide_dir, assets.pyodide_file, assets.unversioned),
                ("micropython", settings.micropython_dir, assets.micropython_file, assets.unversioned),
                ("pyscript", settings.pyscript_dir, assets.pyscript_file, assets.pyscript_chunk),
                ("wheels", settings.wheels_dir, assets.wheel_file, assets.unversioned),
            )
            for name, directory, allowed, versioned in mounts:
                files = assets.public_assets(directory, allowed, versioned)
                self.app.mount(prefix + "/" + name, files, name="djreconnect-" + name)
        # Outermost last: a request for an untrusted host is refused before anything runs.
        self.app.add_middleware(SecurityHeadersMiddleware)
        self.app.add_middleware(TrustedHostMiddleware, trusted=settings.trusted_hosts)
        install_log_filter()

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

    def own_url(self, request):
        """The backend's URL for links it hands out: ``public_url``, else the origin the
        request was sent to, rebuilt from its ``Host`` once that is trusted; None if not."""
        if self.settings.public_url:
            return self.settings.public_url
        host = request.headers.get("host")
        parsed = parse_host(host)
        if parsed is None or not self.settings.trusted_hosts.allows_host_header(host):
            return None
        name, port = parsed
        return "%s://%s" % (request.url.scheme, name if port is None else "%s:%d" % (name, port))

    async def pyscript_json(self, request: Request):
        """PyScript's config with absolute URLs, for static pages on other origins
        (PyScript resolves the URLs in its config against the page, not the backend)."""
        base = self.settings.cdn_base_url
        if not base:
            own = self.own_url(request)
            if own is None:
                return Response("Invalid host header", status_code=400, media_type="text/plain")
            base = own + self.settings.prefix
        interpreter = request.query_params.get("interpreter", self.settings.interpreter)
        if interpreter not in constants.INTERPRETERS:
            return Response("unknown interpreter %r" % interpreter, status_code=400, media_type="text/plain")
        config = pyscript_config(self.settings, base, interpreter)
        return JSONResponse(config, headers={"Access-Control-Allow-Origin": "*"})

    # --- the live connection ------------------------------------------------------

    def origin_allowed(self, connection):
        """Whether a page on the request's ``Origin`` may use the live connection: one of
        ``allowed_origins``, or the backend's own origin (a trusted host, and the one the
        request was sent to)."""
        origin = connection.headers.get("origin")
        if origin is None:
            return True  # not a browser: origins only guard browsers against other sites
        origin = origin.rstrip("/")
        if origin in self.settings.allowed_origins or "*" in self.settings.allowed_origins:
            return True
        return self.settings.trusted_hosts.own_origin(origin, connection.headers.get("host"))

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
        """The request body; None once it exceeds ``max_frame_bytes`` (read no further);
        TimeoutError when it takes longer than ``body_timeout_s`` to arrive."""
        limit = self.settings.max_frame_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks, size = [], 0
        async with asyncio.timeout(self.settings.body_timeout_s):
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
        try:
            body = await self._bounded_body(request)
        except TimeoutError:
            # The rest of the body may still be on its way: this connection is done.
            return Response(
                "request body not received within %g s" % self.settings.body_timeout_s,
                status_code=408,
                media_type="text/plain",
                headers={"Connection": "close"},
            )
        if body is None:
            return Response("request too large", status_code=413, media_type="text/plain")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return Response("frames must be UTF-8 text", status_code=400, media_type="text/plain")
        await self.sse.post(session, text)
        return Response(status_code=204)
