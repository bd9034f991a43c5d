"""HTML diffing: the patch that turns one render of a view into the next.

Both sides are parsed by an HTML5 parser (lexbor, through selectolax), so the tree
the server reasons about has the shape the browser builds (implied ``<tbody>``,
whitespace text nodes and all), and child-node paths mean the same on both sides.

Children of an element are matched by their common prefix and suffix (an element
matches an element of the same tag, ``id`` and ``dj-key``); matched pairs are
diffed in place, the unmatched middle is replaced by one splice. Subtrees marked
``dj-update="ignore"`` and nested views are never entered.

A splice carries HTML that the runtime parses in the context of the node it goes
into, so it must be the serialization a browser makes; ``node.html`` is lexbor's,
made right for SVG and MathML at parse time (``_escape_foreign_raw_text``).
"""

import re
from typing import Any, cast

from djreconnect import constants
from djreconnect.patch import OP_ATTR, OP_SPLICE, OP_TEXT
from selectolax.lexbor import LexborHTMLParser, LexborNode

TEXT = "-text"
COMMENT = "-comment"
_DOCUMENT = "<!DOCTYPE html><html><head></head><body>%s</body></html>"
# Elements whose content is not child nodes a path can walk into (a template's
# content is a separate fragment) or is raw text a fragment parse would read as
# markup: they are replaced whole when their content changes.
_WHOLE = frozenset(("template", "script", "style", "xmp", "iframe", "noembed", "noframes", "noscript"))
# Elements whose first newline the HTML parser drops; the serializer does not put it back.
_NEWLINE_EATERS = ("pre", "textarea", "listing")
_NEWLINE_EATER_START = re.compile(r"<(?:pre|textarea|listing)[\s/>]")
# HTML elements whose text is raw: serialized as is, never escaped. lexbor's serializer
# goes by the name alone, so it also writes raw the text of SVG and MathML elements of
# these names, which are ordinary elements there: a Jinja-escaped ``</style><img onerror=…>``
# in ``<svg><style>`` would come out as a live ``<img>``.
_RAW_TEXT_SELECTOR = "style, script, xmp, iframe, noembed, noframes, plaintext"
# SVG and MathML elements exist only below an <svg> or <math> start tag.
_FOREIGN_START = re.compile(r"<(?:svg|math)[\s/>]", re.IGNORECASE)
# A patch operation: [OP_TEXT, path, text], [OP_ATTR, path, name, value] or
# [OP_SPLICE, path, start, count, html] (see ``djreconnect.patch``).
Op = list[Any]
Path = list[int]


def html_of(node: LexborNode) -> str:
    """``node.html``. selectolax types it optional (None for a node it cannot reach);
    every node of a parsed tree has a serialization."""
    return cast(str, node.html)


def text_of(node: LexborNode) -> str:
    """``node.text_content`` of a text node (optional in selectolax's types, as above)."""
    return cast(str, node.text_content)


def tag_of(node: LexborNode) -> str:
    """``node.tag`` (optional in selectolax's types, as above)."""
    return cast(str, node.tag)


def body_of(parser: LexborHTMLParser) -> LexborNode:
    """``parser.body``: an HTML parser always makes a ``<body>`` (optional in selectolax's
    types, for a tree it could not build)."""
    return cast(LexborNode, parser.body)


class Fragment:
    """A parsed render: the child nodes of a view's root."""

    def __init__(self, parser: LexborHTMLParser, nodes: list[LexborNode]) -> None:
        self._parser = parser  # keeps the lexbor tree alive
        self.nodes = nodes

    @property
    def html(self) -> str:
        return "".join(html_of(node) for node in self.nodes)


def _children(node: LexborNode) -> list[LexborNode]:
    return list(node.iter(include_text=True))


def _foreign(element: LexborNode) -> bool:
    """Whether ``element`` is an SVG or MathML element. Its name does not tell
    (``<svg><style>`` is an SVG element, ``<svg><foreignObject><style>`` an HTML one);
    the parser knows, and says so in a serialization with namespace prefixes."""
    return cast(str, element.html_pretty(tag_with_ns=True)).startswith(("<svg:", "<math:"))


def _escape_text(text: str) -> str:
    """Text escaped as lexbor escapes it outside raw-text elements."""
    return text.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_foreign_raw_text(root: LexborNode) -> None:
    """Make lexbor's serialization of ``root`` right in SVG and MathML, in place.

    Each text node of a foreign element with a raw-text name gets its escaped form as
    its data, which lexbor then writes as is: ``node.html`` becomes the serialization a
    browser makes, everywhere, at C speed, and two subtrees are equal exactly when
    their HTML is. (Otherwise an ``<svg><style>`` holding the text ``<g></g>`` and one
    holding a ``<g>`` would both read ``<style><g></g></style>``.) Nothing reads that
    data as text: the diff replaces these elements whole (``_WHOLE``). The cost is one
    query, plus a look at each element of these names; template content is included.
    Callers skip it for HTML with no ``<svg>`` or ``<math>`` in it.
    """
    for element in root.css(_RAW_TEXT_SELECTOR):
        if _foreign(element):
            for child in _children(element):
                if child.tag == TEXT:
                    child.replace_with(_escape_text(text_of(child)))
    for content in root.template_fragments():
        _escape_foreign_raw_text(content)


def parse_fragment(html: str) -> Fragment:
    """Parse HTML that sits in a flow-content element (a ``<div>``, ``<main>``, ``<body>``)."""
    parser = LexborHTMLParser(_DOCUMENT % html)
    body = body_of(parser)
    if _FOREIGN_START.search(html):
        _escape_foreign_raw_text(body)
    return Fragment(parser, _children(body))


