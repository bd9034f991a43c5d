"""diff.py: the ops it emits, applied by djreconnect.patch to an in-memory DOM, rebuild the new render."""

import html as html_lib
import json

import markupsafe
import pytest
from djreconnect.patch import apply_ops, check_op
from djreconnect_server.diff import diff, parse_fragment, parse_render
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

# --- an in-memory DOM, built from selectolax's parse -------------------------------

TEXT = "-text"
COMMENT = "-comment"
VOID = frozenset(
    "area base br col embed hr img input link meta source track wbr basefont bgsound frame keygen param".split()
)
# Children of these HTML elements serialize unescaped (noscript only with scripting on,
# as in a browser). In SVG and MathML they are ordinary elements.
RAW_TEXT = frozenset("style script xmp iframe noembed noframes plaintext".split())
HTML, SVG, MATHML = "html", "svg", "math"


class Node:
    """An element (tag, attrs, children, namespace), a text or a comment (data)."""

    def __init__(self, tag, attrs=None, children=None, data=None, content=None, ns=HTML):
        self.tag = tag
        self.attrs = attrs if attrs is not None else {}
        self.children = children if children is not None else []
        self.data = data
        self.content = content  # a <template>'s content: not child nodes, as in a browser
        self.ns = ns  # "html", "svg" or "math"

    @property
    def opaque(self):
        return self.attrs.get("dj-update") == "ignore" or "dj-view" in self.attrs


def namespace_of(element):
    """The namespace lexbor gave an element (its name does not tell: <svg><style> is SVG)."""
    head = element.html_pretty(tag_with_ns=True)
    return SVG if head.startswith("<svg:") else MATHML if head.startswith("<math:") else HTML


def tree_of(node):
    """An in-memory copy of a selectolax node."""
    if node.tag == TEXT:
        return Node(TEXT, data=node.text_content)
    if node.tag == COMMENT:
        return Node(COMMENT, data=node.html[len("<!--") : -len("-->")])
    attrs = {name: "" if value is None else value for name, value in node.attributes.items()}
    ns = namespace_of(node)
    content = None
    if node.tag == "template" and ns == HTML:
        content = [tree_of(child) for child in node.template_fragments()[0].iter(include_text=True)]
    children = [tree_of(child) for child in node.iter(include_text=True)]
    return Node(node.tag, attrs, children, content=content, ns=ns)


def parsed(html):
    """The nodes a browser's parser makes of ``html`` in a ``<body>``: the page's side,
    from lexbor's parse as it is (the diff's own parse adjusts foreign raw text)."""
    parser = LexborHTMLParser("<!DOCTYPE html><html><head></head><body>%s</body></html>" % html)
    return [tree_of(node) for node in parser.body.iter(include_text=True)]


def _escape_text(text):
    return text.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(value):
    return (
        value.replace("&", "&amp;")
        .replace("\xa0", "&nbsp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def serialize(nodes, parent=None, sort_attrs=False, blank_opaque=False, namespaces=False):
    """The HTML serialization algorithm (lexbor's too, with sort_attrs=False, for HTML);
    optionally attribute-order independent, with the content of ignored subtrees and
    nested views left out, and with SVG and MathML tags written ``svg:g``, ``math:mi``."""
    raw = parent is not None and parent.ns == HTML and parent.tag in RAW_TEXT
    out = []
    for node in nodes:
        if node.tag == TEXT:
            out.append(node.data if raw else _escape_text(node.data))
        elif node.tag == COMMENT:
            out.append("<!--%s-->" % node.data)
        else:
            items = sorted(node.attrs.items()) if sort_attrs else node.attrs.items()
            name = node.ns + ":" + node.tag if namespaces and node.ns != HTML else node.tag
            out.append("<%s%s>" % (name, "".join(' %s="%s"' % (k, _escape_attr(v)) for k, v in items)))
            if node.tag in VOID and node.ns == HTML:
                continue
            if not (blank_opaque and node.opaque):
                inner = node.content if node.tag == "template" and node.ns == HTML else node.children
                out.append(serialize(inner, node, sort_attrs, blank_opaque, namespaces))
            out.append("</%s>" % name)
    return "".join(out)


def context_element(parent):
    """A lexbor element with the name, namespace and attributes of ``parent``."""
    if parent.ns == HTML:
        return LexborHTMLParser("").create_node(parent.tag)
    attrs = "".join(' %s="%s"' % (k, _escape_attr(v)) for k, v in parent.attrs.items())
    markup = "<%s%s></%s>" % (parent.tag, attrs, parent.tag)
    nested = parent.tag != parent.ns  # an <svg> or <math> element in HTML, else one inside it
    if nested:
        markup = "<%s>%s</%s>" % (parent.ns, markup, parent.ns)
    element = LexborHTMLParser("<body>%s</body>" % markup).body.child
    if nested:
        element = element.child
    assert element.tag == parent.tag and namespace_of(element) == parent.ns
    return element


def parse_in_context(parent, html):
    """Nodes parsed from ``html`` the way the runtime parses a splice: in the context of
    the node it goes into (its name, namespace and attributes), as ``insertAdjacentHTML``."""
    context = context_element(parent)
    context.inner_html = html
    return [tree_of(node) for node in context.iter(include_text=True)]


def parse_as_fragment(html):
    """Nodes parsed from ``html`` in a ``<div>``."""
    return parse_in_context(Node("div"), html)


class TreeDom:
    """The adapter djreconnect.patch.apply_ops drives; records paths walked into opaque elements."""

    def __init__(self):
        self.entered_opaque = []

    def child(self, node, index):
        if node.tag in (TEXT, COMMENT):
            return None
        if node.opaque:
            self.entered_opaque.append(node)
        return node.children[index] if index < len(node.children) else None

    def set_attribute(self, node, name, value):
        assert node.tag not in (TEXT, COMMENT)
        node.attrs[name] = value

    def remove_attribute(self, node, name):
        assert node.tag not in (TEXT, COMMENT)
        assert name in node.attrs, "removing an attribute that is not there"
        del node.attrs[name]

    def set_text(self, node, text):
        assert node.tag in (TEXT, COMMENT)
        node.data = text

    def splice(self, node, start, count, html):
        assert node.tag not in (TEXT, COMMENT)
        assert start + count <= len(node.children), "splice past the end of the children"
        node.children[start : start + count] = parse_in_context(node, html)

    def replace_children(self, node, html):
        assert node.tag not in (TEXT, COMMENT)
        node.children[:] = parse_as_fragment(html)


def dom_of(html):
    """A view root (a <div>) holding ``html`` parsed as the browser holds it."""
    return Node("div", {}, parsed(html))


def patch(old_html, new_html):
    """Diff, send the ops through JSON, apply them to a DOM built from ``old_html``;
    returns (ops, patched root, the new render's nodes, the adapter)."""
    old = parse_fragment(old_html)
    new = parse_fragment(new_html)
    ops = diff(old, new)
    for op in ops:
        check_op(op)
    ops = json.loads(json.dumps(ops))
    root = dom_of(old_html)
    dom = TreeDom()
    assert apply_ops(ops, dom, root) == len(ops)
    return ops, root, parsed(new_html), dom


def assert_patches(old_html, new_html):
    ops, root, expected, dom = patch(old_html, new_html)
    assert serialize(root.children, sort_attrs=True, namespaces=True) == serialize(
        expected, sort_attrs=True, namespaces=True
    ), ops
    return ops


# --- the adapter itself ------------------------------------------------------------


ADAPTER_CASES = [
    'a &amp; b &lt;c&gt; d&nbsp;e<!-- note --><br><img src="x.png" alt="a &quot;b&quot;">',
    "<table><tr><td>1</td></tr></table><ul>\n  <li>x</li>\n</ul>",
    "<textarea>a &lt;b&gt; &amp; c</textarea><pre>\nline</pre><style>a > b { content: '&amp;' }</style>",
    '<input checked value=""><select multiple><option selected>o</option></select>',
    "<template><tr><td>cell</td></tr></template>",
    '<svg viewBox="0 0 10 10"><foreignObject><p>x</p></foreignObject></svg>',
]


@pytest.mark.parametrize("html", ADAPTER_CASES)
def test_adapter_serializes_like_the_parser(html):
    assert serialize(parsed(html)) == parse_fragment(html).html


def test_adapter_splice_parses_table_rows_in_the_tbody():
    root = dom_of("<table><tbody><tr><td>1</td></tr></tbody></table>")
    tbody = root.children[0].children[0]
    TreeDom().splice(tbody, 1, 0, "<tr><td>2</td></tr>")
    assert serialize(root.children) == "<table><tbody><tr><td>1</td></tr><tr><td>2</td></tr></tbody></table>"


def test_adapter_splice_parses_in_the_namespace_of_its_parent():
    root = dom_of("<svg></svg><math></math>")
    svg, math = root.children
    TreeDom().splice(svg, 0, 0, "<circle></circle><style>a&lt;b</style>")
    TreeDom().splice(math, 0, 0, "<mi>x</mi>")
    assert serialize(root.children, namespaces=True) == (
        "<svg:svg><svg:circle></svg:circle><svg:style>a&lt;b</svg:style></svg:svg><math:math><math:mi>x</math:mi></math:math>"
    )
    assert svg.children[1].children[0].data == "a<b"


def test_adapter_serializes_foreign_raw_text_names_escaped():
    [svg] = parsed("<svg><style>a&lt;b</style><foreignObject><style>a&lt;b</style></foreignObject></svg>")
    assert serialize([svg]) == "<svg><style>a&lt;b</style><foreignObject><style>a&lt;b</style></foreignObject></svg>"
    assert svg.children[0].children[0].data == "a<b"  # SVG: an escaped text
    assert svg.children[1].children[0].children[0].data == "a&lt;b"  # HTML: raw text


# --- hand-written cases ------------------------------------------------------------


def test_attribute_change_is_one_attr_op():
    assert assert_patches('<p class="a">x</p>', '<p class="b">x</p>') == [["attr", [0], "class", "b"]]


def test_attribute_removed_and_added():
    ops = assert_patches('<input name="q" disabled>', '<input name="q" checked>')
    assert sorted(ops, key=str) == sorted([["attr", [0], "disabled", None], ["attr", [0], "checked", ""]], key=str)


def test_boolean_attribute_given_a_value():
    assert assert_patches("<option selected>a</option>", '<option selected="selected">a</option>') == [
        ["attr", [0], "selected", "selected"]
    ]


def test_text_change_is_one_text_op():
    assert assert_patches("<p>old</p>", "<p>new &amp; improved</p>") == [["text", [0, 0], "new & improved"]]


def test_comment_change_is_a_text_op():
    assert assert_patches("<div><!-- a --></div>", "<div><!-- b --></div>") == [["text", [0, 0], " b "]]


def test_comment_inserted_between_elements():
    ops = assert_patches("<b>1</b><i>2</i>", "<b>1</b><!--x--><i>2</i>")
    assert ops == [["splice", [], 1, 0, "<!--x-->"]]


def test_whitespace_text_nodes_count_in_paths():
    ops = assert_patches("<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>", "<ul>\n  <li>a</li>\n  <li>c</li>\n</ul>")
    assert ops == [["text", [0, 3, 0], "c"]]


def test_whitespace_change_is_patched():
    assert assert_patches("<p>a</p> <p>b</p>", "<p>a</p>\n\n<p>b</p>") == [["text", [1], "\n\n"]]


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("<li>b</li><li>c</li>", "<li>a</li><li>b</li><li>c</li>", [["splice", [], 0, 0, "<li>a</li>"]]),
        ("<li>a</li><li>c</li>", "<li>a</li><li>b</li><li>c</li>", [["splice", [], 1, 0, "<li>b</li>"]]),
        ("<li>a</li><li>b</li>", "<li>a</li><li>b</li><li>c</li>", [["splice", [], 2, 0, "<li>c</li>"]]),
        ("<li>a</li><li>b</li><li>c</li>", "<li>b</li><li>c</li>", [["splice", [], 0, 1, ""]]),
        ("<li>a</li><li>b</li><li>c</li>", "<li>a</li><li>c</li>", [["splice", [], 1, 1, ""]]),
        ("<li>a</li><li>b</li><li>c</li>", "<li>a</li><li>b</li>", [["splice", [], 2, 1, ""]]),
    ],
    ids=["insert-start", "insert-middle", "insert-end", "remove-start", "remove-middle", "remove-end"],
)
def test_keyed_insert_and_remove(old, new, expected):
    # Keys make the siblings distinct, so prefix/suffix matching finds the one changed place.
    keyed = lambda html: (
        html.replace("<li>a", '<li dj-key="a">a')
        .replace("<li>b", '<li dj-key="b">b')
        .replace("<li>c", '<li dj-key="c">c')
    )
    expected = [op[:4] + [keyed(op[4])] for op in expected]
    assert assert_patches("<ul>%s</ul>" % keyed(old), "<ul>%s</ul>" % keyed(new)) == [
        [op[0], [0] + op[1]] + op[2:] for op in expected
    ]


