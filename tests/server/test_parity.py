"""Rules the runtime and the server both apply, run on both sides over the same input, so
that one side changed alone fails here."""

import sys
import types

import pytest
from djreconnect import constants
from djreconnect_server import sse
from djreconnect_server.diff import find_root
from selectolax.lexbor import LexborHTMLParser


def _import_runtime_pagedom():
    """``djreconnect.pagedom`` outside a page: its page bridge stubbed (the functions tested
    here only call DOM methods on the elements they are given)."""
    if "djreconnect.pagedom" in sys.modules:
        return sys.modules["djreconnect.pagedom"]
    js = types.ModuleType("js")
    pyscript = types.ModuleType("pyscript")
    ffi = types.ModuleType("pyscript.ffi")
    ffi.create_proxy = lambda function: function
    ffi.is_none = lambda value: value is None
    ffi.to_js = lambda value: value
    pyscript.ffi = ffi
    saved = {name: sys.modules.get(name) for name in ("js", "pyscript", "pyscript.ffi")}
    sys.modules.update({"js": js, "pyscript": pyscript, "pyscript.ffi": ffi})
    try:
        import djreconnect.pagedom as pagedom
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return pagedom


class Element:
    """A lexbor node with the few DOM methods ``pagedom.view_root`` calls."""

    def __init__(self, node):
        self.node = node

    def querySelector(self, selector):
        found = self.node.css_first(selector)
        return None if found is None else Element(found)

    def closest(self, selector):
        name = selector.strip("[]")
        node = self.node
        while node is not None and name not in node.attributes:
            node = node.parent
        return None if node is None else Element(node)

    def __eq__(self, other):
        return isinstance(other, Element) and self.node.mem_id == other.node.mem_id

    def __ne__(self, other):
        return not self == other


PAGES = {
    "root inside the view": '<div dj-view="a"><p>x</p><div dj-root id="R"></div></div>',
    "no root": '<div dj-view="a" id="R"><p>x</p></div>',
    "the view is the body": '<body dj-view="a" id="R"><main>x</main></body>',
    "only a nested view has a root": (
        '<div dj-view="a" id="R"><div dj-view="b"><div dj-root id="nested"></div></div></div>'
    ),
    "a nested view's root comes first": (
        '<div dj-view="a" id="R"><div dj-view="b"><div dj-root></div></div><div dj-root id="own"></div></div>'
    ),
    "the view's root holds a nested view": (
        '<div dj-view="a"><div dj-root id="R"><div dj-view="b"><div dj-root></div></div></div></div>'
    ),
}


@pytest.mark.parametrize("html", list(PAGES.values()), ids=list(PAGES))
def test_the_view_root_rule_is_the_same_on_both_sides(html):
    pagedom = _import_runtime_pagedom()
    parser = LexborHTMLParser(html)
    server = find_root(parser)
    view = Element(parser.css_first("[" + constants.ATTR_VIEW + "]"))
    runtime = pagedom.view_root(view)
    assert runtime.node.mem_id == server.mem_id
    assert server.attributes.get("id") == "R"


def test_the_sse_names_are_the_protocol_constants():
    assert (sse.EVENT_CHANNEL, sse.EVENT_CLOSE) == (constants.SSE_EVENT_CHANNEL, constants.SSE_EVENT_CLOSE)
    assert (sse.HEADER_CHANNEL, sse.HEADER_CSRF) == (constants.SSE_HEADER_CHANNEL, constants.SSE_HEADER_CSRF)
    assert sse.MAX_FRAMES_PER_POST == constants.SSE_MAX_FRAMES_PER_POST


def test_the_runtime_timing_the_server_writes_is_what_the_runtime_reads():
    from djreconnect.backoff import Backoff
    from djreconnect.connection import Settings as Timing
    from djreconnect_server.settings import Settings

    settings = Settings(
        "a-test-secret-key-of-some-length",
        backoff=Backoff(10, 20, 100, 3),
        heartbeat_interval_ms=1234,
        heartbeat_timeout_ms=567,
        connect_timeout_ms=890,
        banner_delay_ms=12,
        wheels_dir="/nonexistent",
    )
    config = settings.client_config()
    read = Timing.from_dict(config)
    assert read.to_dict() == settings.timing.to_dict()
    for name, _, _ in Timing.TIMINGS:
        assert config[name] == getattr(settings.timing, name)
