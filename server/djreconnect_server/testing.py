"""Testing views without a browser, in the manner of Phoenix's ``LiveViewTest``.

``mount(live, View)`` opens a page on a view: its first paint (the page a browser would
get), then its live mount over a real ``LiveConnection`` with real frames, driven by the
runtime's own sans-I/O client (``djreconnect.client``). Replies are applied with the
runtime's own ``djreconnect.patch.apply_ops`` to a small in-memory DOM that keeps the
runtime's rules: the field being typed into keeps its value, a submitted form shows the
server's render, a remount keeps what was typed and form recovery sends it back. So a
test exercises the wire format, the diff, the client's queue and recovery as a browser
does, in milliseconds::

    page = mount(live, TodoView)             # first paint, then the live mount
    page.submit("#todo-form", text="milk")   # fill the form's fields, send its dj-submit
    assert page.text("#items li") == "milk"  # what the page shows, patched
    assert page.view.items == ["milk"]       # the server's view object
    page.change("#title", "Groceries")       # set the field, send its dj-change
    page.click("#items li button")           # the nearest dj-click and its dj-value-*
    page.click("remove", index="0")          # or a handler by its name, with params
    page.send("mount")                       # any name: raises LiveError (unknown_handler)
    page.drop()                              # the connection is lost: clicks now wait
    page.remount()                           # a new connection joins again, recovers

The page is patched, not re-rendered, on purpose: what a test reads is what the runtime
would show after applying the server's patches, so a diff that misses a change fails
the test the way it would fail a person. Handlers run on one event loop in a background
thread, shared by every page (the server's loop), so a view's async handlers and the
tasks they start behave as they do in a server process.
"""

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from djreconnect import constants, effects, recovery
from djreconnect.client import KIND_CHANGE, KIND_CLICK, KIND_INPUT, KIND_SUBMIT, MOUNT_FIRST, Client
from djreconnect.connection import TIMER_RETRY
from djreconnect.connection import Settings as ConnectionSettings
from djreconnect.patch import PatchError, apply_ops
from selectolax.lexbor import LexborHTMLParser, LexborNode
from starlette.requests import HTTPConnection, Request

from djreconnect_server.diff import body_of, find_root, html_of, tag_of, text_of
from djreconnect_server.live import LiveConnection
from djreconnect_server.views import LiveView

if TYPE_CHECKING:
    from djreconnect_server.app import DJReconnect

# The id the runtime gives a [dj-view] element without one.
VIEW_ID = "dj-view-1"
# Marks elements in the HTML a selector query runs on (never in ``page.html``).
_MARK = "dj-test-node"
_TEXT = "#text"
_COMMENT = "#comment"
_VOID = frozenset(
    "area base br col embed hr img input link meta source track wbr basefont bgsound frame keygen param".split()
)
_RAW_TEXT = frozenset("style script xmp iframe noembed noframes plaintext".split())
_FOREIGN = frozenset(("svg", "math"))
_NEWLINE_EATERS = frozenset(("pre", "textarea", "listing"))
_INPUT_TYPES = frozenset(
    "text search tel url email password date month week time datetime-local number range color "
    "checkbox radio file submit image reset button hidden".split()
)
_NOT_VALUES = ("file", "submit", "button", "reset", "image")
_UNSET: Any = object()  # a value not given (Any: it stands in for a value of any type)
Result = TypeVar("Result")
# A field's live state: its text, whether it is checked, or the values it has selected.
FieldState = str | bool | list[str]  # (a text field's may be a bool when its type changed)


class LiveError(Exception):
    """The server refused an event (or failed on it): ``code`` and ``message`` as the page got them."""

    def __init__(self, code: str, message: str) -> None:
        Exception.__init__(self, "%s: %s" % (code, message))
        self.code = code
        self.message = message