@pytest.mark.parametrize(
    "old, new",
    [
        ("<p>1</p><p>2</p><p>3</p>", "<div>1</div><p>2</p><p>3</p>"),
        ("<p>1</p><p>2</p><p>3</p>", "<p>1</p><div>2</div><p>3</p>"),
        ("<p>1</p><p>2</p><p>3</p>", "<p>1</p><p>2</p><div>3</div>"),
        ("<p>1</p><p>2</p><p>3</p>", "text<p>2</p><!--c-->"),
        ("<p>1</p><p>2</p><p>3</p>", ""),
        ("", "<p>1</p><p>2</p><p>3</p>"),
        ("x", "<p>x</p>"),
        ("<p>x</p>", "x"),
    ],
)
def test_replacements_at_start_middle_end(old, new):
    ops = assert_patches(old, new)
    assert ops and any(op[0] == "splice" for op in ops)


def test_replacement_in_the_middle_is_one_splice_of_the_changed_node():
    assert assert_patches("<p>1</p><p>2</p><p>3</p>", "<p>1</p><div>2</div><p>3</p>") == [
        ["splice", [], 1, 1, "<div>2</div>"]
    ]


def test_nested_changes_at_several_depths():
    old = '<section id="s"><h2>T</h2><div class="x"><p>a <b>b</b> c</p><ul><li>1</li></ul></div></section>'
    new = '<section id="s"><h2>T2</h2><div class="y"><p>a <b>B</b> c</p><ul><li>1</li><li>2</li></ul></div></section>'
    ops = assert_patches(old, new)
    assert ["text", [0, 0, 0], "T2"] in ops
    assert ["attr", [0, 1], "class", "y"] in ops
    assert ["text", [0, 1, 0, 1, 0], "B"] in ops
    assert ["splice", [0, 1, 1], 1, 0, "<li>2</li>"] in ops
    assert len(ops) == 4


