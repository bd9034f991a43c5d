"""The backend: a FastAPI app serving view pages, the live WebSocket, and the browser assets."""

import asyncio
import logging
import mimetypes
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import uvicorn
from djreconnect import constants
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from djreconnect_server import assets, npm
from djreconnect_server.compression import GzipCache
from djreconnect_server.headers import SecurityHeadersMiddleware
from djreconnect_server.hosts import TrustedHostMiddleware, parse_host
from djreconnect_server.live import LiveConnection, Registry
from djreconnect_server.pubsub import PubSub
from djreconnect_server.redisstore import RedisBus, RedisStore
from djreconnect_server.serving import install_log_filter
from djreconnect_server.sessions import Session, SessionRegistry
from djreconnect_server.settings import Settings
from djreconnect_server.signing import MountSigner
from djreconnect_server.sse import HEADER_CHANNEL, HEADER_CSRF, SSEHub, refused_stream
from djreconnect_server.sseroute import SSERouter
from djreconnect_server.stores import StoreLimits, open_store
from djreconnect_server.templating import Templates, boot_script, pyscript_config
from djreconnect_server.views import LiveView

log = logging.getLogger("djreconnect")

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/zip", ".whl")

View = TypeVar("View", bound=type[LiveView])


class DJReconnect:
    """A djreconnect backend on a FastAPI app (a new one unless ``app`` is given).

    ``page(path, ViewClass)`` serves a view as a page; ``register(ViewClass)`` makes
    a view mountable by name only (from a static page's ``dj-view``).
    """

    def __init__(
        self, settings: Settings, template_dirs: Iterable[str | os.PathLike[str]], app: FastAPI | None = None
    ) -> None:
        settings.check_assets()
        self.settings = settings
        self._boot_js = boot_script(settings)
        self.templates = Templates(settings, template_dirs)
        self.signer = MountSigner(settings.secret_key)
        self.views: Registry = {}
        limits = StoreLimits(settings.session_retention_s, settings.max_retained_sessions, settings.max_retained_bytes)
        self.sessions = SessionRegistry(open_store(settings.store, self.build_view, limits))
        self.hub = PubSub(self.sessions, self._render_pushed)
        self.sessions.on_restore = self.hub.restore
        self.sessions.store.on_drop = self.hub.forget_session
        self.app = app if app is not None else FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        self.app.state.djreconnect = self
        self.live_connections: set[LiveConnection] = set()  # the WebSocket connections open now
        self.draining = False  # shutting down: new connections are told to go elsewhere
        if self.sessions.store.shared:
            # Several processes: broadcasts cross them, and a kept session's pushes are the store's.
            bus = self.hub.bus = RedisBus(settings.store, self.hub.receive)
            self.sessions.on_keep = self.hub.unsubscribe_session
            self.app.router.on_startup.append(self._start_bus)
            self.app.router.on_shutdown.append(bus.close)
        self.app.router.on_shutdown.append(self.sessions.close)
        self.app.state.djreconnect = self
        prefix = settings.prefix
        self.app.add_api_websocket_route(prefix + constants.PATH_WEBSOCKET, self.websocket)
        self.app.add_api_route(prefix + "/pyscript.json", self.pyscript_json, methods=["GET"])
        self.sse = SSEHub(self._live_connection, settings)
        store = self.sessions.store
        if self.hub.bus is not None and isinstance(store, RedisStore):  # a POST may reach another process
            self.sse.router = SSERouter(self.sse, self.hub.bus, store.redis, settings)
            self.app.router.on_startup.append(self.sse.router.start)
            self.app.router.on_shutdown.append(self.sse.router.close)
        self.app.add_api_route(prefix + constants.PATH_SSE, self.sse_stream, methods=["GET"])
        self.app.add_api_route(prefix + constants.PATH_POST, self.sse_post, methods=["POST"])
        if settings.allowed_origins:
            # Pages on the allowed origins POST frames with the channel headers.
            self.app.add_middleware(
                CORSMiddleware,
                allow_origins=list(settings.allowed_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type", HEADER_CHANNEL, HEADER_CSRF],
            )
        self.app.add_api_route(prefix + constants.PATH_BOOT_JS, self.boot_js, methods=["GET"])
        self._mount_assets()
        # Outermost last: a request for an untrusted host is refused before anything runs.
        self.app.add_middleware(SecurityHeadersMiddleware)
        self.app.add_middleware(TrustedHostMiddleware, trusted=settings.trusted_hosts)
        install_log_filter()

    def _mount_assets(self) -> None:
        """Serve what pages load from this backend: npm's packages (local assets) at
        versioned URLs laid out as on an npm CDN, and the browser wheel. Only the files the
        runtime loads are served (see assets.py for the lists and the cache policy)."""
        settings = self.settings
        self.gzip_cache = GzipCache() if settings.compress else None
        if settings.assets == constants.ASSETS_LOCAL:
            base = settings.prefix + constants.PATH_NPM + "/"
            for key, package in settings.packages().items():
                if settings.asset_overrides[key] or package["version"] is None:
                    continue
                directory = npm.package_path(key, settings.node_modules_dir)
                path = base + npm.cdn_path(key, package["version"])
                # The version is in the path: every file of it is immutable.
                served = assets.public_assets(directory, assets.ALLOWED[key], assets.versioned, self.gzip_cache)
                self.app.mount(path, served, name="djreconnect-" + key)
        if not settings.asset_overrides["wheel"]:
            # The wheel's URL is stable but a checkout rebuilds it at the same version:
            # browsers revalidate it (ETag).
            wheels = settings.wheel_file().parent
            served = assets.public_assets(wheels, assets.wheel_file, assets.unversioned)
            self.app.mount(settings.prefix + constants.PATH_WHEELS, served, name="djreconnect-wheels")

    # --- views ------------------------------------------------------------------

    def register(self, view_cls: View, public: bool = False) -> View:
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

    # --- server push ---------------------------------------------------------------

    def broadcast(self, topic: str, message: Any) -> int:
        """Push ``message`` to every view subscribed to ``topic`` (their ``handle_info``),
        connected or away; returns how many. Call it from code on the server's event loop:
        a handler, a route, a background task."""
        return self.hub.broadcast(topic, message)

    async def _start_bus(self) -> None:
        if self.hub.bus is not None:
            self.hub.bus.start()

    # --- deploys -------------------------------------------------------------------

    async def drain(
        self, batch: int = constants.RESTART_BATCH, pause_ms: float = constants.RESTART_BATCH_PAUSE_MS
    ) -> None:
        """A restart on purpose (SIGTERM: call after the server stopped accepting): hand
        every session to the store and close every connection with 1012 and the restart
        hint, ``batch`` at a time, ``pause_ms`` apart. Their pages reconnect within their
        ``restart_window_ms``, to this process again or any other, and resume."""
        self.draining = True
        lives = list(self.live_connections) + [channel.live for channel in list(self.sse.channels.values())]
        for start in range(0, len(lives), batch):
            await asyncio.gather(*(live.restart() for live in lives[start : start + batch]), return_exceptions=True)
            await asyncio.sleep(pause_ms / 1000)
        if lives:
            log.info("restart: %d connections closed with their sessions kept", len(lives))

    async def _render_pushed(self, session: Session, view_id: str) -> None:
        connection = session.connection
        if connection is not None:
            await connection.render_pushed(view_id)

    def build_view(self, name: str, state: dict[str, Any]) -> LiveView | None:
        """A view object of the registered view ``name`` with ``state`` (a session a
        store kept), or None when no view has that name any more."""
        entry = self.views.get(name)
        if entry is None:
            return None
        view = entry[0]()
        view.load_state(state)
        return view

    def page(self, path: str, view_cls: View, public: bool = False) -> View:
        """Serve ``view_cls`` at ``path``: server-rendered HTML, mounted live by the runtime."""
        self.register(view_cls, public)

        async def render_page(request: Request) -> HTMLResponse:
            return HTMLResponse(self.render_page(view_cls, request, dict(request.path_params)))

        render_page.__name__ = "page_" + view_cls.view_name
        self.app.add_api_route(path, render_page, methods=["GET"], response_class=HTMLResponse)
        return view_cls

    def render_page(self, view_cls: type[LiveView], request: HTTPConnection, params: dict[str, Any]) -> str:
        view = view_cls()
        view.mount(request, **params)
        tokens = {view_cls.view_name: self.signer.sign(view_cls.view_name, params)}
        return self.templates.render(view, {"dj_tokens": tokens})

    def own_url(self, request: HTTPConnection) -> str | None:
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

    async def pyscript_json(self, request: Request) -> Response:
        """PyScript's config with absolute URLs, for static pages on other origins
        (PyScript resolves the URLs in its config against the page, not the backend)."""
        own = self.own_url(request)
        if own is None:
            return Response("Invalid host header", status_code=400, media_type="text/plain")
        base = own + self.settings.prefix
        interpreter = request.query_params.get("interpreter", self.settings.interpreter)
        if interpreter not in constants.INTERPRETERS:
            return Response("unknown interpreter %r" % interpreter, status_code=400, media_type="text/plain")
        config = pyscript_config(self.settings, base, interpreter)
        return JSONResponse(config, headers={"Access-Control-Allow-Origin": "*"})

    async def boot_js(self, request: Request) -> Response:
        """The boot loader, for static pages (the include inlines it)."""
        headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}
        return Response(self._boot_js, media_type="text/javascript", headers=headers)

    # --- the live connection ------------------------------------------------------

    def origin_allowed(self, connection: HTTPConnection) -> bool:
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

    async def websocket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        if not self.origin_allowed(websocket):
            await websocket.close(constants.CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
            return
        if self.draining:
            await _close(websocket, constants.CLOSE_SERVICE_RESTART, constants.CLOSE_REASON_RESTART)
            return
        live = self._live_connection(websocket)
        self.live_connections.add(live)
        out = _Outbox(self.settings.max_stream_buffer_bytes)
        closing: list[asyncio.Future[None]] = []

        def kick(code: int, reason: str) -> None:
            # Close this connection from outside its loop (another connection took its
            # session, or its page stopped reading).
            if not closing:
                closing.append(asyncio.ensure_future(_close(websocket, code, reason)))

        out.overflow = lambda: kick(constants.CLOSE_TRY_AGAIN_LATER, "the page is not reading")
        live.kick = kick
        live.emit = out.put
        live.wait_drained = out.drained.wait
        writer = asyncio.ensure_future(out.write(websocket))
        try:
            while True:
                try:
                    message = await asyncio.wait_for(websocket.receive(), self.settings.idle_timeout_s())
                except asyncio.TimeoutError:
                    # Silent past the heartbeat: a dead or half-open peer. Its session waits.
                    await _close(websocket, constants.CLOSE_GOING_AWAY, "no heartbeat")
                    return
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                for frame in await (live.handle(text) if text is not None else live.handle_binary()):
                    out.put(frame)
                if closing:
                    return
                if live.close_code is not None:
                    await out.flush()
                    await _close(websocket, live.close_code, live.close_reason)
                    return
        except (WebSocketDisconnect, RuntimeError):
            return  # closed under us (a kick, or the peer)
        finally:
            self.live_connections.discard(live)
            writer.cancel()
            out.drained.set()  # nothing waits for a socket that is gone
            await live.detach()

    def _live_connection(self, connection: HTTPConnection) -> LiveConnection:
        return LiveConnection(
            self.views, self.templates, self.signer, self.settings, connection, self.sessions, self.hub
        )

    # --- Server-Sent Events ---------------------------------------------------------

    async def sse_stream(self, request: Request) -> Response:
        if not self.origin_allowed(request):
            origin = request.headers.get("origin")
            return refused_stream(origin, constants.CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
        if self.draining:
            return refused_stream(
                request.headers.get("origin"), constants.CLOSE_SERVICE_RESTART, constants.CLOSE_REASON_RESTART
            )
        return self.sse.stream(request)

    async def _bounded_body(self, request: Request) -> bytes | None:
        """The request body; None once it exceeds ``max_frame_bytes`` (read no further);
        TimeoutError when it takes longer than ``body_timeout_s`` to arrive."""
        limit = self.settings.max_frame_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async with asyncio.timeout(self.settings.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
        return b"".join(chunks)

    async def sse_post(self, request: Request) -> Response:
        if not self.origin_allowed(request):
            return Response("origin not allowed", status_code=403, media_type="text/plain")
        channel_id, csrf = request.headers.get(HEADER_CHANNEL), request.headers.get(HEADER_CSRF)
        # Another process holds the stream (the router forwards), or this one does.
        router = self.sse.router if self.sse.remote(channel_id) else None
        channel = None
        if router is None:
            channel, refused = self.sse.find(channel_id, csrf)
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
        if router is not None:
            refused = await router.forward(channel_id, csrf, text)
        else:
            assert channel is not None  # found above
            refused = await self.sse.post(channel, text)
        if refused is not None and refused[0] != 204:
            return Response(refused[1], status_code=refused[0], media_type="text/plain")
        return Response(status_code=204)


class RestartingServer(uvicorn.Server):
    """uvicorn, whose shutdown (SIGTERM: a deploy) first stops accepting, then drains
    the djreconnect backend of its app (``DJReconnect.drain``: sessions to the store,
    connections closed with 1012 and the restart hint, in batches), then shuts down as
    uvicorn does. ``RestartingServer(uvicorn.Config(app, ...)).run()``."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        backend = getattr(getattr(self.config.app, "state", None), "djreconnect", None)
        if backend is not None:
            try:
                await backend.drain()
            except Exception:
                log.exception("draining the connections failed")
        await super().shutdown(sockets)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close a WebSocket with ``code``; a close reason is at most 123 bytes of UTF-8."""
    reason = reason.encode("utf-8")[:120].decode("utf-8", "ignore")
    try:
        await websocket.close(code, reason)
    except RuntimeError:
        pass  # already closed


class _Outbox:
    """A WebSocket's frames on their way out, in order, within ``max_bytes`` (past it,
    ``overflow`` is called: the page is not reading)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.frames: asyncio.Queue[str] = asyncio.Queue()
        self.bytes = 0
        self.drained = asyncio.Event()
        self.drained.set()
        self.overflow: Callable[[], None] | None = None

    def put(self, frame: str) -> None:
        if self.bytes + len(frame) > self.max_bytes:
            if self.overflow is not None:
                self.overflow()
            return
        self.bytes += len(frame)
        self.drained.clear()
        self.frames.put_nowait(frame)

    async def write(self, websocket: WebSocket) -> None:
        try:
            while True:
                frame = await self.frames.get()
                await websocket.send_text(frame)
                self.bytes -= len(frame)
                if self.frames.empty():
                    self.drained.set()
        except (WebSocketDisconnect, RuntimeError):
            return

    async def flush(self, timeout_s: float = 5) -> None:
        try:
            await asyncio.wait_for(self.drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass
