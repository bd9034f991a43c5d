"""Patch application: attr/text/splice ops over a fake DOM, path resolution and its cache, malformed ops."""

from html.parser import HTMLParser

import pytest
from djreconnect.patch import PatchError, apply_ops, check_op
from hypothesis import given, settings
from hypothesis import strategies as st


class Node:
    def __init__(self, tag=None, attrs=None, text=""):
        self.tag = tag  # None: a text node
        self.attrs = dict(attrs or {})
        self.text = text
        self.children = []


class _Builder(HTMLParser):
    """Just enough HTML: nested elements with attributes, and text."""

    def __init__(self):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.root = Node("#fragment")
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(node)
        self.stack.append(node)

    def handle_endtag(self, tag):
        assert self.stack[-1].tag == tag, "test html must be well nested"
        self.stack.pop()

    def handle_data(self, data):
        self.stack[-1].children.append(Node(text=data))


def parse(html):
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root.children


def render(node):
    if node.tag is None:
        return node.text
    attrs = "".join(' %s="%s"' % item for item in sorted(node.attrs.items()))
    inner = "".join(render(child) for child in node.children)
    return "<%s%s>%s</%s>" % (node.tag, attrs, inner, node.tag)


class FakeDom:
    """The adapter apply_ops talks to, counting its calls."""

    def __init__(self):
        self.child_calls = 0

    def child(self, node, index):
        self.child_calls += 1
        if 0 <= index < len(node.children):
            return node.children[index]
        return None

    def set_attribute(self, node, name, value):
        assert node.tag is not None, "attribute on a text node"
        node.attrs[name] = value

    def remove_attribute(self, node, name):
        assert node.tag is not None, "attribute on a text node"
        node.attrs.pop(name, None)

    def set_text(self, node, text):
        assert node.tag is None, "text set on an element"
        node.text = text

    def splice(self, node, start, count, html):
        assert start + count <= len(node.children), "splice past the end"
        node.children[start : start + count] = parse(html)

    def replace_children(self, node, html):
        assert node.tag is not None, "children replaced on a text node"
        node.children[:] = parse(html)


def tree(html):
    (root,) = parse(html)
    return root


def patched(html, ops):
    root = tree(html)
    dom = FakeDom()
    assert apply_ops(ops, dom, root) == len(ops)
    return render(root)


# --- the fake DOM itself ---------------------------------------------------------


def test_the_fake_dom_round_trips_html():
    html = '<ul id="l"><li class="a">one</li><li>two<b>!</b></li></ul>'
    assert render(tree(html)) == html


# --- attr --------------------------------------------------------------------


def test_attr_sets_and_replaces():
    html = '<div><p class="old">x</p></div>'
    assert patched(html, [["attr", [0], "class", "new"]]) == '<div><p class="new">x</p></div>'
    assert patched(html, [["attr", [0], "id", "p1"]]) == '<div><p class="old" id="p1">x</p></div>'
    assert patched(html, [["attr", [], "hidden", ""]]) == '<div hidden=""><p class="old">x</p></div>'


def test_attr_with_null_removes():
    html = '<div title="t"><p class="old">x</p></div>'
    assert patched(html, [["attr", [0], "class", None]]) == '<div title="t"><p>x</p></div>'
    assert patched(html, [["attr", [], "title", None]]) == '<div><p class="old">x</p></div>'
    assert patched(html, [["attr", [0], "absent", None]]) == html  # removing nothing is fine


# --- text --------------------------------------------------------------------


def test_text_sets_a_text_nodes_data():
    html = "<div><p>one</p><p>two</p></div>"
    assert patched(html, [["text", [1, 0], "2"]]) == "<div><p>one</p><p>2</p></div>"
    assert patched(html, [["text", [0, 0], ""]]) == "<div><p></p><p>two</p></div>"


# --- splice ------------------------------------------------------------------


def test_splice_removes():
    html = "<ul><li>a</li><li>b</li><li>c</li></ul>"
    assert patched(html, [["splice", [], 1, 1, ""]]) == "<ul><li>a</li><li>c</li></ul>"
    assert patched(html, [["splice", [], 0, 3, ""]]) == "<ul></ul>"


def test_splice_inserts():
    html = "<ul><li>a</li><li>c</li></ul>"
    assert patched(html, [["splice", [], 1, 0, "<li>b</li>"]]) == "<ul><li>a</li><li>b</li><li>c</li></ul>"
    assert patched(html, [["splice", [], 2, 0, "<li>d</li>"]]) == "<ul><li>a</li><li>c</li><li>d</li></ul>"
    assert patched(html, [["splice", [], 0, 0, "<li>0</li>"]]) == "<ul><li>0</li><li>a</li><li>c</li></ul>"


def test_splice_replaces():
    html = "<ul><li>a</li><li>b</li><li>c</li></ul>"
    ops = [["splice", [], 1, 2, '<li class="x">B</li><li>C</li><li>D</li>']]
    assert patched(html, ops) == '<ul><li>a</li><li class="x">B</li><li>C</li><li>D</li></ul>'