def test_table_paths_go_through_the_implied_tbody():
    ops = assert_patches("<table><tr><td>a</td><td>b</td></tr></table>", "<table><tr><td>a</td><td>B</td></tr></table>")
    # table > tbody > tr > td[1] > text
    assert ops == [["text", [0, 0, 0, 1, 0], "B"]]


def test_table_row_added_is_spliced_into_the_tbody():
    ops = assert_patches("<table><tr><td>1</td></tr></table>", "<table><tr><td>1</td></tr><tr><td>2</td></tr></table>")
    assert ops == [["splice", [0, 0], 1, 0, "<tr><td>2</td></tr>"]]


def test_table_with_thead_and_whitespace():
    assert_patches(
        "<table>\n<thead><tr><th>h</th></tr></thead>\n<tr><td>1</td></tr>\n</table>",
        "<table>\n<thead><tr><th>H</th><th>2</th></tr></thead>\n<tr><td>1</td></tr>\n<tr><td>x</td></tr>\n</table>",
    )


@pytest.mark.parametrize(
    "old, new",
    [
        ("<textarea>old</textarea>", "<textarea>new &lt;text&gt;</textarea>"),
        ("<textarea></textarea>", "<textarea>typed</textarea>"),
        ("<textarea>typed</textarea>", "<textarea></textarea>"),
        ("<textarea>a</textarea>", "<textarea>\n\nstarts with a newline</textarea>"),
        ("<p>x</p>", "<textarea>\n\nblank first line</textarea>"),
        ("<p>x</p>", "<div><pre>\n\nblank first line</pre></div>"),
        ("<p>x</p>", "<pre>\n\n</pre><listing>\n\nl</listing>"),
    ],
)
def test_textarea_and_pre_content(old, new):
    assert_patches(old, new)


def test_textarea_text_is_a_text_op_on_its_text_node():
    ops = assert_patches('<textarea id="body">one</textarea>', '<textarea id="body">two\nlines</textarea>')
    assert ops == [["text", [0, 0], "two\nlines"]]


def test_spliced_pre_keeps_its_leading_blank_line():
    # The parser drops the newline right after <pre>; the splice must carry one more.
    old = parse_fragment("<p>x</p>")
    new = parse_fragment("<pre>\n\ncode</pre>")
    [op] = diff(old, new)
    assert op[0] == "splice"
    [pre] = parse_as_fragment(op[4])
    assert pre.children[0].data == "\ncode"


def test_template_content_change_replaces_the_template():
    ops = assert_patches("<template><b>1</b></template><p>x</p>", "<template><b>2</b></template><p>x</p>")
    assert ops == [["splice", [], 0, 1, "<template><b>2</b></template>"]]


def test_template_attribute_change_keeps_content():
    assert_patches('<template id="t" class="a"><b>1</b></template>', '<template id="t" class="b"><b>1</b></template>')


@pytest.mark.parametrize(
    "old, new",
    [
        ("<style></style>", "<style>a > b { color: red } /* <b> &amp; */</style>"),
        ("<style>a{}</style>", "<style>a<b &amp;</style>"),
        ('<script type="application/json"></script>', '<script type="application/json">{"a": "<b>&amp;"}</script>'),
    ],
)
def test_raw_text_elements_are_replaced_whole(old, new):
    assert_patches(old, new)


def test_svg_attributes_keep_their_case():
    ops = assert_patches(
        '<svg viewBox="0 0 1 1"><circle r="1"></circle></svg>', '<svg viewBox="0 0 2 2"><circle r="2"></circle></svg>'
    )
    assert ["attr", [0], "viewBox", "0 0 2 2"] in ops


def test_entities_and_attribute_escaping_survive_the_wire():
    assert_patches(
        '<a title="x" href="/a">a</a>',
        '<a title="&quot;quoted&quot; &amp; <angled>" href="/a?x=1&amp;y=2">a &lt;&amp;&gt;&nbsp;b</a>',
    )


# --- identity, matching ------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    ["", "text", "<p>x</p>", "<table><tr><td>1</td></tr></table>"] + ADAPTER_CASES,
)
def test_identical_renders_give_no_ops(html):
    assert diff(parse_fragment(html), parse_fragment(html)) == []