# --- the server's event loop ------------------------------------------------------------

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _on_server(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """Run ``coroutine`` on the server loop (a daemon thread) and return its result.
    Everything server-side runs here: frames, handlers, and what is published to pages."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="djreconnect-testing", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coroutine, _loop).result()


# --- a small DOM ----------------------------------------------------------------------------


class Node:
    """An element, a text or a comment of the page, with a form field's live state."""

    __slots__ = ("tag", "attrs", "children", "data", "parent", "live", "server_value")

    def __init__(self, tag: str, attrs: dict[str, str] | None = None, data: str = "") -> None:
        # ``data``: a text's or comment's (an element has none)
        self.tag = tag
        self.attrs = attrs if attrs is not None else {}
        self.children: list[Node] = []
        self.data = data
        self.parent: Node | None = None
        # What the user (or the runtime) set since the render, None to follow the render:
        # a text field's value, a checkbox's or radio's checked state, an option's selected.
        self.live: str | bool | None = None
        self.server_value: FieldState | None = None  # a hidden field's value in the last mount's render

    def append(self, child: "Node") -> None:
        child.parent = self
        self.children.append(child)

    def text_content(self) -> str:
        if self.tag in (_TEXT, _COMMENT):
            return self.data if self.tag == _TEXT else ""
        return "".join(child.text_content() for child in self.children)

    def closest(self, test: Callable[["Node"], bool], stop: "Node | None") -> "Node | None":
        node: Node | None = self
        while node is not None and node is not stop:
            if node.tag not in (_TEXT, _COMMENT) and test(node):
                return node
            node = node.parent
        return None

    def descendants(self, into_views: bool = True) -> Iterator["Node"]:
        """Elements below, in document order; not into nested ``[dj-view]``s unless ``into_views``."""
        for child in self.children:
            if child.tag not in (_TEXT, _COMMENT):
                yield child
                if into_views or constants.ATTR_VIEW not in child.attrs:
                    yield from child.descendants(into_views)


def _built(parsed: LexborNode) -> Node:
    """An in-memory copy of a selectolax node."""
    tag = parsed.tag
    if tag == "-text":
        return Node(_TEXT, data=text_of(parsed))
    if tag == "-comment":
        return Node(_COMMENT, data=html_of(parsed)[4:-3])
    node = Node(tag_of(parsed), {name: "" if value is None else value for name, value in parsed.attributes.items()})
    source = parsed.template_fragments()[0] if tag == "template" else parsed
    for child in source.iter(include_text=True):
        node.append(_built(child))
    return node


def _fragment(html: str) -> list[Node]:
    """Nodes parsed from ``html`` as the runtime parses a splice (a template's content)."""
    parser = LexborHTMLParser("<template>%s</template>" % html)
    template = cast(LexborNode, parser.css_first("template"))
    return [_built(child) for child in template.template_fragments()[0].iter(include_text=True)]


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(value: str) -> str:
    return _escape_text(value).replace('"', "&quot;")


def _serialize(
    nodes: list[Node],
    out: list[str],
    marks: list[Node] | None = None,
    parent_tag: str | None = None,
    foreign: bool = False,
) -> None:
    for node in nodes:
        if node.tag == _TEXT:
            raw = parent_tag in _RAW_TEXT and not foreign
            out.append(node.data if raw else _escape_text(node.data))
        elif node.tag == _COMMENT:
            out.append("<!--%s-->" % node.data)
        else:
            out.append("<" + node.tag)
            for name, value in node.attrs.items():
                out.append(' %s="%s"' % (name, _escape_attr(value)))
            if marks is not None:
                marks.append(node)
                out.append(' %s="%d"' % (_MARK, len(marks) - 1))
            out.append(">")
            if node.tag in _VOID:
                continue
            first = node.children[0] if node.children else None
            if node.tag in _NEWLINE_EATERS and first is not None and first.tag == _TEXT and first.data[:1] == "\n":
                out.append("\n")  # the parser drops the first newline of these
            _serialize(node.children, out, marks, node.tag, foreign or node.tag in _FOREIGN)
            out.append("</%s>" % node.tag)


# --- form fields, as the browser sees them ------------------------------------------------------


def _kind(node: Node) -> str | None:
    """A field's ``type`` as the DOM reports it, or None for anything else."""
    if node.tag == "input":
        kind = node.attrs.get("type", "text").lower()
        return kind if kind in _INPUT_TYPES else "text"
    if node.tag == "select":
        return "select-multiple" if "multiple" in node.attrs else "select-one"
    if node.tag == "textarea":
        return "textarea"
    return None


def _options(select: Node) -> list[Node]:
    return [node for node in select.descendants() if node.tag == "option"]


def _option_value(option: Node) -> str:
    if "value" in option.attrs:
        return option.attrs["value"]
    return " ".join(option.text_content().split())


def _default_value(field: Node) -> str:
    if field.tag == "textarea":
        return field.text_content()
    return field.attrs.get("value", "")


def _value(field: Node) -> str | bool:
    return field.live if field.live is not None else _default_value(field)


def _checked(field: Node, default: bool = False) -> str | bool:
    if default or field.live is None:
        return "checked" in field.attrs
    return field.live


def _selected(select: Node, default: bool = False) -> list[str]:
    """The selected options' values (live, or as the render has them)."""
    options = _options(select)
    chosen = []
    for option in options:
        selected = option.live if (option.live is not None and not default) else "selected" in option.attrs
        if selected:
            chosen.append(_option_value(option))
    if _kind(select) == "select-one":
        if chosen:
            return chosen[-1:]  # the last option[selected] wins, as in the browser
        return [_option_value(options[0])] if options else []
    return chosen


def _live_state(field: Node, kind: str | None) -> FieldState:
    if kind in ("checkbox", "radio"):
        return _checked(field)
    if kind in ("select-one", "select-multiple"):
        return _selected(field)
    return _value(field)


def _modified(field: Node, kind: str | None) -> bool:
    if kind in ("checkbox", "radio"):
        return _checked(field) != _checked(field, True)
    if kind in ("select-one", "select-multiple"):
        return _selected(field) != _selected(field, True)
    return _value(field) != _default_value(field)


def _form_values(field: Node) -> list[str] | list[str | bool]:
    """The values a form sends for a field (FormData's rules): [] for none."""
    kind = _kind(field)
    if not field.attrs.get("name") or "disabled" in field.attrs or kind is None or kind in _NOT_VALUES:
        return []
    if kind in ("checkbox", "radio"):
        return [field.attrs.get("value", "on")] if _checked(field) else []
    if kind in ("select-one", "select-multiple"):
        return _selected(field)
    return [_value(field)]


def _is_auto_container(node: Node) -> bool:
    return constants.ATTR_AUTO_RECOVER in node.attrs


def _prefixed(node: Node, prefix: str) -> dict[str, Any]:
    return {
        recovery.attribute_param_name(name, prefix): value
        for name, value in node.attrs.items()
        if name.startswith(prefix) and len(name) > len(prefix)
    }


class _PageDom:
    """The adapter ``apply_ops`` drives: the browser runtime's rules on the small DOM
    (see ``djreconnect.pagedom.PageDom``)."""

    def __init__(self, page: "LivePage", mount: bool) -> None:
        self.page = page
        self.mount = mount

    def _syncs(self, node: Node) -> bool:
        if self.mount or node.tag not in ("input", "select", "textarea", "option"):
            return False
        focused = self.page.focused
        return not (node is focused or (node.tag == "option" and node.parent is focused))

    def child(self, node: Node, index: int) -> Node | None:
        if node.tag in (_TEXT, _COMMENT) or index >= len(node.children):
            return None
        return node.children[index]

    def set_attribute(self, node: Node, name: str, value: str) -> None:
        if name == "value" and node.tag == "input" and _kind(node) == "hidden":
            if self.page._takes_part_in_recovery(node):
                node.server_value = value  # the server's value, apart from the page's writes
                if self.mount:
                    return
        node.attrs[name] = value
        if self._syncs(node):
            if name == "value" and node.tag == "input" and _kind(node) not in ("checkbox", "radio"):
                node.live = value
            elif name in ("checked", "selected"):
                node.live = True

    def remove_attribute(self, node: Node, name: str) -> None:
        node.attrs.pop(name, None)
        if self._syncs(node) and name in ("checked", "selected"):
            node.live = False

    def set_text(self, node: Node, text: str) -> None:
        node.data = text
        parent = node.parent
        if parent is not None and parent.tag == "textarea" and self._syncs(parent):
            parent.live = None

    def splice(self, node: Node, start: int, count: int, html: str) -> None:
        if start + count > len(node.children):
            raise PatchError("a splice past the end of the children")
        added = _fragment(html) if html else []
        for child in added:
            child.parent = node
        node.children[start : start + count] = added
        if node.tag == "textarea" and self._syncs(node):
            node.live = None


# --- the page ---------------------------------------------------------------------------------


class LivePage:
    """One browser tab on one view: its DOM, its runtime's client core, its connection.

    Made by ``mount``. Actions (``click``, ``change``, ``input``, ``submit``) take a handler's
    name (then params are the event's params) or else a CSS selector matching exactly one
    element of the view; they return the page's HTML after the server's answer, and raise
    LiveError when the server refuses the event (the page is updated first, as a browser's
    would be). ``errors`` keeps every error the page was told of.
    """

    def __init__(
        self,
        live: "DJReconnect",
        view_cls: type[LiveView],
        params: Mapping[str, Any] | None = None,
        path: str = "/",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.live = live
        self.view_cls = view_cls
        self.params = dict(params or {})
        self.path = path
        self.headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()
        ]
        self.errors: list[tuple[str, str]] = []
        self.focused: Node | None = None
        self.connection: LiveConnection | None = None
        self.generation: int | None = None
        self._inbox: list[
            tuple[int | None, str | tuple[int, str]]
        ] = []  # (generation, frame text) or (generation, (close code, reason))
        self._submitted: dict[
            int, list[tuple[Node, str | None, FieldState]]
        ] = {}  # ref -> [(field, kind, state)] of a form awaiting its reply
        self.mounts: list[str] = []  # how the view came back each time: "first", "resume", "remount"
        self.page_html = live.render_page(view_cls, self._request("http"), self.params)
        parser = LexborHTMLParser(self.page_html)
        root = find_root(parser)
        self.root = Node(tag_of(root), {})
        for child in root.iter(include_text=True):
            self.root.append(_built(child))
        config = json.loads(cast(LexborNode, parser.css_first("#" + constants.CONFIG_ELEMENT_ID)).text())
        token = config.get("tokens", {}).get(view_cls.view_name, "")
        self.client = Client(ConnectionSettings(), random=random.Random(0).random)
        self.client.add_view(VIEW_ID, view_cls.view_name, token)
        self._act(self.client.start(self._now()), raising=False)
        if not self.client.mounted():
            raise LiveError(*(self.errors[-1] if self.errors else ("not_mounted", "the view did not mount")))

    def _request(self, kind: str) -> HTTPConnection:
        scope: dict[str, Any] = {
            "type": kind,
            "path": self.path,
            "raw_path": self.path.encode("utf-8"),
            "query_string": b"",
            "headers": [(b"host", b"testserver")] + self.headers,
            "scheme": "http" if kind == "http" else "ws",
            "server": ("testserver", 80),
            "client": ("testclient", 50000),
            "path_params": dict(self.params),
            "app": self.live.app,
        }
        if kind == "http":
            scope["method"] = "GET"
            return Request(scope)
        return HTTPConnection(scope)

    def _now(self) -> float:
        return time.monotonic() * 1000.0

    # --- reading -----------------------------------------------------------------------------

    @property
    def html(self) -> str:
        """The view root's HTML as the page shows it (attributes as rendered, like innerHTML)."""
        out: list[str] = []
        _serialize(self.root.children, out)
        return "".join(out)

    @property
    def view(self) -> LiveView:
        """The server's view object (its state is its public attributes)."""
        state = self.connection.views.get(VIEW_ID) if self.connection is not None else None
        if state is None:
            raise LiveError("not_mounted", "the page is not connected")
        return state.view

    @property
    def state(self) -> dict[str, Any]:
        """The server view's state, as a dict."""
        return self.view.state()

    @property
    def status(self) -> str:
        """The connection's state, as ``window.djreconnect.state`` names it."""
        return self.client.state

    @property
    def connected(self) -> bool:
        """Whether the view is mounted and its recovery sent (``window.djreconnect.mounted``)."""
        return self.client.mounted()

    def _query(self, selector: str) -> tuple[LexborHTMLParser, list[Node]]:
        marks: list[Node] = []
        out: list[str] = []
        _serialize(self.root.children, out, marks)
        parser = LexborHTMLParser("<!DOCTYPE html><html><head></head><body>%s</body></html>" % "".join(out))
        return parser, [marks[int(cast(str, found.attributes[_MARK]))] for found in body_of(parser).css(selector)]

    def find_all(self, selector: str) -> list[LexborNode]:
        """Every element matching ``selector`` (selectolax nodes of the page's current HTML)."""
        found = []
        for node in self._query(selector)[1]:
            out: list[str] = []
            _serialize([node], out)
            parsed = LexborHTMLParser("<template>%s</template>" % "".join(out))
            template = cast(LexborNode, parsed.css_first("template"))
            found.append(next(template.template_fragments()[0].iter()))
        return found

    def find(self, selector: str) -> LexborNode | None:
        """The first element matching ``selector``, or None."""
        found = self.find_all(selector)
        return found[0] if found else None

    def text(self, selector: str) -> str:
        """The text of the first element matching ``selector``; LookupError if there is none."""
        found = self.find(selector)
        if found is None:
            raise LookupError("no element matches %r" % (selector,))
        return found.text()

    def value(self, selector: str) -> FieldState:
        """A field's live value: a string, True/False (checkbox, radio), a list (select multiple)."""
        field = self._one(selector)
        kind = _kind(field)
        if kind in ("checkbox", "radio"):
            return _checked(field)
        if kind == "select-multiple":
            return _selected(field)
        if kind == "select-one":
            return (_selected(field) or [""])[0]
        if kind is None:
            raise ValueError("%r is a <%s>, not a form field" % (selector, field.tag))
        return _value(field)

    def _one(self, selector: str) -> Node:
        found = self._query(selector)[1]
        if len(found) != 1:
            raise LookupError("%r matches %d elements of the view, not one" % (selector, len(found)))
        return found[0]

    # --- acting --------------------------------------------------------------------------------

    def _is_handler(self, target: str) -> bool:
        return target in self.view_cls._handlers

    def click(self, target: str, /, **params: Any) -> str:
        """Click the element ``target`` selects (its nearest ``dj-click``), or call handler ``target``."""
        if self._is_handler(target):
            return self._push(KIND_CLICK, target, params)
        element = self._one(target)
        clicked = element.closest(lambda node: constants.ATTR_CLICK in node.attrs, self.root)
        if clicked is None:
            raise LookupError("%r has no %s (nor has any element around it)" % (target, constants.ATTR_CLICK))
        self.focused = clicked
        sent = _prefixed(clicked, constants.ATTR_VALUE_PREFIX)
        sent.update(params)
        return self._push(KIND_CLICK, clicked.attrs[constants.ATTR_CLICK], sent)

    def change(self, target: str, value: Any = _UNSET, /, **params: Any) -> str:
        """Set a field (``value``: text, True/False for a checkbox, an option's value, a list
        for a select multiple; a radio is checked) and send its ``dj-change``; or call
        handler ``target`` with ``value`` and ``params``."""
        return self._field_event(KIND_CHANGE, constants.ATTR_CHANGE, target, value, params)

    def input(self, target: str, value: Any = _UNSET, /, **params: Any) -> str:
        """Like ``change``, for a field's ``dj-input``."""
        return self._field_event(KIND_INPUT, constants.ATTR_INPUT, target, value, params)

    def _field_event(self, kind: str, attribute: str, target: str, value: Any, params: dict[str, Any]) -> str:
        if self._is_handler(target):
            if value is not _UNSET:
                params = dict(params, value=value)
            return self._push(kind, target, params)
        field = self._one(target)
        if attribute not in field.attrs:
            raise LookupError("%r has no %s" % (target, attribute))
        self._fill(field, value)
        self.focused = field
        sent = recovery.event_params(self._describe(field))
        sent.update(params)
        return self._push(kind, field.attrs[attribute], sent)

    def submit(self, target: str, /, **fields: Any) -> str:
        """Fill the named fields of the form ``target`` selects (or the form around it) as a
        person would (a field's ``dj-input`` and ``dj-change`` are sent as it is filled), then
        submit it: its ``dj-submit`` with the form's fields and ``dj-value-*``. Or call
        handler ``target`` with ``fields`` as its params."""
        if self._is_handler(target):
            return self._push(KIND_SUBMIT, target, fields)
        element = self._one(target)
        form = element.closest(lambda node: constants.ATTR_SUBMIT in node.attrs, self.root)
        if form is None:
            raise LookupError("%r is not in a form with %s" % (target, constants.ATTR_SUBMIT))
        for name, value in fields.items():
            for field in self._fill_named(form, name, value):
                self.focused = field
                for kind, attribute in ((KIND_INPUT, constants.ATTR_INPUT), (KIND_CHANGE, constants.ATTR_CHANGE)):
                    if attribute in field.attrs:
                        sent = recovery.event_params(self._describe(field))
                        self._push(kind, field.attrs[attribute], sent)
        sent = self._form_params(form)
        sent.update(_prefixed(form, constants.ATTR_VALUE_PREFIX))
        return self._push(KIND_SUBMIT, form.attrs[constants.ATTR_SUBMIT], sent, form)

    def send(self, handler: str, params: Mapping[str, Any] | None = None) -> str:
        """Send an event to ``handler`` by name, whatever the name (a click's, as a page
        script could): for refusals, and handlers no element names."""
        return self._push(KIND_CLICK, handler, dict(params or {}))

    def _push(self, kind: str, handler: str, params: dict[str, Any], form: Node | None = None) -> str:
        ref = self.client.reserve_ref()
        if form is not None:
            self._submitted[ref] = self._form_state(form)
        return self._act(self.client.push_event(self._now(), VIEW_ID, kind, handler, params, ref))

    # --- connection -------------------------------------------------------------------------------

    def drop(self) -> None:
        """The connection is lost (a network failure): the page goes reconnecting; clicks
        and submits from now on wait in the runtime's queue, edits wait for recovery. The
        server keeps the session. ``resume`` or ``remount`` reconnects."""
        if self.connection is None:
            return
        connection, self.connection = self.connection, None
        _on_server(connection.detach())
        self._act(self.client.closed(self._now(), self.generation, constants.CLOSE_ABNORMAL, "dropped"), False)

    def resume(self) -> str:
        """Reconnect after ``drop`` (dropping first if still connected), with the session
        kept: the page's session resumes, events that got no reply are sent again (each
        applied once), recovery sends what the user changed while away, then the queue."""
        if self.connection is not None:
            self.drop()
        return self._act(self.client.timer(self._now(), TIMER_RETRY), raising=False)

    def remount(self) -> str:
        """Reconnect with the session gone (it expired, or the server restarted with its
        sessions in memory): the server mounts a fresh view, the page's recovery sends what
        the user typed (and ``dj-auto-recover`` handlers), then the queued clicks and submits."""
        if self.connection is not None:
            self.drop()
        if self.client.session is not None:
            _on_server(self.live.sessions.store.take(self.client.session, self.client.secret))
        return self._act(self.client.timer(self._now(), TIMER_RETRY), raising=False)

    def broadcast(self, topic: str, message: Any) -> str:
        """``live.broadcast(topic, message)`` on the server, then everything it leads to
        (``handle_info``, renders) delivered to this page; returns the page's HTML."""

        async def publish() -> None:
            self.live.broadcast(topic, message)
            while self.live.hub.pending:
                await asyncio.gather(*list(self.live.hub.pending))

        _on_server(publish())
        self._collect_pushed()
        return self._act([], raising=False)

    def _collect_pushed(self) -> None:
        connection = self.connection
        if connection is not None and connection.pushed:
            frames, connection.pushed = connection.pushed, []
            self._inbox.extend((self.generation, text) for text in frames)

    def close(self) -> None:
        """Leave the page: the connection closes on purpose."""
        self._act(self.client.disconnect(self._now()), raising=False)

    def __enter__(self) -> "LivePage":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the runtime's adapter ------------------------------------------------------------------

    def _act(self, todo: Any, raising: bool = True) -> str:
        """Carry out the client's effects, then deliver the server's frames one at a time
        (each a new task, as a transport delivers them), until nothing is left."""
        errors = len(self.errors)
        todo = list(todo)
        while todo or self._inbox:
            if todo:
                self._effect(todo.pop(0), todo)
                continue
            generation, item = self._inbox.pop(0)
            if isinstance(item, tuple):
                todo.extend(self.client.closed(self._now(), generation, item[0], item[1]))
            else:
                todo.extend(self.client.frame(self._now(), generation, item))
        if raising and len(self.errors) > errors:
            raise LiveError(*self.errors[errors])
        return self.html

    def _effect(self, effect: Any, todo: list[Any]) -> None:
        kind = type(effect)
        if kind is effects.Send:
            self._send(effect.frame)
        elif kind is effects.ApplyPatch:
            self._apply(effect)
        elif kind is effects.RecoverView:
            self.mounts.append(effect.mode)
            if effect.mode != MOUNT_FIRST:
                self._reset_unrecovered()
            todo.extend(self.client.recovered(self._now(), effect.view, self._snapshot()))
            for field in self._fields(self.root):
                if _kind(field) == "hidden" and self._takes_part_in_recovery(field):
                    field.server_value = _live_state(field, "hidden")
        elif kind is effects.FinishEvent:
            self._submitted.pop(effect.ref, None)
        elif kind is effects.OpenTransport:
            # The server accepts at once; the transport is open.
            self.connection = self.live._live_connection(self._request("websocket"))
            self.generation = effect.generation
            todo.extend(self.client.opened(self._now(), effect.generation, {VIEW_ID: self.html}))
        elif kind is effects.CloseTransport:
            connection, self.connection = self.connection, None
            if connection is not None:
                _on_server(connection.detach())  # its session waits for the page
        elif kind is effects.ReportError:
            self.errors.append((effect.code, effect.message))
        # Timers are not run: a test moves time on by acting (drop, remount). The status
        # (banner, body classes) is the client's state: ``status``.

    def _send(self, frame: str) -> None:
        connection = self.connection
        if connection is None:
            return
        frames = _on_server(connection.handle(frame))
        self._inbox.extend((self.generation, text) for text in frames)
        self._collect_pushed()
        if connection.close_code is not None:
            self._inbox.append((self.generation, (connection.close_code, connection.close_reason)))
            self.connection = None

    def _apply(self, effect: Any) -> None:
        saved = self._save_user_input() if effect.mount and effect.ops else None
        try:
            apply_ops(effect.ops, _PageDom(self, effect.mount), self.root)
        except PatchError as error:
            self.errors.append(("bad_patch", str(error)))
        for field, kind, state in saved or ():
            self._set_state(field, kind, state)
        if effect.ref is not None and not effect.mount:
            for field, kind, state in self._submitted.pop(effect.ref, ()):
                if self._attached(field) and _live_state(field, kind) == state:
                    self._reset(field, kind)

    # --- fields -------------------------------------------------------------------------------

    def _attached(self, node: Node | None) -> bool:
        while node is not None:
            if node is self.root:
                return True
            node = node.parent
        return False

    def _fields(self, within: Node) -> list[Node]:
        return [node for node in within.descendants() if node.tag in ("input", "select", "textarea")]

    def _takes_part_in_recovery(self, field: Node) -> bool:
        attrs = field.attrs
        if constants.ATTR_NO_RECOVER in attrs:
            return False
        return (
            constants.ATTR_CHANGE in attrs
            or constants.ATTR_INPUT in attrs
            or field.closest(_is_auto_container, self.root) is not None
        )

    def _save_user_input(self) -> list[tuple[Node, str | None, FieldState]]:
        saved = []
        for field in self._fields(self.root):
            kind = _kind(field)
            if kind in ("hidden",) + _NOT_VALUES:
                continue
            if self._takes_part_in_recovery(field) or _modified(field, kind):
                saved.append((field, kind, _live_state(field, kind)))
        return saved

    def _reset_unrecovered(self) -> None:
        for field in self._fields(self.root):
            if constants.ATTR_NO_RECOVER in field.attrs and _kind(field) not in ("hidden", "file"):
                self._reset(field, _kind(field))

    def _reset(self, field: Node, kind: str | None) -> None:
        """The field shows its render's value."""
        if kind in ("select-one", "select-multiple"):
            for option in _options(field):
                option.live = None
        else:
            field.live = None

    def _set_state(self, field: Node, kind: str | None, state: Any) -> None:
        if not self._attached(field):
            return
        if kind in ("select-one", "select-multiple"):
            for option in _options(field):
                option.live = _option_value(option) in state
        elif kind == "radio":
            if state:
                self._check_radio(field)
            else:
                field.live = False
        else:
            field.live = state

    def _check_radio(self, radio: Node) -> None:
        for other in self._radio_group(radio):
            other.live = other is radio

    def _radio_group(self, radio: Node) -> list[Node]:
        owner = radio.closest(lambda node: node.tag == "form", self.root) or self.root
        name = radio.attrs.get("name")
        if not name:
            return [radio]
        return [node for node in self._fields(owner) if _kind(node) == "radio" and node.attrs.get("name") == name]

    def _fill(self, field: Node, value: Any) -> None:
        """What a person does to a field: type into it, tick it, choose options."""
        kind = _kind(field)
        if kind is None or kind in _NOT_VALUES:
            raise ValueError("a <%s> of type %r cannot be filled in" % (field.tag, kind))
        if kind == "checkbox":
            field.live = (not _checked(field)) if value is _UNSET else bool(value)
        elif kind == "radio":
            if value is not _UNSET and not value:
                raise ValueError("a radio cannot be unchecked; check another one of its group")
            self._check_radio(field)
        elif kind in ("select-one", "select-multiple"):
            if value is _UNSET:
                raise ValueError("choose a value for the select")
            wanted = list(value) if kind == "select-multiple" and isinstance(value, (list, tuple)) else [value]
            if kind == "select-one" and len(wanted) != 1:
                raise ValueError("a select chooses one value")
            values = [_option_value(option) for option in _options(field)]
            for one in wanted:
                if one not in values:
                    raise ValueError("the select has no option %r (it has %s)" % (one, ", ".join(map(repr, values))))
            self._set_state(field, kind, wanted)
        elif value is not _UNSET:
            field.live = str(value)

    def _fill_named(self, form: Node, name: str, value: Any) -> list[Node]:
        """Fill the form's field(s) called ``name``; returns the fields whose state was set."""
        fields = [field for field in self._fields(form) if field.attrs.get("name") == name]
        fields = [field for field in fields if _kind(field) not in _NOT_VALUES]
        if not fields:
            raise LookupError("the form has no field named %r" % (name,))
        kind = _kind(fields[0])
        if kind == "radio":
            chosen = [field for field in fields if field.attrs.get("value", "on") == value]
            if not chosen:
                raise ValueError("no radio %r has the value %r" % (name, value))
            self._check_radio(chosen[0])
            return chosen[:1]
        if kind == "checkbox" and len(fields) > 1:
            wanted = set(value if isinstance(value, (list, tuple)) else [value])
            changed = []
            for field in fields:
                checked = field.attrs.get("value", "on") in wanted
                if checked != _checked(field):
                    field.live = checked
                    changed.append(field)
            return changed
        if len(fields) > 1:
            raise ValueError("the form has %d fields named %r" % (len(fields), name))
        self._fill(fields[0], value)
        return fields[:1]

    def _form_state(self, form: Node) -> list[tuple[Node, str | None, FieldState]]:
        saved = []
        for field in self._fields(form):
            kind = _kind(field)
            if kind in ("hidden",) + _NOT_VALUES:
                continue
            ignored = field.closest(
                lambda node: node.attrs.get(constants.ATTR_UPDATE) == constants.UPDATE_IGNORE, self.root
            )
            if ignored is None:
                saved.append((field, kind, _live_state(field, kind)))
        return saved

    def _form_params(self, form: Node) -> dict[str, Any]:
        """A form serialized as the runtime does (FormData): repeated names make a list."""
        params: dict[str, Any] = {}
        for field in self._fields(form):
            name = field.attrs.get("name")
            if not name:
                continue
            for value in _form_values(field):
                if name in params:
                    previous = params[name]
                    params[name] = previous + [value] if isinstance(previous, list) else [previous, value]
                else:
                    params[name] = value
        return params

    def _describe(self, element: Node, container: int | None = None) -> dict[str, Any]:
        """The record ``djreconnect.recovery`` works on (see ``djreconnect.snapshot.describe``)."""
        attrs = element.attrs
        record: dict[str, Any] = {
            "tag": element.tag.upper(),
            "name": attrs.get("name", ""),
            "input": attrs.get(constants.ATTR_INPUT),
            "change": attrs.get(constants.ATTR_CHANGE),
            "params": _prefixed(element, constants.ATTR_VALUE_PREFIX),
            "disabled": "disabled" in attrs and element.tag in ("input", "select", "textarea", "button"),
            "no_recover": constants.ATTR_NO_RECOVER in attrs,
            "container": container,
        }
        kind = _kind(element)
        if kind is None:
            return record
        record["type"] = kind
        if kind in ("checkbox", "radio"):
            record["value"] = attrs.get("value", "on")
            record["checked"] = _checked(element)
            record["default_checked"] = _checked(element, True)
        elif kind == "select-multiple":
            record["value"] = _selected(element)
            record["default"] = _selected(element, True)
        elif kind == "select-one":
            record["value"] = (_selected(element) or [""])[0]
            record["default"] = (_selected(element, True) or [""])[0]
        else:
            record["value"] = _value(element)
            default: FieldState = _default_value(element)
            if kind == "hidden" and element.server_value is not None:
                default = element.server_value
            record["default"] = default
        return record

    def _snapshot(self) -> list[dict[str, Any]]:
        """The recovery snapshot (see ``djreconnect.snapshot.recovery_snapshot``)."""
        snapshot = []
        containers: dict[int, int] = {}
        for element in self.root.descendants(into_views=False):
            attrs = element.attrs
            if constants.ATTR_VIEW in attrs:
                continue  # another view's element: that view recovers it
            enclosing = element.parent.closest(_is_auto_container, self.root) if element.parent else None
            wanted = (
                constants.ATTR_CHANGE in attrs
                or constants.ATTR_INPUT in attrs
                or constants.ATTR_AUTO_RECOVER in attrs
                or (enclosing is not None and "name" in attrs)
            )
            if not wanted:
                continue
            record = self._describe(element, containers.get(id(enclosing)) if enclosing is not None else None)
            handler = attrs.get(constants.ATTR_AUTO_RECOVER)
            if handler:
                containers[id(element)] = len(containers) + 1
                params = _prefixed(element, constants.ATTR_DATA_PREFIX)
                params.update(record["params"])
                record.update(auto=handler, index=containers[id(element)], params=params)
            snapshot.append(record)
        return snapshot


def mount(
    live: "DJReconnect",
    view: type[LiveView] | str,
    /,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    **params: Any,
) -> LivePage:
    """A page on ``view`` (a LiveView class, or the name it is registered under) of the
    backend ``live`` (a DJReconnect), mounted live with ``params`` (as a page route passes
    its path params). ``headers`` are the requests' headers (say, a cookie)."""
    if isinstance(view, str):
        entry = live.views.get(view)
        if entry is None:
            raise LookupError("no view named %r is registered" % (view,))
        view = entry[0]
    if not (isinstance(view, type) and issubclass(view, LiveView)):
        raise TypeError("%r is not a LiveView subclass" % (view,))
    if live.views.get(view.view_name, (None,))[0] is not view:
        raise LookupError("%s is not registered with this backend (DJReconnect.page or register)" % view.__name__)
    return LivePage(live, view, params, path, headers)
