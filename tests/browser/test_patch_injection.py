"""Script injection through patches, in a real Chromium with the real runtime: text that
arrives by patch inside SVG and MathML ``style``, ``script``, ``xmp``, ``iframe``,
``noembed`` and ``noframes`` elements stays text, and children spliced into an ``<svg>``,
a ``<math>``, a ``<tbody>`` or a ``<select>`` are what the page's own parser makes of them."""

import sys

import pytest
from injection_app import FOREIGN_ROOTS, RAW_TEXT_NAMES
from support import CHECKOUT, DemoServer, new_page, wait_connected

pytestmark = pytest.mark.browser

APP = CHECKOUT / "tests" / "browser" / "injection_app.py"
# Each payload, if the page ever parsed it as markup, sets window.pwned.
CLOSE_ALL = "</style></script></xmp></iframe></noembed></noframes></svg></math>"
IMG = "<img src=x onerror=window.pwned=1>"
PAYLOADS = [
    CLOSE_ALL + IMG,
    "<script>window.pwned=1</script>" + CLOSE_ALL + "<script>window.pwned=1</script>" + IMG,
    "<!--" + CLOSE_ALL + IMG + "-->",
    "<![CDATA[" + CLOSE_ALL + IMG + "]]>",
    CLOSE_ALL + "<svg onload=window.pwned=1></svg><math><mi>" + IMG + "</mi></math>",
]
ARRIVALS = ("changed", "added", "rooted")

# What every context box holds: its <svg>/<math> and the one element in it, both foreign,
# and the text of that element.
CONTEXTS = """([roots, tags, arrivals]) => {
  const prefix = {"http://www.w3.org/2000/svg": "svg:", "http://www.w3.org/1998/Math/MathML": "math:"};
  const seen = {};
  for (const root of roots) for (const tag of tags) for (const arrival of arrivals) {
    const box = document.getElementById(arrival + "-" + root + "-" + tag);
    const elements = [...box.querySelectorAll("*")].map(e => (prefix[e.namespaceURI] || "html:") + e.localName);
    const inner = box.firstElementChild && box.firstElementChild.firstElementChild;
    seen[box.id] = [elements, inner ? inner.textContent : null];
  }
  return seen;
}"""

# The child nodes of an element: elements as ns:name#id, texts as themselves.
CHILDREN = """(selector) => [...document.querySelector(selector).childNodes].map(n =>
  n.nodeType === 1 ? ({"http://www.w3.org/2000/svg": "svg:", "http://www.w3.org/1998/Math/MathML": "math:",
    "http://www.w3.org/1999/xhtml": "html:"}[n.namespaceURI] + n.localName + (n.id ? "#" + n.id : "")) : n.data)"""


class InjectionServer(DemoServer):
    """The suite's backend (tests/browser/injection_app.py) as a real process."""

    def command(self):
        return [sys.executable, str(APP), "--port", str(self.port), *self.flags]


@pytest.fixture(scope="module")
def server(transport, interpreter):
    app = InjectionServer("--transport", transport, "--interpreter", interpreter).start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def page(browser, server, guard):
    context, page = new_page(browser, guard)
    page.goto(server.url + "/")
    wait_connected(page)
    yield page
    context.close()


def version(page):
    return int(page.inner_text("#version"))


def act(page, selector):
    """Click ``selector`` and wait until the server's render that answers it is on the page."""
    before = version(page)
    page.click(selector)
    page.wait_for_function("(v) => document.getElementById('version').textContent === String(v)", arg=before + 1)


def send(page, payload):
    page.fill("#payload", payload)
    act(page, "#send")


@pytest.mark.parametrize("payload", PAYLOADS, ids=["close", "script", "comment", "cdata", "svg-onload"])
def test_text_patched_into_foreign_raw_text_names_stays_text(page, payload):
    send(page, "")  # the added and rooted boxes empty, so the payload arrives as new elements
    send(page, payload)
    seen = page.evaluate(CONTEXTS, [FOREIGN_ROOTS, RAW_TEXT_NAMES, ARRIVALS])
    expected = {
        "%s-%s-%s" % (arrival, root, tag): [["%s:%s" % (root, root), "%s:%s" % (root, tag)], payload]
        for root in FOREIGN_ROOTS
        for tag in RAW_TEXT_NAMES
        for arrival in ARRIVALS
    }
    assert seen == expected
    assert page.evaluate("document.querySelectorAll('[dj-root] img, [dj-root] svg svg').length") == 0
    page.wait_for_timeout(300)  # an image's error, an <svg>'s load: they would have fired by now
    assert page.evaluate("window.pwned") is None


def test_children_spliced_into_svg_math_tables_and_selects_are_parsed_in_place(page):
    act(page, "#add-shapes")
    assert page.evaluate(CHILDREN, "#appended") == ["svg:circle#a-0"]
    assert page.evaluate(CHILDREN, "#prepended") == ["svg:circle#p-0", "tail"]
    assert page.evaluate(CHILDREN, "#before-text") == ["svg:circle#t-0", "tail"]
    assert page.evaluate(CHILDREN, "#between-texts") == ["a", "svg:circle", "b"]
    act(page, "#add-shapes")
    # At the end, before an element, after an element and before a text, between texts.
    assert page.evaluate(CHILDREN, "#appended") == ["svg:circle#a-0", "svg:circle#a-1"]
    assert page.evaluate(CHILDREN, "#prepended") == ["svg:circle#p-1", "svg:circle#p-0", "tail"]
    assert page.evaluate(CHILDREN, "#before-text") == ["svg:circle#t-0", "svg:circle#t-1", "tail"]
    assert page.evaluate(CHILDREN, "#between-texts") == ["a", "svg:circle", "b"]
    shapes = page.evaluate(CHILDREN, "#shapes")
    assert [node for node in shapes if node.strip()] == [
        "svg:g#shape-0",
        "svg:foreignObject",
        "svg:g#shape-1",
        "svg:foreignObject",
    ]
    assert page.evaluate(CHILDREN, "#shape-1") == ["svg:circle", "svg:text", "svg:style"]
    assert page.evaluate("document.querySelector('#shape-1 style').textContent") == "circle { fill: red }"
    assert page.evaluate("document.querySelector('#shape-1 circle') instanceof SVGCircleElement")
    assert (
        page.evaluate("[...document.querySelectorAll('#shapes .html-in-svg')].map(p => p.namespaceURI)")
        == ["http://www.w3.org/1999/xhtml"] * 2
    )
    assert page.evaluate(CHILDREN, "#formula") == ["math:mi", "math:mo", "math:mn"] * 2
    rows = page.evaluate("[...document.querySelectorAll('#rows tr')].map(r => [r.parentNode.localName, r.textContent])")
    assert rows == [["tbody", "row 0"], ["tbody", "row 1"]]
    options = page.evaluate("[...document.querySelector('#choices').options].map(o => o.value)")
    assert options == ["0", "1"]
    # A textarea's text, template content, a <pre>'s leading blank line: each as parsed.
    assert page.evaluate("document.querySelector('#notes').value") == "2 <shapes>"
    template = "[...document.querySelector('#row-template').content.querySelectorAll('tr')].map(r => r.textContent)"
    assert page.evaluate(template) == ["0", "1"]
    assert page.evaluate("document.querySelector('#code pre').textContent") == "\n2"
