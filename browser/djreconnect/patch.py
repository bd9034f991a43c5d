"""The patch format and its application to a DOM, given as an adapter object.

The server diffs its last render of a view against the new one and sends a list
of operations addressed by child-node paths from the view's root. Applying them
takes one DOM call per path step and per change, never a walk of the tree.

Operations (lists, so they stay small on the wire):

    ["attr",   path, name, value]            set an attribute (value None: remove it)
    ["text",   path, text]                   set a text or comment node's data
    ["splice", path, start, count, html]     remove ``count`` child nodes at ``start``
                                             of the node at ``path``, insert ``html`` there
    ["html",   path, html]                   replace every child node of the node at
                                             ``path`` with ``html`` (a view rendered whole)

The server emits operations in an order in which earlier ones never shift the
indexes a later one walks through (right to left, innermost first).
"""

OP_ATTR = "attr"
OP_TEXT = "text"
OP_SPLICE = "splice"
OP_HTML = "html"


class PatchError(Exception):
    """An operation that does not fit the format or the page."""


def _is_index(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_path(path):
    if not isinstance(path, list):
        raise PatchError("a path must be a list of child indexes")
    for step in path:
        if not _is_index(step):
            raise PatchError("a path must be a list of child indexes")


def check_op(op):
    """Raise PatchError unless ``op`` is a well-formed operation."""
    if not isinstance(op, list) or not op:
        raise PatchError("an operation must be a non-empty list")
    operation = op[0]
    if operation == OP_ATTR:
        if len(op) != 4 or not isinstance(op[2], str) or not (op[3] is None or isinstance(op[3], str)):
            raise PatchError("attr takes a path, a name and a string or null")
    elif operation == OP_TEXT:
        if len(op) != 3 or not isinstance(op[2], str):
            raise PatchError("text takes a path and a string")
    elif operation == OP_HTML:
        if len(op) != 3 or not isinstance(op[2], str):
            raise PatchError("html takes a path and html")
    elif operation == OP_SPLICE:
        if len(op) != 5 or not _is_index(op[2]) or not _is_index(op[3]) or not isinstance(op[4], str):
            raise PatchError("splice takes a path, a start, a count and html")
    else:
        raise PatchError("unknown operation %r" % (operation,))
    _check_path(op[1])


class _Resolver:
    """Finds nodes by path, remembering the steps it has already walked."""

    def __init__(self, dom, root):
        self.dom = dom
        self.nodes = {(): root}

    def node(self, path):
        key = tuple(path)
        found = self.nodes.get(key)
        if found is not None:
            return found
        parent = self.node(path[:-1])
        child = self.dom.child(parent, path[-1])
        if child is None:
            raise PatchError("no node at path %r" % (path,))
        self.nodes[key] = child
        return child

    def forget_below(self, path, start):
        """Drop remembered nodes at or after child ``start`` of ``path``: a splice moved them."""
        depth = len(path)
        prefix = tuple(path)
        for key in list(self.nodes):
            if len(key) > depth and key[:depth] == prefix and key[depth] >= start:
                del self.nodes[key]


def apply_ops(ops, dom, root):
    """Apply ``ops`` under ``root`` through ``dom``; returns how many were applied.

    ``dom`` provides ``child(node, index)`` (None when absent),
    ``set_attribute(node, name, value)``, ``remove_attribute(node, name)``,
    ``set_text(node, text)``, ``splice(node, start, count, html)`` and
    ``replace_children(node, html)``.
    """
    if not isinstance(ops, list):
        raise PatchError("a patch must be a list of operations")
    resolver = _Resolver(dom, root)
    for op in ops:
        check_op(op)
        operation = op[0]
        node = resolver.node(op[1])
        if operation == OP_ATTR:
            if op[3] is None:
                dom.remove_attribute(node, op[2])
            else:
                dom.set_attribute(node, op[2], op[3])
        elif operation == OP_TEXT:
            dom.set_text(node, op[2])
        elif operation == OP_HTML:
            dom.replace_children(node, op[2])
            resolver.forget_below(op[1], 0)
        else:
            dom.splice(node, op[2], op[3], op[4])
            resolver.forget_below(op[1], op[2])
    return len(ops)