def test_different_id_is_replaced_not_patched():
    ops = assert_patches('<div id="a" class="c">x</div>', '<div id="b" class="c">x</div>')
    assert ops == [["splice", [], 0, 1, '<div id="b" class="c">x</div>']]


def test_different_dj_key_is_replaced_not_patched():
    ops = assert_patches('<li dj-key="1">x</li>', '<li dj-key="2">y</li>')
    assert ops == [["splice", [], 0, 1, '<li dj-key="2">y</li>']]


def test_id_added_is_a_replacement():
    ops = assert_patches("<input>", '<input id="x">')
    assert ops == [["splice", [], 0, 1, '<input id="x">']]


def test_different_tag_is_replaced():
    assert assert_patches("<b>x</b>", "<i>x</i>") == [["splice", [], 0, 1, "<i>x</i>"]]


def test_prepending_to_a_keyed_list_keeps_the_others():
    rows = lambda keys: "<ul>%s</ul>" % "".join('<li dj-key="%s">%s</li>' % (k, k) for k in keys)
    assert assert_patches(rows("bcdef"), rows("abcdef")) == [["splice", [0], 0, 0, '<li dj-key="a">a</li>']]


# --- opaque subtrees ---------------------------------------------------------------


def test_ignored_subtree_is_never_entered():
    old = '<div id="editor" dj-update="ignore"><p>client <b>owned</b></p></div><p>1</p>'
    new = '<div id="editor" dj-update="ignore">server text<i>x</i></div><p>2</p>'
    ops, root, _, dom = patch(old, new)
    assert ops == [["text", [1, 0], "2"]]
    assert dom.entered_opaque == []
    assert serialize(root.children[:1]) == '<div id="editor" dj-update="ignore"><p>client <b>owned</b></p></div>'


def test_ignored_subtree_deep_in_the_tree_is_never_entered():
    old = '<form><fieldset><div dj-update="ignore"><p>a</p><p>b</p></div><span>1</span></fieldset></form>'
    new = '<form><fieldset><div dj-update="ignore"></div><span>2</span></fieldset></form>'
    ops, _, _, dom = patch(old, new)
    assert ops == [["text", [0, 0, 1, 0], "2"]]
    assert dom.entered_opaque == []


def test_nested_view_content_is_never_entered():
    old = '<h1>a</h1><div dj-view="child" id="c"><div dj-root><p>child render 1</p></div></div>'
    new = '<h1>b</h1><div dj-view="child" id="c"><div dj-root><p>child render 2</p><p>more</p></div></div>'
    ops, _, _, dom = patch(old, new)
    assert ops == [["text", [0, 0], "b"]]
    assert dom.entered_opaque == []


def test_identical_ignored_subtrees_give_no_ops():
    html = '<div dj-update="ignore"><p>x</p></div>'
    assert diff(parse_fragment(html), parse_fragment(html)) == []


def test_new_ignored_element_is_inserted_with_its_content():
    ops = assert_patches("<p>x</p>", '<p>x</p><div dj-update="ignore"><b>initial</b></div>')
    assert ops == [["splice", [], 1, 0, '<div dj-update="ignore"><b>initial</b></div>']]


# --- script injection through foreign content --------------------------------------
#
# In SVG and MathML, <style>, <script>, <xmp>, <iframe>, <noembed> and <noframes> are
# ordinary elements: a Jinja-escaped value in them is text holding a "<", and a splice
# that wrote it raw (as for the HTML elements of these names) would be read as markup
# by the page's parser, which parses a splice in the context of the node it goes into.

FOREIGN_ROOTS = ("svg", "math")
RAW_TEXT_NAMES = ("style", "script", "xmp", "iframe", "noembed", "noframes")
INJECTIONS = (
    "</{tag}><img src=x onerror=alert(1)>",
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "<!--</{tag}><img src=x onerror=alert(1)>-->",
    "<![CDATA[</{tag}><img src=x onerror=alert(1)>]]>",
    "</{tag}></{root}><img src=x onerror=alert(1)>",
)
# How the value reaches the page: the element's text changes, the element is added to
# the <svg>/<math> already there, or the <svg>/<math> is added with it.
ARRIVALS = {
    "changed": "<p>a</p><{root}><{tag}>first</{tag}></{root}>",
    "added": "<p>a</p><{root}></{root}>",
    "added-with-root": "<p>a</p>",
}


def node_at(fragment, path):
    """The lexbor node at ``path`` in a parsed render, or the parent of its nodes for []."""
    nodes = fragment.nodes
    node = nodes[0].parent
    for index in path:
        node = nodes[index]
        nodes = list(node.iter(include_text=True))
    return node


def elements_in(node):
    """Every element under ``node``, as namespace:tag, in document order."""
    found = []
    for child in node.iter(include_text=True):
        if child.tag not in (TEXT, COMMENT):
            found.append("%s:%s" % (namespace_of(child), child.tag))
            found.extend(elements_in(child))
    return found


