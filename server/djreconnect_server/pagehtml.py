"""HTML a page sends (what a view's root shows), bounded before any parser sees it.

An HTML5 parser is quadratic in the nesting depth of block elements (lexbor: 12.5k
nested ``<div>`` 0.2 s, 100k 18.7 s), so client HTML is measured first, in one linear
pass, and parsed only when it is within ``max_bytes`` and ``max_depth``. The pass keeps a
stack of open elements, and an end tag closes only the innermost one it names, so stray
end tags cannot hide depth from it. A table's cells and rows count the
``<tbody>``/``<tr>`` a parser may imply around them.
"""

import re

# Elements with no end tag (they never nest).
VOID = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr")
    + ("basefont", "bgsound", "frame", "keygen", "param")
)
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)")
# Elements a parser may wrap in ones it implies (a cell in <tbody><tr>, a row in <tbody>):
# counted as that many levels deeper.
IMPLIED = {"td": 2, "th": 2, "tr": 1, "col": 1}


class PageHTMLRefused(ValueError):
    """Client HTML past a bound; the server renders the view whole instead of patching."""


def measure_depth(html: str, limit: int) -> int:
    """The nesting depth of ``html`` as an HTML parser would build it at least, counted
    up to ``limit + 1`` (it stops there). An end tag closes an element only when it names
    the innermost open one: well-formed HTML (what a browser's ``innerHTML`` is) is
    counted exactly, and anything else over-counts, since a parser may ignore an end tag
    (``</optgroup>`` inside a ``<div>``) but never closes what is not open. Linear."""
    stack: list[str] = []
    deepest = 0
    for match in _TAG.finditer(html):
        name = match.group(2).lower()
        if match.group(1):
            if stack and stack[-1] == name:
                stack.pop()
                while stack and stack[-1] == "":
                    stack.pop()  # the levels it implied
            elif name in ("p", "br"):
                deepest = max(deepest, len(stack) + 1)  # a stray one makes an empty element
            continue
        if name in VOID and name != "col":
            continue
        stack.extend([""] * IMPLIED.get(name, 0))
        if name == "col":
            if len(stack) > deepest:
                deepest = len(stack)
            while stack and stack[-1] == "":
                stack.pop()
            continue
        stack.append(name)
        if len(stack) > deepest:
            deepest = len(stack)
            if deepest > limit:
                break
    return deepest


def check_page_html(html: str, max_bytes: int, max_depth: int) -> None:
    """Raise PageHTMLRefused unless ``html`` is within ``max_bytes`` (UTF-8) and
    ``max_depth``."""
    size = len(html.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise PageHTMLRefused("page HTML of %d bytes exceeds the limit of %d" % (size, max_bytes))
    depth = measure_depth(html, max_depth)
    if depth > max_depth:
        raise PageHTMLRefused("page HTML nested deeper than %d elements" % max_depth)