def _closest_view(node: LexborNode | None) -> LexborNode | None:
    while node is not None and constants.ATTR_VIEW not in node.attributes:
        node = node.parent
    return node


def find_root(parser: LexborHTMLParser) -> LexborNode:
    """The node a view renders into: the first ``[dj-view]``'s first ``[dj-root]`` if that
    one is the view's own (not a nested view's), else the ``[dj-view]`` itself; with no
    view, the first ``[dj-root]``, else ``<body>``. The runtime's ``dom.view_root`` is the
    same rule (a parity test holds them together)."""
    view = parser.css_first("[" + constants.ATTR_VIEW + "]")
    if view is not None:
        root = view.css_first("[" + constants.ATTR_ROOT + "]")
        if root is None or _closest_view(root) != view:
            return view
        return root
    root = parser.css_first("[" + constants.ATTR_ROOT + "]")
    return root if root is not None else body_of(parser)


def parse_render(html: str) -> Fragment:
    """Parse a full render (a page or a fragment) and keep its view root's children."""
    parser = LexborHTMLParser(html)
    root = find_root(parser)
    if _FOREIGN_START.search(html):
        _escape_foreign_raw_text(root)
    return Fragment(parser, _children(root))


def _same(old: LexborNode, new: LexborNode) -> bool:
    """Whether ``old`` can be patched into ``new`` in place."""
    tag = old.tag
    if tag != new.tag:
        return False
    if tag == TEXT or tag == COMMENT:
        return True
    if tag in _WHOLE and old.html != new.html:
        return False
    old_attrs = old.attributes
    new_attrs = new.attributes
    return old_attrs.get("id") == new_attrs.get("id") and old_attrs.get(constants.ATTR_KEY) == new_attrs.get(
        constants.ATTR_KEY
    )


def _opaque(node: LexborNode) -> bool:
    """Elements whose content the runtime or another view owns."""
    attrs = node.attributes
    return attrs.get(constants.ATTR_UPDATE) == constants.UPDATE_IGNORE or constants.ATTR_VIEW in attrs


def _text_of(node: LexborNode) -> str:
    if node.tag == COMMENT:
        # Not ``comment_content``: it strips the comment's whitespace.
        return html_of(node)[4:-3]
    return text_of(node)


def _html(node: LexborNode) -> str:
    """The HTML of ``node`` that a parse in its parent's context turns back into ``node``:
    its serialization, with the newline put back that a parser drops after an HTML
    ``<pre>``, ``<textarea>`` or ``<listing>`` (in template content too)."""
    html = html_of(node)
    tag = node.tag
    if tag in (TEXT, COMMENT) or not _NEWLINE_EATER_START.search(html):
        return html
    end = "</%s>" % tag
    if not html.endswith(end):  # a void element
        return html
    if tag == "template" and not _foreign(node):
        content = node.template_fragments()[:1]  # its own content comes first
        children = _children(content[0]) if content else []
    else:
        children = _children(node)
    inner = "".join(_html(child) for child in children)
    if (
        tag in _NEWLINE_EATERS
        and children
        and children[0].tag == TEXT
        and _text_of(children[0]).startswith("\n")
        and not _foreign(node)  # an SVG or MathML <textarea> keeps its newline
    ):
        inner = "\n" + inner
    return html[: html.index(">") + 1] + inner + end


def diff_nodes(old: LexborNode, new: LexborNode, path: Path, ops: list[Op]) -> None:
    """Append to ``ops`` what turns node ``old`` at ``path`` into ``new`` (same kind)."""
    tag = new.tag
    if tag == TEXT or tag == COMMENT:
        text = _text_of(new)
        if _text_of(old) != text:
            ops.append([OP_TEXT, path, text])
        return
    if _opaque(new) and _opaque(old):
        return
    if old.html == new.html:
        return
    # Children first, right to left: none of their operations moves a node
    # that an attribute operation on this element needs.
    diff_children(_children(old), _children(new), path, ops)
    old_attrs = old.attributes
    new_attrs = new.attributes
    for name in old_attrs:
        if name not in new_attrs:
            ops.append([OP_ATTR, path, name, None])
    for name, value in new_attrs.items():
        value = "" if value is None else value
        previous = old_attrs.get(name, None)
        if name not in old_attrs or ("" if previous is None else previous) != value:
            ops.append([OP_ATTR, path, name, value])


def diff_children(old: list[LexborNode], new: list[LexborNode], path: Path, ops: list[Op]) -> None:
    """Append to ``ops`` what turns child list ``old`` of the node at ``path`` into ``new``."""
    old_count = len(old)
    new_count = len(new)
    prefix = 0
    limit = min(old_count, new_count)
    while prefix < limit and _same(old[prefix], new[prefix]):
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and _same(old[old_count - 1 - suffix], new[new_count - 1 - suffix]):
        suffix += 1
    # Suffix pairs, right to left, at their old indexes (nothing left of them has moved yet).
    for offset in range(suffix):
        old_index = old_count - 1 - offset
        diff_nodes(old[old_index], new[new_count - 1 - offset], path + [old_index], ops)
    removed = old_count - prefix - suffix
    added = new[prefix : new_count - suffix]
    if removed or added:
        ops.append([OP_SPLICE, path, prefix, removed, "".join(_html(node) for node in added)])
    for index in range(prefix - 1, -1, -1):
        diff_nodes(old[index], new[index], path + [index], ops)


def diff(old: Fragment, new: Fragment) -> list[Op]:
    """The operations that turn Fragment ``old`` into Fragment ``new``."""
    ops: list[Op] = []
    diff_children(old.nodes, new.nodes, [], ops)
    return ops