def test_splice_in_a_nested_node():
    html = "<div><ul><li>a</li></ul><p>t</p></div>"
    assert patched(html, [["splice", [0], 1, 0, "<li>b</li>"]]) == "<div><ul><li>a</li><li>b</li></ul><p>t</p></div>"


# --- paths ---------------------------------------------------------------------


def test_paths_walk_child_indexes_from_the_root():
    html = "<div><a>0</a><section><h1>t</h1><p>x<b>deep</b></p></section></div>"
    ops = [
        ["attr", [1, 1, 1], "class", "found"],
        ["text", [1, 1, 1, 0], "DEEP"],
        ["text", [1, 0, 0], "T"],
        ["attr", [0], "href", "/"],
    ]
    assert patched(html, ops) == (
        '<div><a href="/">0</a><section><h1>T</h1><p>x<b class="found">DEEP</b></p></section></div>'
    )


def test_several_ops_in_server_order():
    # Right to left, innermost first: earlier ops never shift a later op's indexes.
    html = "<ul><li>a</li><li>b</li><li>c</li></ul>"
    ops = [
        ["text", [2, 0], "C"],
        ["splice", [], 1, 1, ""],
        ["attr", [0], "class", "first"],
    ]
    assert patched(html, ops) == '<ul><li class="first">a</li><li>C</li></ul>'


def test_each_path_step_is_looked_up_once():
    root = tree("<div><ul><li>a</li><li>b</li></ul></div>")
    dom = FakeDom()
    apply_ops(
        [
            ["attr", [0, 1], "class", "x"],
            ["text", [0, 1, 0], "B"],
            ["attr", [0, 1], "id", "y"],
            ["attr", [0, 0], "class", "z"],
        ],
        dom,
        root,
    )
    # [0], [0,1], [0,1,0], [0,0]: four distinct nodes, four lookups.
    assert dom.child_calls == 4
    assert render(root) == '<div><ul><li class="z">a</li><li class="x" id="y">B</li></ul></div>'


def test_the_cache_forgets_nodes_a_splice_moved():
    html = "<ul><li>a</li><li>b</li><li>c</li></ul>"
    ops = [
        ["attr", [0], "class", "A"],  # remembers [0]
        ["attr", [1], "class", "B"],  # remembers [1] (b, about to be removed)
        ["attr", [2], "class", "C"],  # remembers [2] (c)
        ["splice", [], 1, 1, "<li>b1</li><li>b2</li>"],  # a, b1, b2, c
        ["attr", [0], "id", "left"],  # a left sibling: still a
        ["attr", [1], "id", "now-b1"],  # [1], where the splice started, is b1 now
        ["attr", [2], "id", "now-b2"],  # [2] is b2 now, not c
        ["attr", [3], "id", "now-c"],
    ]
    assert patched(html, ops) == (
        '<ul><li class="A" id="left">a</li><li id="now-b1">b1</li><li id="now-b2">b2</li>'
        '<li class="C" id="now-c">c</li></ul>'
    )


def test_the_cache_forgets_descendants_of_moved_nodes():
    html = "<div><p>a</p><p>b</p></div>"
    ops = [
        ["text", [1, 0], "B"],  # remembers [1] and [1, 0]
        ["splice", [], 0, 0, "<p>new</p>"],  # new, a, B
        ["text", [1, 0], "A"],  # [1, 0] is now a's text
        ["text", [2, 0], "BB"],
    ]
    assert patched(html, ops) == "<div><p>new</p><p>A</p><p>BB</p></div>"


def test_the_cache_keeps_nodes_outside_the_spliced_range():
    html = "<div><ul><li>1</li></ul><ol><li>2</li></ol></div>"
    root = tree(html)
    dom = FakeDom()
    apply_ops(
        [
            ["text", [1, 0, 0], "two"],  # remembers [1], [1,0], [1,0,0]
            ["splice", [0], 0, 1, "<li>one</li>"],  # inside [0]: [1...] did not move
            ["attr", [1, 0], "class", "kept"],
            ["attr", [0, 0], "class", "new"],  # inside the splice: looked up again
        ],
        dom,
        root,
    )
    assert render(root) == '<div><ul><li class="new">one</li></ul><ol><li class="kept">two</li></ol></div>'
    # [1], [1,0], [1,0,0], then [0] and [0,0]: [1,0] came from the cache.
    assert dom.child_calls == 5


def test_a_splice_of_a_node_then_ops_on_its_new_children():
    html = "<div><ul></ul></div>"
    ops = [["splice", [0], 0, 0, "<li>x</li><li>y</li>"], ["attr", [0, 1], "class", "second"]]
    assert patched(html, ops) == '<div><ul><li>x</li><li class="second">y</li></ul></div>'


def test_an_empty_patch_changes_nothing():
    root = tree("<p>x</p>")
    assert apply_ops([], FakeDom(), root) == 0
    assert render(root) == "<p>x</p>"


# --- malformed ops -------------------------------------------------------------

