"""templating.py: the PyScript include (loader, interpreter, wheel, runtime config) and view rendering."""

import json

import djreconnect
import jinja2
import pytest
from djreconnect import constants
from djreconnect.backoff import Backoff
from djreconnect_server import npm
from djreconnect_server.settings import Settings
from djreconnect_server.templating import Templates, include_html
from djreconnect_server.views import LiveView
from selectolax.lexbor import LexborHTMLParser

KEY = "a-test-secret-key-of-some-length"
WHEEL = "djreconnect-%s-py3-none-any.whl" % djreconnect.__version__
VERSIONS = {"@pyscript/core": "0.7.1", "pyodide": "300.0.1", "@micropython/micropython-webassembly-pyscript": "1.2.3-4"}
CORE_JS = 'export{a as b}from"./core-X1.js";'
CORE_CHUNK = 'import"./util-X2.js";const p=()=>import("./error-X3.js"),e=()=>import("./codemirror-X4.js");'


@pytest.fixture
def wheels_dir(tmp_path):
    directory = tmp_path / "wheels"
    directory.mkdir()
    (directory / WHEEL).write_bytes(b"")
    return directory


@pytest.fixture
def node_modules(tmp_path):
    """npm's three packages, as small stand-ins (versions, entry files, PyScript's chunks)."""
    root = tmp_path / "project"
    (root / "node_modules").mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"dependencies": VERSIONS}))
    files = {
        "@pyscript/core": {"dist/core.js": CORE_JS, "dist/core-X1.js": CORE_CHUNK, "dist/core.css": "x{}"},
        "pyodide": {name: name for name in ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm")},
        "@micropython/micropython-webassembly-pyscript": {"micropython.mjs": "m", "micropython.wasm": "w"},
    }
    files["pyodide"].update({"python_stdlib.zip": "z", "pyodide-lock.json": "{}"})
    files["@pyscript/core"].update({"dist/util-X2.js": "", "dist/error-X3.js": "", "dist/codemirror-X4.js": ""})
    for package, contents in files.items():
        folder = root / "node_modules" / package
        for name, text in dict(contents, **{"package.json": json.dumps({"version": VERSIONS[package]})}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    return root / "node_modules"


@pytest.fixture
def cdn_manifest(node_modules, tmp_path, monkeypatch):
    """The manifest a distribution ships, built from the stand-ins."""
    path = tmp_path / "_assets.json"
    path.write_text(json.dumps(npm.build_manifest(node_modules.parent)))
    monkeypatch.setattr(npm, "MANIFEST_FILE", path)
    monkeypatch.setattr(npm, "_manifest", None)
    return json.loads(path.read_text())


def local(node_modules, wheels_dir, **settings):
    return Settings(KEY, assets="local", node_modules_dir=node_modules, wheels_dir=wheels_dir, **settings)


def parse(include):
    return LexborHTMLParser("<!DOCTYPE html><html><head>%s</head><body></body></html>" % include)


def pyscript_config(tree, script_type="py"):
    script = tree.css_first('script[type="%s"]' % script_type)
    assert script is not None
    return json.loads(script.attributes["config"])


def runtime_config(tree):
    script = tree.css_first("script#" + constants.CONFIG_ELEMENT_ID)
    assert script.attributes["type"] == "application/json"
    return json.loads(script.text())


def preloads(tree):
    return [(link.attributes["rel"], link.attributes["href"]) for link in tree.css('link[rel$="preload"]')]


PYSCRIPT = "/djreconnect/npm/@pyscript/core@0.7.1/dist"
PYODIDE = "/djreconnect/npm/pyodide@300.0.1"
MICROPYTHON = "/djreconnect/npm/@micropython/micropython-webassembly-pyscript@1.2.3-4"


def test_include_loads_pyscript_from_the_backend_at_versioned_urls(node_modules, wheels_dir):
    tree = parse(include_html(local(node_modules, wheels_dir), {}))
    assert tree.css_first('link[rel="stylesheet"]').attributes["href"] == PYSCRIPT + "/core.css"
    loader = tree.css_first('script[type="module"]')
    assert loader.attributes["src"] == PYSCRIPT + "/core.js"
    assert "integrity" not in loader.attributes  # same origin: nothing to check
    assert tree.css_first('script[type="importmap"]') is None


def test_include_configures_pyodide_and_the_wheel(node_modules, wheels_dir):
    tree = parse(include_html(local(node_modules, wheels_dir), {}))
    config = pyscript_config(tree)
    assert config["interpreter"] == PYODIDE + "/pyodide.mjs"
    assert config["files"] == {"/djreconnect/wheels/" + WHEEL: "./*"}


def test_include_configures_micropython(node_modules, wheels_dir):
    tree = parse(include_html(local(node_modules, wheels_dir, interpreter="micropython"), {}))
    config = pyscript_config(tree, "mpy")
    assert config["interpreter"] == MICROPYTHON + "/micropython.mjs"
    assert tree.css_first('script[type="py"]') is None


def test_include_runs_the_browser_runtime(node_modules, wheels_dir):
    tree = parse(include_html(local(node_modules, wheels_dir), {}))
    code = tree.css_first('script[type="py"]').text()
    assert "from djreconnect.browser import main" in code
    assert "main()" in code


def test_the_boot_loader_comes_first_with_its_names_and_timeout(node_modules, wheels_dir):
    tree = parse(include_html(local(node_modules, wheels_dir, boot_timeout_ms=4321), {}))
    first = tree.css_first("head").child
    assert first.tag == "script" and "type" not in first.attributes
    code = first.text()
    assert code.startswith("// djreconnect's boot loader") and code.rstrip().endswith(");")
    names = json.loads(code[code.rindex("})(") + 3 : code.rindex(");")])
    assert names["global"] == constants.BOOT_GLOBAL and names["timeout_ms"] == 4321
    assert (names["click"], names["submit"], names["view"]) == ("dj-click", "dj-submit", "dj-view")
    assert (names["failed"], names["error"]) == ("dj-boot-failed", "dj-boot-error")
    assert names["limit"] == constants.BOOT_RECORD_LIMIT and names["bytes"] == constants.BOOT_RECORD_CHARS


def test_preloads_start_every_download_from_the_first_html(node_modules, wheels_dir):
    tree = parse(include_html(local(node_modules, wheels_dir), {}))
    assert preloads(tree) == [
        ("modulepreload", PYSCRIPT + "/core.js"),
        ("modulepreload", PYSCRIPT + "/core-X1.js"),
        ("modulepreload", PYSCRIPT + "/util-X2.js"),
        ("modulepreload", PYSCRIPT + "/error-X3.js"),  # started by core; the editor's chunks are not
        ("modulepreload", PYODIDE + "/pyodide.mjs"),
        ("modulepreload", PYODIDE + "/pyodide.asm.mjs"),
        ("preload", PYODIDE + "/pyodide.asm.wasm"),
        ("preload", PYODIDE + "/python_stdlib.zip"),
        ("preload", PYODIDE + "/pyodide-lock.json"),
        ("preload", "/djreconnect/wheels/" + WHEEL),
    ]
    for link in tree.css('link[rel="preload"]'):
        assert link.attributes["as"] == "fetch" and "crossorigin" in link.attributes
    micropython = parse(include_html(local(node_modules, wheels_dir, interpreter="micropython"), {}))
    assert [href for _, href in preloads(micropython)][-3:] == [
        MICROPYTHON + "/micropython.mjs",
        MICROPYTHON + "/micropython.wasm",
        "/djreconnect/wheels/" + WHEEL,
    ]
    assert preloads(parse(include_html(local(node_modules, wheels_dir, preload=False), {}))) == []


def test_runtime_config_carries_backoff_heartbeat_and_tokens(node_modules, wheels_dir):
    settings = local(
        node_modules,
        wheels_dir,
        transport=constants.TRANSPORT_SSE,
        backoff=Backoff(min_ms=100, base_ms=200, max_ms=5000, max_attempts=4),
        heartbeat_interval_ms=1234,
        heartbeat_timeout_ms=567,
        connect_timeout_ms=4321,
        banner_delay_ms=250,
        restart_window_ms=1500,
        public_url="https://live.example.com/",
    )
    config = runtime_config(parse(include_html(settings, {"editor": "tok.en", "other": "t2"})))
    assert config == {
        "url": "https://live.example.com",
        "prefix": "/djreconnect",
        "transport": "sse",
        "backoff": {"min_ms": 100, "base_ms": 200, "max_ms": 5000, "max_attempts": 4},
        "heartbeat_interval_ms": 1234,
        "heartbeat_timeout_ms": 567,
        "connect_timeout_ms": 4321,
        "banner_delay_ms": 250,
        "restart_window_ms": 1500,
        "banner_reconnecting": "Reconnecting... (attempt {attempt} of {max})",
        "banner_failed": "Connection lost: {reason}.",
        "banner_retry": "Try again",
        "tokens": {"editor": "tok.en", "other": "t2"},
    }


def test_default_runtime_config(node_modules, wheels_dir):
    config = runtime_config(parse(include_html(local(node_modules, wheels_dir), {})))
    assert config["backoff"] == Backoff().to_dict()
    assert config["transport"] == "ws"
    assert config["tokens"] == {}
    assert config["heartbeat_interval_ms"] == constants.DEFAULT_HEARTBEAT_INTERVAL_MS


def test_public_url_and_prefix_prefix_the_asset_urls(node_modules, wheels_dir):
    settings = local(node_modules, wheels_dir, public_url="https://live.example.com", prefix="/live")
    tree = parse(include_html(settings, {}))
    base = "https://live.example.com/live/npm/"
    assert tree.css_first('script[type="module"]').attributes["src"] == base + "@pyscript/core@0.7.1/dist/core.js"
    config = pyscript_config(tree)
    assert config["interpreter"] == base + "pyodide@300.0.1/pyodide.mjs"
    assert config["files"] == {"https://live.example.com/live/wheels/" + WHEEL: "./*"}


def test_the_cdn_serves_the_pinned_versions_with_integrity(cdn_manifest, tmp_path, wheels_dir):
    settings = Settings(KEY, assets="cdn", node_modules_dir=tmp_path / "none", wheels_dir=wheels_dir)
    include = str(include_html(settings, {}))
    tree = parse(include)
    cdn = "https://cdn.jsdelivr.net/npm/"
    hashes = {key: package["integrity"] for key, package in cdn_manifest["packages"].items()}
    css = tree.css_first('link[rel="stylesheet"]').attributes
    assert css["href"] == cdn + "@pyscript/core@0.7.1/dist/core.css"
    assert (css["integrity"], css["crossorigin"]) == (hashes["pyscript"]["core.css"], "anonymous")
    loader = tree.css_first('script[type="module"]').attributes
    assert (loader["src"], loader["integrity"]) == (
        cdn + "@pyscript/core@0.7.1/dist/core.js",
        hashes["pyscript"]["core.js"],
    )
    assert hashes["pyscript"]["core.js"] == npm.integrity(CORE_JS.encode())
    # Every module PyScript and Pyodide import is checked, dynamic imports included.
    importmap = json.loads(tree.css_first('script[type="importmap"]').text())["integrity"]
    assert importmap[cdn + "pyodide@300.0.1/pyodide.mjs"] == hashes["pyodide"]["pyodide.mjs"]
    assert importmap[cdn + "@pyscript/core@0.7.1/dist/error-X3.js"] == hashes["pyscript"]["error-X3.js"]
    assert importmap[cdn + "@micropython/micropython-webassembly-pyscript@1.2.3-4/micropython.mjs"]
    assert not [url for url in importmap if not url.endswith((".js", ".mjs"))]
    assert pyscript_config(tree)["interpreter"] == cdn + "pyodide@300.0.1/pyodide.mjs"
    # The wheel still comes from the backend; nothing else does.
    assert pyscript_config(tree)["files"] == {"/djreconnect/wheels/" + WHEEL: "./*"}
    assert [url for _, url in preloads(tree) if url.startswith("/")] == ["/djreconnect/wheels/" + WHEEL]


def test_one_url_set_alone_replaces_that_one_without_integrity(cdn_manifest, tmp_path, wheels_dir):
    full = "https://cdn.example.org/pyodide/v300.0.1/full/pyodide.mjs"
    settings = Settings(
        KEY, assets="cdn", pyodide_url=full, wheel_url="https://static.example.org/w/" + WHEEL, wheels_dir=tmp_path
    )
    tree = parse(include_html(settings, {}))
    config = pyscript_config(tree)
    assert config == {"interpreter": full, "files": {"https://static.example.org/w/" + WHEEL: "./*"}}
    importmap = json.loads(tree.css_first('script[type="importmap"]').text())["integrity"]
    assert full not in importmap and not [url for url in importmap if "pyodide@" in url]
    assert tree.css_first('script[type="module"]').attributes["integrity"]  # PyScript still pinned


def test_an_npm_mirror_with_the_same_layout_replaces_the_cdn(cdn_manifest, wheels_dir):
    settings = Settings(KEY, assets="cdn", cdn_url="https://unpkg.example.com/", wheels_dir=wheels_dir)
    tree = parse(include_html(settings, {}))
    assert tree.css_first('script[type="module"]').attributes["src"] == (
        "https://unpkg.example.com/@pyscript/core@0.7.1/dist/core.js"
    )


def test_script_json_cannot_be_closed_by_a_token(node_modules, wheels_dir):
    evil = "</script><script>alert(1)</script><!-- & -->"
    include = str(include_html(local(node_modules, wheels_dir), {"editor": evil}))
    config_script = include.split('id="%s">' % constants.CONFIG_ELEMENT_ID, 1)[1]
    body = config_script.split("</script>", 1)[0]
    assert "<" not in body and ">" not in body and "&" not in body
    tree = parse(include)
    assert len(tree.css("script")) == 4  # the loader, PyScript, the config, the entry: nothing injected
    assert runtime_config(tree)["tokens"] == {"editor": evil}


def test_attribute_json_cannot_break_out_of_its_attribute(tmp_path):
    settings = Settings(KEY, pyodide_url='https://cdn.example.com/it\'s "quoted" <x>.mjs', assets="cdn")
    tree = parse(include_html(settings, {}))
    script = tree.css_first('script[type="py"]')
    assert set(script.attributes) == {"type", "config"}
    assert pyscript_config(tree)["interpreter"] == 'https://cdn.example.com/it\'s "quoted" <x>.mjs'


def test_unknown_asset_modes_and_timeouts_are_refused():
    with pytest.raises(ValueError, match="assets must be one of auto, local, cdn"):
        Settings(KEY, assets="nearby")
    with pytest.raises(ValueError, match="boot_timeout_ms"):
        Settings(KEY, boot_timeout_ms=0)


# --- Templates ---------------------------------------------------------------------


class GreetingView(LiveView):
    template_name = "greeting.html"

    def mount(self, request, **kwargs):
        self.name = "<b>world</b>"


@pytest.fixture
def templates(tmp_path, wheels_dir):
    (tmp_path / "greeting.html").write_text(
        "<html><head>{{ djreconnect_scripts() }}</head>"
        '<body dj-view="{{ dj_view_id }}"><div dj-root>'
        '<p>Hello {{ name }}{{ suffix|default("") }}</p></div></body></html>'
    )
    (tmp_path / "strict.html").write_text("{{ missing }}")
    return Templates(Settings(KEY, wheels_dir=wheels_dir, assets="local"), [tmp_path])


def test_render_escapes_state_and_names_the_view(templates):
    view = GreetingView()
    view.mount(None)
    tree = LexborHTMLParser(templates.render(view))
    assert tree.body.attributes["dj-view"] == "greeting"
    assert tree.css_first("p").html == "<p>Hello &lt;b&gt;world&lt;/b&gt;</p>"


def test_render_passes_tokens_to_the_include(templates):
    view = GreetingView()
    view.mount(None)
    html = templates.render(view, {"dj_tokens": {"greeting": "signed"}, "suffix": "!"})
    tree = LexborHTMLParser(html)
    assert runtime_config(tree)["tokens"] == {"greeting": "signed"}
    assert tree.css_first("p").text() == "Hello <b>world</b>!"


def test_render_is_strict_about_undefined_names(templates):
    class Strict(LiveView):
        template_name = "strict.html"

    with pytest.raises(jinja2.UndefinedError):
        templates.render(Strict())


def test_render_needs_a_template_name(templates):
    class Nameless(LiveView):
        pass

    with pytest.raises(RuntimeError, match="template_name"):
        templates.render(Nameless())


# --- the banner's words ------------------------------------------------------------


def test_settings_banner_texts_reach_every_page(wheels_dir):
    settings = Settings(
        KEY,
        wheels_dir=wheels_dir,
        banner_reconnecting="Wieder verbinden ({attempt}/{max})",
        banner_failed="Getrennt: {reason}",
        banner_retry="Nochmal",
    )
    config = runtime_config(parse(include_html(settings, {})))
    assert (config["banner_reconnecting"], config["banner_failed"], config["banner_retry"]) == (
        "Wieder verbinden ({attempt}/{max})",
        "Getrennt: {reason}",
        "Nochmal",
    )


@pytest.mark.parametrize(
    "setting, value, said",
    [
        ("banner_reconnecting", "attempt {n}", "unknown placeholder {n}"),
        ("banner_failed", "", "non-empty string"),
        ("banner_retry", 3, "non-empty string"),
    ],
)
def test_bad_banner_texts_are_refused_by_settings(wheels_dir, setting, value, said):
    with pytest.raises(ValueError, match=setting) as info:
        Settings(KEY, wheels_dir=wheels_dir, **{setting: value})
    assert said in str(info.value)


def test_a_page_sets_its_own_banner_words_through_its_include(tmp_path, wheels_dir):
    (tmp_path / "french.html").write_text(
        '<html><head>{{ djreconnect_scripts(banner_reconnecting="Reconnexion ({attempt}/{max})",'
        ' banner_retry=retry_word) }}</head><body dj-view="{{ dj_view_id }}"></body></html>'
    )
    settings = Settings(KEY, wheels_dir=wheels_dir, banner_failed="Lost: {reason}")
    templates = Templates(settings, [tmp_path])

    class French(LiveView):
        template_name = "french.html"

    config = runtime_config(LexborHTMLParser(templates.render(French(), {"retry_word": "</script>Réessayer"})))
    assert config["banner_reconnecting"] == "Reconnexion ({attempt}/{max})"
    assert config["banner_retry"] == "</script>Réessayer"  # in the JSON, safely
    assert config["banner_failed"] == "Lost: {reason}"  # the backend's, not set by the page


def test_a_page_include_refuses_other_settings_and_bad_texts(tmp_path, wheels_dir):
    settings = Settings(KEY, wheels_dir=wheels_dir)
    with pytest.raises(TypeError, match="takes only banner_failed, banner_reconnecting, banner_retry, not transport"):
        include_html(settings, {}, {"transport": "sse"})
    with pytest.raises(ValueError, match="banner_failed has an unknown placeholder"):
        include_html(settings, {}, {"banner_failed": "{why}"})


def test_cdn_assets_without_a_manifest_say_what_to_run(tmp_path, monkeypatch, wheels_dir):
    monkeypatch.setattr(npm, "MANIFEST_FILE", tmp_path / "missing.json")
    monkeypatch.setattr(npm, "_manifest", None)
    # A checkout without package.json or npm's packages: nothing to read or hash.
    build = npm.build_manifest
    monkeypatch.setattr(npm, "build_manifest", lambda: build(tmp_path))
    settings = Settings(KEY, assets="cdn", wheels_dir=wheels_dir)
    with pytest.raises(RuntimeError) as refused:
        settings.check_assets()
    message = str(refused.value)
    assert message.startswith("assets='cdn' needs the pinned versions and their hashes (missing.json)")
    assert "assets='local', node_modules_dir=" in message