@pytest.mark.parametrize("arrival", ARRIVALS)
@pytest.mark.parametrize("injection", range(len(INJECTIONS)))
@pytest.mark.parametrize("tag", RAW_TEXT_NAMES)
@pytest.mark.parametrize("root", FOREIGN_ROOTS)
def test_escaped_text_in_foreign_raw_text_names_stays_text(root, tag, injection, arrival):
    payload = INJECTIONS[injection].format(tag=tag, root=root)
    old_html = ARRIVALS[arrival].format(root=root, tag=tag)
    new_html = "<p>a</p><{root}><{tag}>{value}</{tag}></{root}>".format(
        root=root, tag=tag, value=markupsafe.escape(payload)
    )
    old = parse_fragment(old_html)
    ops = diff(old, parse_fragment(new_html))
    [splice] = [op for op in ops if op[0] == "splice"]
    # Parse the splice's HTML as the page does, in the context of the node it goes into.
    parent = node_at(old, splice[1])
    parent.inner_html = splice[4]
    expected = ["%s:%s" % (root, tag)]
    if arrival == "added-with-root":
        expected.insert(0, "%s:%s" % (root, root))
    assert elements_in(parent) == expected, splice
    assert parent.css_first(tag).text() == payload
    assert_patches(old_html, new_html)


@pytest.mark.parametrize(
    "html",
    [
        "<svg><foreignObject><style>{}</style></foreignObject></svg>",
        "<svg><desc><script>{}</script></desc></svg>",
        "<math><mi><xmp>{}</xmp></mi></math>",
        '<math><annotation-xml encoding="text/html"><style>{}</style></annotation-xml></math>',
    ],
    ids=["foreignObject", "desc", "mi", "annotation-xml"],
)
def test_html_raw_text_inside_foreign_content_is_still_raw(html):
    """Integration points hold HTML elements: their text stays raw, as lexbor writes it."""
    value = markupsafe.escape("</x><img src=x onerror=alert(1)>")
    ops = assert_patches("<p>a</p>", "<p>a</p>" + html.format(value))
    [splice] = ops
    assert str(value) in splice[4]  # raw: the entities themselves, as the template wrote them


@pytest.mark.parametrize(
    "html",
    [
        # Not an integration point without the encoding: its <style> is MathML.
        "<math><annotation-xml><style>{}</style></annotation-xml></math>",
        # MathML in HTML in SVG.
        "<svg><foreignObject><p><math><style>{}</style></math></p></foreignObject></svg>",
        # Template content.
        "<template><svg><style>{}</style></svg></template>",
        "<template><p>x</p><math><script>{}</script></math></template>",
    ],
    ids=["annotation-xml", "math-in-foreignObject", "template-svg", "template-math"],
)
def test_foreign_raw_text_names_anywhere_are_escaped(html):
    payload = "</style></script><img src=x onerror=alert(1)>"
    old = parse_fragment("<p>a</p>")
    new = parse_fragment("<p>a</p>" + html.format(markupsafe.escape(payload)))
    [splice] = diff(old, new)
    assert splice[:4] == ["splice", [], 1, 0]
    parsed = parse_as_fragment(splice[4])
    assert "img" not in tags_in(parsed), splice
    assert payload in texts_in(parsed), splice


def tags_in(nodes):
    """The tags of every element in ``nodes``, template content included."""
    tags = []
    for node in nodes:
        if node.tag not in (TEXT, COMMENT):
            tags.append(node.tag)
            tags.extend(tags_in(node.children + (node.content or [])))
    return tags


def texts_in(nodes):
    """The data of every text node in ``nodes``, template content included."""
    texts = []
    for node in nodes:
        if node.tag == TEXT:
            texts.append(node.data)
        elif node.tag != COMMENT:
            texts.extend(texts_in(node.children + (node.content or [])))
    return texts


def test_foreign_style_text_and_element_are_told_apart():
    # lexbor writes both as <style><g></g></style>: an equality by its HTML sees no change.
    assert_patches("<svg><style>&lt;g&gt;&lt;/g&gt;</style></svg>", "<svg><style><g></g></style></svg>")
    assert_patches("<svg><style><g></g></style></svg>", "<svg><style>&lt;g&gt;&lt;/g&gt;</style></svg>")


def test_foreign_textarea_keeps_its_leading_newlines():
    # Only the HTML parser's <textarea> drops a first newline: an SVG one keeps both.
    ops = assert_patches("<p>a</p>", "<p>a</p><svg><textarea>\n\nx</textarea></svg>")
    assert ops == [["splice", [], 1, 0, "<svg><textarea>\n\nx</textarea></svg>"]]


def test_pre_in_template_content_keeps_its_leading_blank_line():
    ops = assert_patches("<p>a</p>", "<p>a</p><template><pre>\n\ncode</pre></template>")
    assert ops == [["splice", [], 1, 0, "<template><pre>\n\ncode</pre></template>"]]


