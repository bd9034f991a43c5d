"""HTML diffing: the patch that turns one render of a view into the next.

Both sides are parsed by an HTML5 parser (lexbor, through selectolax), so the tree
the server reasons about has the shape the browser builds (implied ``<tbody>``,
whitespace text nodes and all), and child-node paths mean the same on both sides.

Children of an element are matched by their common prefix and suffix (an element
matches an element of the same tag, ``id`` and ``dj-key``); matched pairs are
diffed in place, the unmatched middle is replaced by one splice. Subtrees marked
``dj-update="ignore"`` and nested views are never entered.
"""

from djreconnect import constants
from djreconnect.patch import OP_ATTR, OP_SPLICE, OP_TEXT
from selectolax.lexbor import LexborHTMLParser

TEXT = "-text"
COMMENT = "-comment"
_DOCUMENT = "<!DOCTYPE html><html><head></head><body>%s</body></html>"
# Elements whose content is not child nodes a path can walk into (a template's
# content is a separate fragment) or is raw text a fragment parse would read as
# markup: they are replaced whole when their content changes.
_WHOLE = frozenset(("template", "script", "style", "xmp", "iframe", "noembed", "noframes", "noscript"))
# Elements whose first newline the HTML parser drops; the serializer does not put it back.
_NEWLINE_EATERS = ("pre", "textarea", "listing")


class Fragment:
    """A parsed render: the child nodes of a view's root."""

    def __init__(self, parser, nodes):
        self._parser = parser  # keeps the lexbor tree alive
        self.nodes = nodes

    @property
    def html(self):
        return "".join(node.html for node in self.nodes)


def _children(node):
    return list(node.iter(include_text=True))


def parse_fragment(html):
    """Parse HTML that sits in a flow-content element (a ``<div>``, ``<main>``, ``<body>``)."""
    parser = LexborHTMLParser(_DOCUMENT % html)
    return Fragment(parser, _children(parser.body))


def find_root(parser):
    """The node a view renders into: the ``[dj-root]`` of the first ``[dj-view]``,
    else the ``[dj-view]`` itself, else ``<body>``."""
    view = parser.css_first("[" + constants.ATTR_VIEW + "]")
    if view is not None:
        root = view.css_first("[" + constants.ATTR_ROOT + "]")
        return root if root is not None else view
    root = parser.css_first("[" + constants.ATTR_ROOT + "]")
    return root if root is not None else parser.body


def parse_render(html):
    """Parse a full render (a page or a fragment) and keep its view root's children."""
    parser = LexborHTMLParser(html)
    return Fragment(parser, _children(find_root(parser)))


def _kind(node):
    return node.tag


def _same(old, new):
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


def _opaque(node):
    """Elements whose content the runtime or another view owns."""
    attrs = node.attributes
    return attrs.get(constants.ATTR_UPDATE) == constants.UPDATE_IGNORE or constants.ATTR_VIEW in attrs


def _text_of(node):
    if node.tag == COMMENT:
        # Not ``comment_content``: it strips the comment's whitespace.
        return node.html[4:-3]
    return node.text_content


def _html(node):
    """The HTML of ``node`` that a fragment parse turns back into ``node``."""
    html = node.html
    tag = node.tag
    if tag in (TEXT, COMMENT, "template") or not any("<" + eater in html for eater in _NEWLINE_EATERS):
        return html
    end = "</%s>" % tag
    if not html.endswith(end):  # a void element
        return html
    children = _children(node)
    inner = "".join(_html(child) for child in children)
    if tag in _NEWLINE_EATERS and children and children[0].tag == TEXT and _text_of(children[0]).startswith("\n"):
        inner = "\n" + inner
    return html[: html.index(">") + 1] + inner + end


def diff_nodes(old, new, path, ops):
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


def diff_children(old, new, path, ops):
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


def diff(old, new):
    """The operations that turn Fragment ``old`` into Fragment ``new``."""
    ops = []
    diff_children(old.nodes, new.nodes, [], ops)
    return ops
