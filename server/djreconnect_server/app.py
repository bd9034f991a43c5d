"""The backend: a FastAPI app serving view pages, the live WebSocket, and the browser assets."""

import logging
import mimetypes
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from djreconnect import constants, protocol

from djreconnect_server.live import LiveConnection
from djreconnect_server.signing import MountSigner
from djreconnect_server.templating import Templates, pyscript_config
from djreconnect_server.views import LiveView

log = logging.getLogger("djreconnect")

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/zip", ".whl")


def _public_assets(directory):
    """Static files any origin may load (a static page elsewhere includes them)."""
    return CORSMiddleware(StaticFiles(directory=directory), allow_origins=["*"], allow_methods=["GET"])


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
        prefix = settings.prefix
        self.app.add_api_websocket_route(prefix + constants.PATH_WEBSOCKET, self.websocket)
        self.app.add_api_route(prefix + "/pyscript.json", self.pyscript_json, methods=["GET"])
        if not settings.cdn_base_url:
            self.app.mount(prefix + "/pyodide", _public_assets(settings.pyodide_dir), name="djreconnect-pyodide")
            self.app.mount(prefix + "/pyscript", _public_assets(settings.pyscript_dir), name="djreconnect-pyscript")
            self.app.mount(prefix + "/wheels", _public_assets(settings.wheels_dir), name="djreconnect-wheels")

    # --- views ------------------------------------------------------------------

    def register(self, view_cls):
        if not (isinstance(view_cls, type) and issubclass(view_cls, LiveView)):
            raise TypeError("%r is not a LiveView subclass" % (view_cls,))
        known = self.views.get(view_cls.view_name)
        if known is not None and known is not view_cls:
            raise ValueError("two views are named %r" % (view_cls.view_name,))
        self.views[view_cls.view_name] = view_cls
        return view_cls

    def page(self, path, view_cls):
        """Serve ``view_cls`` at ``path``: server-rendered HTML, mounted live by the runtime."""
        self.register(view_cls)

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
        base = self.settings.cdn_base_url or str(request.base_url).rstrip("/") + self.settings.prefix
        return JSONResponse(pyscript_config(self.settings, base), headers={"Access-Control-Allow-Origin": "*"})

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
        live = LiveConnection(self.views, self.templates, self.signer, self.settings, websocket)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    frames = [
                        protocol.encode(
                            protocol.Error(code="bad_frame", message="frames must be text, not binary")
                        )
                    ]
                else:
                    frames = await self._receive(live, text)
                for frame in frames:
                    await websocket.send_text(frame)
        except WebSocketDisconnect:
            return

    async def _receive(self, live, text):
        try:
            return await live.receive(text)
        except Exception:
            log.exception("a frame could not be handled")
            error = protocol.Error(code="internal_error", message="the server could not handle that frame")
            return [protocol.encode(error)]
