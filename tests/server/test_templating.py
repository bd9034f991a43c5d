"""templating.py: the PyScript include (loader, interpreter, wheel, runtime config) and view rendering."""

import json

import jinja2
import pytest
from djreconnect import constants
from djreconnect.backoff import Backoff
from djreconnect_server.settings import Settings
from djreconnect_server.templating import Templates, include_html
from djreconnect_server.views import LiveView
from selectolax.lexbor import LexborHTMLParser

KEY = "a-test-secret-key-of-some-length"
WHEEL = "djreconnect-0.1.0-py3-none-any.whl"


@pytest.fixture
def wheels_dir(tmp_path):
    directory = tmp_path / "wheels"
    directory.mkdir()
    (directory / WHEEL).write_bytes(b"")
    return directory


def parse(include):
    return LexborHTMLParser("<!DOCTYPE html><html><head>%s</head><body></body></html>" % include)


def pyscript_config(tree):
    script = tree.css_first('script[type="py"]')
    assert script is not None
    return json.loads(script.attributes["config"])


def runtime_config(tree):
    script = tree.css_first("script#" + constants.CONFIG_ELEMENT_ID)
    assert script.attributes["type"] == "application/json"
    return json.loads(script.text())


def test_include_loads_pyscript_from_the_backend(wheels_dir):
    tree = parse(include_html(Settings(KEY, wheels_dir=wheels_dir), {}))
    assert tree.css_first('link[rel="stylesheet"]').attributes["href"] == "/djreconnect/pyscript/core.css"
    loader = tree.css_first('script[type="module"]')
    assert loader.attributes["src"] == "/djreconnect/pyscript/core.js"


def test_include_configures_pyodide_and_the_wheel(wheels_dir):
    tree = parse(include_html(Settings(KEY, wheels_dir=wheels_dir), {}))
    config = pyscript_config(tree)
    assert config["interpreter"] == "/djreconnect/pyodide/pyodide.mjs"
    assert config["files"] == {"/djreconnect/wheels/" + WHEEL: "./*"}


def test_include_runs_the_browser_runtime(wheels_dir):
    tree = parse(include_html(Settings(KEY, wheels_dir=wheels_dir), {}))
    code = tree.css_first('script[type="py"]').text()
    assert "from djreconnect.browser import main" in code
    assert "main()" in code


def test_include_picks_the_newest_wheel(wheels_dir):
    (wheels_dir / "djreconnect-0.2.0-py3-none-any.whl").write_bytes(b"")
    config = pyscript_config(parse(include_html(Settings(KEY, wheels_dir=wheels_dir), {})))
    assert list(config["files"]) == ["/djreconnect/wheels/djreconnect-0.2.0-py3-none-any.whl"]


def test_include_without_a_wheel_says_how_to_build_it(tmp_path):
    with pytest.raises(RuntimeError, match="pip wheel"):
        include_html(Settings(KEY, wheels_dir=tmp_path), {})


def test_runtime_config_carries_backoff_heartbeat_and_tokens(wheels_dir):
    settings = Settings(
        KEY,
        transport=constants.TRANSPORT_SSE,
        backoff=Backoff(min_ms=100, base_ms=200, max_ms=5000, max_attempts=4),
        heartbeat_interval_ms=1234,
        heartbeat_timeout_ms=567,
        connect_timeout_ms=4321,
        banner_delay_ms=250,
        restart_window_ms=1500,
        public_url="https://live.example.com/",
        wheels_dir=wheels_dir,
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


def test_default_runtime_config(wheels_dir):
    config = runtime_config(parse(include_html(Settings(KEY, wheels_dir=wheels_dir), {})))
    assert config["backoff"] == Backoff().to_dict()
    assert config["transport"] == "ws"
    assert config["tokens"] == {}
    assert config["heartbeat_interval_ms"] == constants.DEFAULT_HEARTBEAT_INTERVAL_MS


def test_public_url_and_prefix_prefix_the_asset_urls(wheels_dir):
    settings = Settings(KEY, public_url="https://live.example.com", prefix="/live", wheels_dir=wheels_dir)
    tree = parse(include_html(settings, {}))
    assert tree.css_first('script[type="module"]').attributes["src"] == "https://live.example.com/live/pyscript/core.js"
    config = pyscript_config(tree)
    assert config["interpreter"] == "https://live.example.com/live/pyodide/pyodide.mjs"
    assert config["files"] == {"https://live.example.com/live/wheels/" + WHEEL: "./*"}


def test_a_cdn_replaces_every_local_url(tmp_path):
    # No wheel locally: with a CDN the backend needs none.
    settings = Settings(KEY, cdn_base_url="https://cdn.example.com/dj/", wheels_dir=tmp_path)
    include = include_html(settings, {})
    tree = parse(include)
    assert tree.css_first('link[rel="stylesheet"]').attributes["href"] == "https://cdn.example.com/dj/pyscript/core.css"
    assert tree.css_first('script[type="module"]').attributes["src"] == "https://cdn.example.com/dj/pyscript/core.js"
    config = pyscript_config(tree)
    assert config["interpreter"] == "https://cdn.example.com/dj/pyodide/pyodide.mjs"
    assert config["files"] == {"https://cdn.example.com/dj/wheels/" + WHEEL: "./*"}
    assert "/djreconnect/" not in include


def test_script_json_cannot_be_closed_by_a_token(wheels_dir):
    evil = "</script><script>alert(1)</script><!-- & -->"
    include = str(include_html(Settings(KEY, wheels_dir=wheels_dir), {"editor": evil}))
    config_script = include.split('id="%s">' % constants.CONFIG_ELEMENT_ID, 1)[1]
    body = config_script.split("</script>", 1)[0]
    assert "<" not in body and ">" not in body and "&" not in body
    tree = parse(include)
    assert len(tree.css("script")) == 3  # nothing injected
    assert runtime_config(tree)["tokens"] == {"editor": evil}


def test_attribute_json_cannot_break_out_of_its_attribute(tmp_path):
    settings = Settings(KEY, cdn_base_url='https://cdn.example.com/it\'s "quoted" <x>')
    tree = parse(include_html(settings, {}))
    script = tree.css_first('script[type="py"]')
    assert set(script.attributes) == {"type", "config"}
    assert pyscript_config(tree)["interpreter"] == 'https://cdn.example.com/it\'s "quoted" <x>/pyodide/pyodide.mjs'


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
    return Templates(Settings(KEY, wheels_dir=wheels_dir), [tmp_path])


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