# Ops wrong in themselves, whatever the page.
MALFORMED_OPS = {
    "op not a list": ("attr", [], "a", "b"),
    "op a dict": {"kind": "attr"},
    "op a string": "attr",
    "empty op": [],
    "unknown kind": ["move", [0], 1],
    "kind not a string": [1, [0], "x"],
    "kind in capitals": ["ATTR", [0], "class", "x"],
    "path not a list": ["attr", "0", "class", "x"],
    "path a tuple": ["attr", (0,), "class", "x"],
    "path null": ["text", None, "x"],
    "path of strings": ["attr", ["0"], "class", "x"],
    "path of floats": ["attr", [0.0], "class", "x"],
    "path of bools": ["attr", [True], "class", "x"],
    "negative path step": ["attr", [-1], "class", "x"],
    "negative deeper step": ["text", [0, -2], "x"],
    "attr too short": ["attr", [0], "class"],
    "attr too long": ["attr", [0], "class", "x", "y"],
    "attr name not a string": ["attr", [0], 1, "x"],
    "attr value a number": ["attr", [0], "class", 1],
    "attr value a bool": ["attr", [0], "hidden", True],
    "text too short": ["text", [0, 0]],
    "text too long": ["text", [0, 0], "x", "y"],
    "text not a string": ["text", [0, 0], None],
    "splice too short": ["splice", [], 0, 0],
    "splice too long": ["splice", [], 0, 0, "", ""],
    "negative splice start": ["splice", [], -1, 0, ""],
    "negative splice count": ["splice", [], 0, -1, ""],
    "splice start a bool": ["splice", [], False, 0, ""],
    "splice count a string": ["splice", [], 0, "1", ""],
    "splice html null": ["splice", [], 0, 0, None],
}
# Well-formed ops that address no node of <div><p>x</p><p>y</p></div>.
MISSING_NODES = {
    "missing child": [["attr", [5], "class", "x"]],
    "missing grandchild": [["text", [0, 3], "x"]],
    "path through a text node": [["text", [0, 0, 0], "x"]],
    "missing node after good ops": [["attr", [0], "class", "ok"], ["attr", [1, 9], "class", "x"]],
}


@pytest.mark.parametrize("op", list(MALFORMED_OPS.values()), ids=list(MALFORMED_OPS))
def test_malformed_ops_raise_patch_error(op):
    root = tree("<div><p>x</p><p>y</p></div>")
    with pytest.raises(PatchError) as info:
        apply_ops([op], FakeDom(), root)
    assert str(info.value)
    with pytest.raises(PatchError):
        check_op(op)


@pytest.mark.parametrize("ops", list(MISSING_NODES.values()), ids=list(MISSING_NODES))
def test_ops_addressing_missing_nodes_raise_patch_error(ops):
    root = tree("<div><p>x</p><p>y</p></div>")
    for op in ops:
        check_op(op)  # well-formed...
    with pytest.raises(PatchError) as info:
        apply_ops(ops, FakeDom(), root)  # ...but not on this page
    assert str(info.value)


@pytest.mark.parametrize("ops", [("attr", [], "a", "b"), None, {"ops": []}, "[]"])
def test_a_patch_must_be_a_list(ops):
    with pytest.raises(PatchError):
        apply_ops(ops, FakeDom(), tree("<p></p>"))


@pytest.mark.parametrize(
    "op",
    [["attr", [], "class", "x"], ["attr", [0, 1], "class", None], ["text", [2], ""], ["splice", [], 0, 0, ""]],
)
def test_check_op_accepts_well_formed_ops(op):
    check_op(op)  # no exception


def test_an_op_is_refused_before_the_dom_is_touched():
    root = tree("<div><p>x</p></div>")
    dom = FakeDom()
    with pytest.raises(PatchError):
        apply_ops([["attr", [0], "class"]], dom, root)
    assert dom.child_calls == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 5) | st.text(max_size=4) | st.sampled_from(["attr", "text", "splice"]),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=10,
)


class ForgivingDom(FakeDom):
    """Accepts whatever a real DOM would: text on elements, attributes on text, splices past the end."""

    def set_attribute(self, node, name, value):
        node.attrs[name] = value

    def remove_attribute(self, node, name):
        node.attrs.pop(name, None)

    def set_text(self, node, text):
        node.text = text

    def splice(self, node, start, count, html):
        node.children[start : start + count] = parse(html)


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, max_size=4))
def test_arbitrary_ops_raise_only_patch_error(ops):
    root = tree("<div><p>x<b>y</b></p><p>z</p></div>")
    try:
        apply_ops(ops, ForgivingDom(), root)
    except PatchError:
        pass


def test_html_replaces_every_child_and_later_ops_walk_the_new_children():
    ops = [["html", [], "<p>new</p><p>two</p>"], ["attr", [1], "class", "x"]]
    assert patched("<div><p>old</p><span>a</span><b>c</b></div>", ops) == '<div><p>new</p><p class="x">two</p></div>'


def test_html_op_is_checked():
    with pytest.raises(PatchError):
        patched("<div></div>", [["html", [], 5]])
    with pytest.raises(PatchError):
        patched("<div></div>", [["html", []]])
