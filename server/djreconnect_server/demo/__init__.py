"""The demo: the reconnection-resilient editor, with every kind of recoverable field."""

import os
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from markupsafe import escape

from djreconnect_server.app import DJReconnect
from djreconnect_server.demo import editor
from djreconnect_server.demo.editor import COMMENTS_TOPIC, CommentBoard, EditorView, RedisCommentBoard
from djreconnect_server.settings import Settings

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Used when DJRECONNECT_SECRET_KEY is not set. Fine for a demo on localhost only:
# anyone who knows it can forge mount grants.
DEMO_SECRET_KEY = "djreconnect-demo-secret-key-not-for-production"
_BASE_HREF = re.compile(r'<base href="[^"]*">')
PYODIDE_SCRIPT = '<script type="py" config="djreconnect/pyscript.json">'
MICROPYTHON_SCRIPT = '<script type="mpy" config="djreconnect/pyscript.json?interpreter=micropython">'


def point_static_page(html: str, backend_url: str, interpreter: str) -> str:
    """index.html set up for a backend: its one URL, and the interpreter's script tag."""
    href = escape(backend_url.rstrip("/") + "/")
    html = _BASE_HREF.sub(lambda _: '<base href="%s">' % href, html, count=1)
    if interpreter == "micropython":
        html = html.replace(PYODIDE_SCRIPT, MICROPYTHON_SCRIPT, 1)
    return html


def create_app(**settings: Any) -> FastAPI:
    """The demo backend; ``settings`` are passed to Settings."""
    settings.setdefault("secret_key", os.environ.get("DJRECONNECT_SECRET_KEY", DEMO_SECRET_KEY))
    live = DJReconnect(Settings(**settings), [TEMPLATES])
    if live.sessions.store.shared:
        # Several processes: the comments live in Redis beside the sessions.
        board: CommentBoard = RedisCommentBoard(live.settings.store)
        live.hub.listen(COMMENTS_TOPIC, board.refresh)
        live.app.router.on_startup.append(board.refresh)
    else:
        board = CommentBoard()
    editor.use_board(board)
    # Public: index.html, a static page on another origin, mounts it without a grant.
    live.page("/", EditorView, public=True)
    static_page = live.settings.node_modules_dir.parent / "index.html"

    async def index_html(request: Request) -> Response:
        """The static include example, pointed at this backend (as the request reached it,
        once its host is known to be trusted)."""
        origin = live.own_url(request)
        if origin is None:
            return PlainTextResponse("Invalid host header", status_code=400)
        html = static_page.read_text(encoding="utf-8")
        return HTMLResponse(point_static_page(html, origin, live.settings.interpreter))

    if static_page.is_file():
        live.app.add_api_route("/index.html", index_html, methods=["GET"], response_class=HTMLResponse)
    return live.app