def test_splices_into_svg_and_math_stay_foreign():
    assert_patches(
        '<svg viewBox="0 0 9 9"><circle r="1"></circle></svg><math><mi>x</mi></math>',
        '<svg viewBox="0 0 9 9"><rect></rect><g><circle r="2"></circle></g></svg><math><mi>x</mi><mo>+</mo></math>',
    )


# --- big renders -------------------------------------------------------------------


def _table(changed_row=None):
    rows = "".join(
        '<tr id="r%d"><td>%d</td><td class="%s">row %s</td></tr>\n'
        % (i, i, "odd" if i % 2 else "even", "changed" if i == changed_row else i)
        for i in range(1000)
    )
    return "<h1>Rows</h1>\n<table><thead><tr><th>n</th><th>text</th></tr></thead>\n%s</table>" % rows


def test_one_changed_row_of_a_thousand_is_a_tiny_patch():
    old, new = _table(), _table(changed_row=617)
    ops = assert_patches(old, new)
    assert len(ops) == 1
    assert ops[0][0] == "text" and ops[0][2] == "row changed"
    assert len(json.dumps(ops)) < len(new) / 100


def test_one_row_inserted_into_a_thousand_is_one_splice():
    old = _table()
    new = old.replace('<tr id="r500">', '<tr id="new"><td>n</td><td>inserted</td></tr>\n<tr id="r500">')
    ops = assert_patches(old, new)
    assert len(ops) == 1 and ops[0][0] == "splice" and ops[0][3] == 0
    assert len(json.dumps(ops)) < len(new) / 100


# --- parse_render ------------------------------------------------------------------


def _page(body):
    return "<!DOCTYPE html><html><head><title>t</title></head>%s</html>" % body


def test_parse_render_takes_the_dj_root_inside_the_view():
    fragment = parse_render(_page('<body dj-view="v"><h1>chrome</h1><div dj-root><p>a</p>\n<p>b</p></div></body>'))
    assert fragment.html == "<p>a</p>\n<p>b</p>"


def test_parse_render_takes_the_view_without_a_root():
    fragment = parse_render(_page('<body><header>h</header><main dj-view="v"><p>a</p></main></body>'))
    assert fragment.html == "<p>a</p>"


def test_parse_render_falls_back_to_the_body():
    fragment = parse_render(_page("<body><p>a</p><p>b</p></body>"))
    assert fragment.html == "<p>a</p><p>b</p>"


def test_parse_render_of_a_view_element_alone():
    assert parse_render('<div dj-view="v"><div dj-root>x<b>y</b></div></div>').html == "x<b>y</b>"


def test_parse_fragment_keeps_whitespace_and_comments_as_nodes():
    fragment = parse_fragment(" <b>x</b>\n<!--c-->")
    assert [node.tag for node in fragment.nodes] == [TEXT, "b", TEXT, COMMENT]


# --- generated trees ---------------------------------------------------------------

TEXTS = ["a", "b", " ", "\n", "x & y", "<z>", "\n\nq", "a\xa0b"]
RAW_TEXTS = ["x", "a<b", "&amp;", "</p>"]
ATTRIBUTES = [
    ("id", "a"),
    ("id", "b"),
    ("class", "k"),
    ("class", "m"),
    ("dj-key", "1"),
    ("dj-key", "2"),
    ("title", 't"&<'),
    ("checked", ""),
    ("data-x", "1"),
]
# What each element may contain.
# (Phrasing elements hold only phrasing: a <div> in a <p> is moved by the parser into
# a tree that no serialization reproduces, in a browser as here.)
CHILD_KIND = {
    "div": "flow",
    "b": "flow",
    "li": "flow",
    "td": "flow",
    "template": "flow",
    "section": "flow",
    "article": "flow",
    "p": "phrasing",
    "i": "phrasing",
    "span": "phrasing",
    "ul": "li",
    "table": "tr",
    "tr": "td",
    "select": "option",
    "option": "text",
    "pre": "text",
    "textarea": "text",
    "style": "raw",
    # SVG and MathML (written with a prefix here, rendered without): their <style> and
    # <textarea> hold escaped text, as any element there does.
    "svg": "svg",
    "svg:g": "svg",
    "svg:style": "text",
    "svg:textarea": "text",
    "svg:foreignObject": "flow",
    "math": "math",
    "math:mi": "phrasing",
    "math:style": "text",
}
FOREIGN_CHILDREN = {
    "svg": ["svg:g", "svg:style", "svg:textarea", "svg:foreignObject"],
    "math": ["math:mi", "math:style"],
}
MAX_DEPTH = 4


def attributes():
    return st.lists(st.sampled_from(ATTRIBUTES), max_size=3, unique_by=lambda pair: pair[0]).map(tuple)


