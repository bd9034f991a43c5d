"""HTML a page sends (what a view's root shows), bounded before any parser sees it.

An HTML5 parser is quadratic in the nesting depth of block elements (lexbor: 12.5k
nested ``<div>`` 0.2 s, 100k 18.7 s), so client HTML is measured first, in one linear
pass, and parsed only when it is within ``max_bytes`` and ``max_depth``. The pass keeps a
stack of open elements as the parser would, closing on an end tag only what that tag
closes, so stray end tags cannot hide depth from it; anything it cannot account for
makes it over-count, never under-count.
"""

import re

# Elements with no end tag (they never nest).
VOID = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr")
    + ("basefont", "bgsound", "frame", "keygen", "param")
)
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)")


class PageHTMLRefused(ValueError):
    """Client HTML past a bound; the server renders the view whole instead of patching."""


def measure_depth(html, limit):
    """The nesting depth of ``html`` as an HTML parser would build it, counted up to
    ``limit + 1`` (it stops there). Linear: every element is pushed and popped once, and
    an end tag with no open element of its name costs one lookup."""
    stack = []
    deepest = 0
    open_count = {}  # tag name -> how many of them are on the stack
    for match in _TAG.finditer(html):
        name = match.group(2).lower()
        if match.group(1):  # an end tag closes the innermost open element of its name
            if open_count.get(name):
                while True:
                    closed = stack.pop()
                    open_count[closed] -= 1
                    if closed == name:
                        break
            continue
        if name in VOID:
            continue
        stack.append(name)
        open_count[name] = open_count.get(name, 0) + 1
        if len(stack) > deepest:
            deepest = len(stack)
            if deepest > limit:
                break
    return deepest


def check_page_html(html, max_bytes, max_depth):
    """Raise PageHTMLRefused unless ``html`` is within ``max_bytes`` (UTF-8) and
    ``max_depth``."""
    size = len(html.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise PageHTMLRefused("page HTML of %d bytes exceeds the limit of %d" % (size, max_bytes))
    depth = measure_depth(html, max_depth)
    if depth > max_depth:
        raise PageHTMLRefused("page HTML nested deeper than %d elements" % max_depth)
