"""A stand-in for a public npm CDN and a static host, as a real process on 127.0.0.1:

    python cdn_server.py PORT NODE_MODULES WHEELS

npm's packages are served as jsDelivr lays them out (``/npm/NAME@VERSION/FILE``, only
the installed version), the files of WHEELS at the root; every response allows any
origin (CORS, Timing-Allow-Origin), as those hosts do.
"""

import sys

import uvicorn
from djreconnect_server import npm
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles


class TimingAllowed:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def allowed(message):
            if message["type"] == "http.response.start":
                message = dict(message, headers=list(message.get("headers", [])) + [(b"timing-allow-origin", b"*")])
            await send(message)

        await self.app(scope, receive, allowed)


def create_app(node_modules, wheels):
    app = Starlette()
    for key, package in npm.PACKAGES.items():
        version = npm.installed_version(key, node_modules)
        app.mount(
            "/npm/%s@%s" % (package["npm"], version), StaticFiles(directory="%s/%s" % (node_modules, package["npm"]))
        )
    app.mount("/", StaticFiles(directory=wheels))
    return TimingAllowed(CORSMiddleware(app, allow_origins=["*"], allow_methods=["GET"]))


if __name__ == "__main__":
    port, node_modules, wheels = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    uvicorn.run(create_app(node_modules, wheels), host="127.0.0.1", port=port, log_level="warning")