def special_attributes(tag):
    if tag == "section":
        return st.sampled_from([(("dj-update", "ignore"),), (("dj-update", "ignore"), ("id", "a"))])
    if tag == "article":
        return st.sampled_from([(("dj-view", "child"),), (("dj-view", "child"), ("id", "b"))])
    return attributes()


@st.composite
def node(draw, kind, depth=0, opaque=False):
    if kind == "text":
        return ("#text", draw(st.sampled_from(TEXTS)))
    if kind == "raw":
        return ("#raw", draw(st.sampled_from(RAW_TEXTS)))
    if kind in ("li", "tr", "td", "option"):
        tag = kind
    else:
        choices = ["#text", "#comment"]
        if depth < MAX_DEPTH:
            if kind == "phrasing":
                choices += ["i", "span"]
            elif kind in FOREIGN_CHILDREN:
                choices += FOREIGN_CHILDREN[kind]
            else:
                choices += ["div", "span", "b", "p", "ul", "table", "select", "style", "template", "svg", "math"]
                choices += ["pre", "textarea"]
                if opaque:
                    choices += ["section", "article"]
        tag = draw(st.sampled_from(choices))
    if tag == "#text":
        return ("#text", draw(st.sampled_from(TEXTS)))
    if tag == "#comment":
        return ("#comment", draw(st.sampled_from(["c", " d ", ""])))
    attrs = draw(special_attributes(tag))
    children = draw(children_of(tag, depth, opaque))
    return (tag, attrs, children)


def children_of(tag, depth, opaque):
    kind = CHILD_KIND[tag]
    size = 1 if kind in ("text", "raw") else 3
    return st.lists(node(kind, depth + 1, opaque), max_size=size).map(tuple)


def render(nodes):
    out = []
    for item in nodes:
        if item[0] == "#text":
            out.append(html_lib.escape(item[1], quote=False))
        elif item[0] == "#raw":
            out.append(item[1])
        elif item[0] == "#comment":
            out.append("<!--%s-->" % item[1])
        else:
            tag, attrs, children = item
            tag = tag.split(":")[-1]
            out.append(
                "<%s%s>%s</%s>"
                % (tag, "".join(' %s="%s"' % (k, html_lib.escape(v)) for k, v in attrs), render(children), tag)
            )
    return "".join(out)


def mutate(data, nodes, kind, depth, opaque):
    """A render that differs from ``nodes`` in a few places, as a state change makes it."""
    fresh = lambda: data.draw(node(kind, depth, opaque))
    out = []
    for item in nodes:
        action = data.draw(st.sampled_from(["keep", "keep", "inner", "inner", "attrs", "drop", "replace", "insert"]))
        if action == "keep":
            out.append(item)
        elif action == "replace":
            out.append(fresh())
        elif action == "insert":
            out.extend([fresh(), item])
        elif action == "drop":
            pass
        elif item[0] in ("#text", "#raw", "#comment"):
            out.append(fresh() if item[0] != "#comment" else ("#comment", "changed"))
        elif action == "attrs":
            tag, attrs, children = item
            out.append((tag, data.draw(special_attributes(tag)), children))
        else:
            tag, attrs, children = item
            child_kind = CHILD_KIND[tag]
            new_children = mutate(data, children, child_kind, depth + 1, opaque)
            if child_kind in ("text", "raw"):
                new_children = new_children[:1]
            out.append((tag, attrs, tuple(new_children)))
    if data.draw(st.booleans()) and not (kind in ("text", "raw") and out):
        out.insert(data.draw(st.integers(0, len(out))), fresh())
    return out


def fragments(opaque=False):
    return st.lists(node("flow", 0, opaque), max_size=4).map(tuple)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.data())
def test_property_patch_turns_old_into_new(data):
    old = data.draw(fragments())
    new = mutate(data, old, "flow", 0, False)
    assert_patches(render(old), render(new))


@settings(max_examples=60, deadline=None)
@given(fragments(), fragments())
def test_property_patch_between_unrelated_renders(old, new):
    assert_patches(render(old), render(new))


@settings(max_examples=60, deadline=None)
@given(fragments())
def test_property_identical_renders_give_no_ops(tree):
    html = render(tree)
    assert diff(parse_fragment(html), parse_fragment(html)) == []


@SETTINGS
@given(st.data())
def test_property_opaque_subtrees_are_never_entered(data):
    old = data.draw(fragments(opaque=True))
    new = mutate(data, old, "flow", 0, True)
    ops, root, expected, dom = patch(render(old), render(new))
    assert dom.entered_opaque == [], ops
    # Outside ignored subtrees and nested views the page is the new render.
    assert serialize(root.children, sort_attrs=True, blank_opaque=True) == serialize(
        expected, sort_attrs=True, blank_opaque=True
    )


@settings(max_examples=50, deadline=None)
@given(fragments())
def test_property_adapter_serializes_like_the_parser(tree):
    html = render(tree)
    assert serialize(parsed(html)) == parse_fragment(html).html
