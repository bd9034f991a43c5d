"""compression.py: npm's files served gzipped by a backend with local assets, each
compressed once into a bounded cache."""

import gzip
from pathlib import Path

import pytest
from djreconnect_server import DJReconnect, Settings
from djreconnect_server.compression import GzipCache
from djreconnect_server.npm import pinned_versions
from fastapi.testclient import TestClient

from .asyncrun import run

CHECKOUT = Path(__file__).resolve().parents[2]
NODE_MODULES = CHECKOUT / "node_modules"
KEY = "a-test-secret-key-of-some-length"
PYODIDE = "/djreconnect/npm/pyodide@%s/" % pinned_versions(CHECKOUT)["pyodide"]

pytestmark = pytest.mark.skipif(
    not (NODE_MODULES / "pyodide" / "pyodide.mjs").is_file() or not list((CHECKOUT / "wheels").glob("*.whl")),
    reason="needs `npm ci` and a built wheel",
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(
        KEY, assets="local", node_modules_dir=NODE_MODULES, wheels_dir=CHECKOUT / "wheels", trusted_hosts=["testserver"]
    )
    live = DJReconnect(settings, [tmp_path_factory.mktemp("templates")])
    with TestClient(live.app) as client:
        yield live, client


@pytest.mark.parametrize("name", ["pyodide.asm.wasm", "pyodide.mjs", "pyodide-lock.json"])
def test_compressible_files_go_out_gzipped(client, name):
    _, http = client
    response = http.get(PYODIDE + name, headers={"accept-encoding": "gzip", "origin": "http://static.example.org"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip" and "Accept-Encoding" in response.headers["vary"]
    assert int(response.headers["content-length"]) < (NODE_MODULES / "pyodide" / name).stat().st_size * 0.5
    assert response.content == (NODE_MODULES / "pyodide" / name).read_bytes()  # decoded by the client
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_revalidation_of_the_gzipped_file_is_304(client):
    _, http = client
    etag = http.get(PYODIDE + "pyodide.mjs", headers={"accept-encoding": "gzip"}).headers["etag"]
    again = http.get(PYODIDE + "pyodide.mjs", headers={"accept-encoding": "gzip", "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""


def test_each_file_is_compressed_once(client):
    live, http = client
    http.get(PYODIDE + "pyodide-lock.json", headers={"accept-encoding": "gzip"})
    kept = dict(live.gzip_cache.entries)
    http.get(PYODIDE + "pyodide-lock.json", headers={"accept-encoding": "gzip"})
    assert live.gzip_cache.entries == kept
    [body] = [body for (path, _, _), body in kept.items() if path.endswith("pyodide-lock.json")]
    again = [body2 for (path, _, _), body2 in live.gzip_cache.entries.items() if path.endswith("pyodide-lock.json")]
    assert again[0] is body


@pytest.mark.parametrize(
    "headers, name",
    [
        ({"accept-encoding": "identity"}, "pyodide.mjs"),  # a client without gzip
        ({"accept-encoding": "gzip", "range": "bytes=0-9"}, "pyodide.mjs"),  # a range of the file
        ({"accept-encoding": "gzip"}, "python_stdlib.zip"),  # a zip already
    ],
)
def test_others_get_the_file_as_it_is(client, headers, name):
    _, http = client
    response = http.get(PYODIDE + name, headers=headers)
    assert response.status_code in (200, 206)
    assert "content-encoding" not in response.headers
    assert response.content == (NODE_MODULES / "pyodide" / name).read_bytes()[: len(response.content)]


def test_a_missing_file_is_still_404(client):
    _, http = client
    assert http.get(PYODIDE + "nope.js", headers={"accept-encoding": "gzip"}).status_code == 404
    assert http.get(PYODIDE + "../../../pyproject.toml", headers={"accept-encoding": "gzip"}).status_code == 404


def test_the_cache_keeps_its_bounds(tmp_path):
    files = []
    for index in range(5):
        path = tmp_path / ("f%d.js" % index)
        path.write_bytes(bytes(range(256)) * (index + 1) * 40)  # poorly compressible, growing
        files.append(path)

    async def fill(cache):
        for path in files:
            body = await cache.get(str(path), path.stat())
            assert gzip.decompress(body) == path.read_bytes()
            assert len(cache.entries) <= cache.max_files and cache.bytes <= cache.max_bytes

    by_count = GzipCache(max_files=2, max_bytes=1 << 20)
    run(fill(by_count))
    assert [key[0] for key in by_count.entries] == [str(files[3]), str(files[4])]  # the most recent
    sizes = [len(gzip.compress(path.read_bytes(), 6, mtime=0)) for path in files]
    by_bytes = GzipCache(max_files=10, max_bytes=sizes[3] + sizes[4])
    run(fill(by_bytes))
    assert by_bytes.bytes == sum(len(body) for body in by_bytes.entries.values()) <= sizes[3] + sizes[4]
    assert str(files[4]) in [key[0] for key in by_bytes.entries]
    too_big = GzipCache(max_files=10, max_bytes=sizes[0] - 1)
    run(fill(too_big))  # still served, never kept
    assert too_big.entries == {} and too_big.bytes == 0


def test_compression_can_be_turned_off(tmp_path):
    settings = Settings(
        KEY,
        assets="local",
        node_modules_dir=NODE_MODULES,
        wheels_dir=CHECKOUT / "wheels",
        compress=False,
        trusted_hosts=["testserver"],
    )
    with TestClient(DJReconnect(settings, [tmp_path]).app) as http:
        response = http.get(PYODIDE + "pyodide.mjs", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200 and "content-encoding" not in response.headers


def test_an_allow_list_of_the_files_app_is_kept(tmp_path):
    from djreconnect_server.compression import Gzipped
    from starlette.exceptions import HTTPException
    from starlette.staticfiles import StaticFiles

    class Listed(StaticFiles):
        def allowed(self, name):
            return name == "kept.js"

        async def get_response(self, path, scope):
            if not self.allowed(path):
                raise HTTPException(status_code=404)
            return await super().get_response(path, scope)

    (tmp_path / "kept.js").write_text("let kept = 1;" * 100)
    (tmp_path / "other.js").write_text("let other = 1;" * 100)
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount("/", app=Gzipped(Listed(directory=tmp_path), GzipCache()))])
    with TestClient(app) as http:
        assert http.get("/kept.js", headers={"accept-encoding": "gzip"}).headers["content-encoding"] == "gzip"
        assert http.get("/other.js", headers={"accept-encoding": "gzip"}).status_code == 404
