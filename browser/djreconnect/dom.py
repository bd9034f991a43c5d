"""DOM helpers of the browser adapter: the patch target, event parameters, the status UI.

Stateless functions over the page; the few DOM calls each makes are the point.
"""

from djreconnect import constants, recovery
from djreconnect.banner import BannerTexts
from djreconnect.connection import CONNECTED, FAILED, RECONNECTING
from djreconnect.jsbridge import is_null, js

FORM_FIELDS = ("INPUT", "SELECT", "TEXTAREA")

BANNER_CSS = """
.%(banner)s {
  position: fixed; top: 0; left: 0; right: 0; z-index: 2147483647;
  padding: 0.5em 1em; text-align: center;
  font: 14px/1.4 system-ui, sans-serif;
  background: #f59e0b; color: #1f2937; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.25);
}
.%(banner)s button { margin-left: 1em; font: inherit; cursor: pointer; }
""" % {"banner": constants.CLASS_BANNER}


class PageDom:
    """The DOM as ``djreconnect.patch.apply_ops`` sees it.

    ``mount`` patches change attributes and text only: the live value, checked
    state and selection of fields are the user's. Event patches also move the live
    state of fields the user is not in, so a server reset (a cleared input) shows,
    except of fields for which ``keeps(field)`` is true (those with events in flight:
    the render predates what the user made of them).
    """

    def __init__(self, document, mount, keeps=None):
        self.document = document
        self.mount = mount
        self.keeps = keeps
        self.focused = document.activeElement

    def _syncs(self, node):
        if self.mount or node.nodeName not in FORM_FIELDS + ("OPTION",) or self._is_focused(node):
            return False
        return self.keeps is None or not self.keeps(_field_of(node))

    def _is_focused(self, node):
        focused = self.focused
        return not is_null(focused) and (node == focused or (node.nodeName == "OPTION" and node.parentNode == focused))

    def child(self, node, index):
        found = node.childNodes.item(index)
        return None if is_null(found) else found

    def set_attribute(self, node, name, value):
        if name == "value" and _keeps_own_value(node):
            # A hidden field's value *is* its attribute: a remount must not overwrite
            # it. Remember the server's value for recovery to compare against.
            node.djServerValue = value
            if self.mount:
                return
        node.setAttribute(name, value)
        if self._syncs(node):
            if name == "value" and node.nodeName == "INPUT" and node.type not in ("checkbox", "radio"):
                node.value = value
            elif name == "checked":
                node.checked = True
            elif name == "selected":
                node.selected = True

    def remove_attribute(self, node, name):
        node.removeAttribute(name)
        if self._syncs(node):
            if name == "checked":
                node.checked = False
            elif name == "selected":
                node.selected = False

    def set_text(self, node, text):
        node.data = text
        parent = node.parentNode
        if not is_null(parent) and parent.nodeName == "TEXTAREA" and self._syncs(parent):
            parent.value = parent.defaultValue

    def splice(self, node, start, count, html):
        if count:
            doomed = self.document.createRange()
            doomed.setStart(node, start)
            doomed.setEnd(node, start + count)
            doomed.deleteContents()
        if html:
            self._insert_html(node, start, html)
        if node.nodeName == "TEXTAREA" and self._syncs(node):
            node.value = node.defaultValue

    def _insert_html(self, node, start, html):
        """Parse ``html`` in the context of ``node`` and insert it before child ``start``.

        ``insertAdjacentHTML`` parses in the context of the element whose children it
        adds to: in its namespace (``<circle>`` in an ``<svg>`` is SVG, and the text of an
        SVG ``<style>`` is text, never markup) and by what its name implies (``<tr>`` in a
        ``<tbody>``), as the page's parser placed the nodes the server's paths count. Like
        ``innerHTML`` it leaves scripts inert. Anchored on ``node`` or on an element
        neighbour; between two texts, on a marker element that goes again at once.
        """
        children = node.childNodes
        before = children.item(start)
        if is_null(before):
            node.insertAdjacentHTML("beforeend", html)
        elif before.nodeType == constants.DOM_ELEMENT_NODE:
            before.insertAdjacentHTML("beforebegin", html)
        elif start == 0:
            node.insertAdjacentHTML("afterbegin", html)
        else:
            after = children.item(start - 1)
            if after.nodeType == constants.DOM_ELEMENT_NODE:
                after.insertAdjacentHTML("afterend", html)
            else:
                marker = self.document.createElement("template")
                node.insertBefore(marker, before)
                marker.insertAdjacentHTML("beforebegin", html)
                marker.remove()

    def replace_children(self, node, html):
        # The setter parses ``html`` in ``node``'s own context (an SVG parent included).
        node.innerHTML = html
        if node.nodeName == "TEXTAREA" and self._syncs(node):
            node.value = node.defaultValue


def _field_of(node):
    """The field a node's live state belongs to: an option's select, else the node."""
    if node.nodeName == "OPTION":
        select = node.closest("select")
        if not is_null(select):
            return select
    return node


def event_source(field):
    """The number ``mark_event_source`` gave a field, or None."""
    source = getattr(field, "djEventSource", None)
    return None if is_null(source) else int(source)


def mark_event_source(field, next_source):
    """Name ``field`` as the source of its events (see ``Client.push_event``): the number
    it has, else ``next_source``. A radio shares one with its group, whose live state
    is one choice. Returns the field's number."""
    group = [field]
    name = field.getAttribute("name")
    if field.nodeName == "INPUT" and field.type == "radio" and name:
        scope = getattr(field, "form", None)
        if is_null(scope):
            scope = field.ownerDocument
        found = scope.querySelectorAll('input[type="radio"][name="%s"]' % js.CSS.escape(name))
        group.extend([found.item(index) for index in range(found.length)])
    source = None
    for member in group:
        source = event_source(member)
        if source is not None:
            break
    if source is None:
        source = next_source
    for member in group:
        member.djEventSource = source
    return source


def root_html(root):
    """What a view's root shows, as the server needs it to patch from there: its HTML,
    with the content of ``dj-update="ignore"`` subtrees and nested views left out (the
    server never looks inside them, and a rich editor's content can be large)."""
    selector = "[%s=%s], [%s]" % (constants.ATTR_UPDATE, constants.UPDATE_IGNORE, constants.ATTR_VIEW)
    if is_null(root.querySelector(selector)):
        return root.innerHTML
    clone = root.cloneNode(True)
    opaque = clone.querySelectorAll(selector)
    for index in range(opaque.length):
        opaque.item(index).textContent = ""
    return clone.innerHTML


def _keeps_own_value(node):
    """Hidden fields that take part in recovery (the page writes them, not the user)."""
    return node.nodeName == "INPUT" and node.type == "hidden" and _takes_part_in_recovery(node)


def _server_value(field):
    """The value the server last rendered into a hidden field that the page writes (its
    attribute moves with the page's writes, so it is remembered apart)."""
    value = getattr(field, "djServerValue", None)
    return field.defaultValue if is_null(value) else value


def remember_server_values(view_element):
    """After a view's recovery the server has what its hidden fields hold: remember it,
    so that a later resume can tell what the page wrote while away."""
    fields = view_element.querySelectorAll("input[type=hidden]")
    for index in range(fields.length):
        field = fields.item(index)
        if _takes_part_in_recovery(field):
            field.djServerValue = field.value


def _live_state(field, kind):
    """A field's live state: checked, the list of selected values, or its value."""
    if kind in ("checkbox", "radio"):
        return bool(field.checked)
    if kind in ("select-one", "select-multiple"):
        options = field.options
        return [options.item(i).value for i in range(options.length) if options.item(i).selected]
    return field.value


def _modified(field, kind):
    """Whether the live state differs from the defaults of the last render."""
    if kind in ("checkbox", "radio"):
        return bool(field.checked) != bool(field.defaultChecked)
    if kind in ("select-one", "select-multiple"):
        options = field.options
        for position in range(options.length):
            option = options.item(position)
            if bool(option.selected) != bool(option.defaultSelected):
                return True
        return False
    return field.value != field.defaultValue


def _takes_part_in_recovery(field):
    """Fields recovery replays: with dj-change or dj-input, or in a dj-auto-recover
    container; never dj-no-recover ones."""
    if field.hasAttribute(constants.ATTR_NO_RECOVER):
        return False
    return (
        field.hasAttribute(constants.ATTR_CHANGE)
        or field.hasAttribute(constants.ATTR_INPUT)
        or not is_null(field.closest("[" + constants.ATTR_AUTO_RECOVER + "]"))
    )


def save_user_input(root):
    """The live state a remount's render must not overwrite, before its patch.

    Fields that take part in recovery keep everything the page showed: recovery then
    sends it to the fresh view. Other fields keep what the user changed since the last
    render (their own edits); untouched ones follow the server. Hidden fields are
    handled by PageDom, dj-no-recover fields by ``reset_unrecovered``.
    """
    saved = []
    fields = root.querySelectorAll("input, select, textarea")
    for index in range(fields.length):
        field = fields.item(index)
        kind = field.type
        if kind in ("hidden", "file", "submit", "button", "reset", "image"):
            continue
        if _takes_part_in_recovery(field) or _modified(field, kind):
            saved.append((field, kind, _live_state(field, kind)))
    return saved


def _show_default(field, kind):
    """Give a field its server-rendered state: checked, selection or value."""
    if kind in ("checkbox", "radio"):
        field.checked = field.defaultChecked
    elif kind in ("select-one", "select-multiple"):
        options = field.options
        for position in range(options.length):
            option = options.item(position)
            option.selected = option.defaultSelected
    elif field.value != field.defaultValue:
        field.value = field.defaultValue


def reset_unrecovered(view_element):
    """After a remount, ``dj-no-recover`` fields show the fresh view's defaults: their
    stale content is neither replayed nor left on screen disagreeing with the server."""
    fields = view_element.querySelectorAll("[" + constants.ATTR_NO_RECOVER + "]")
    for index in range(fields.length):
        field = fields.item(index)
        kind = field.type
        if field.nodeName not in FORM_FIELDS or kind in ("hidden", "file"):
            continue
        _show_default(field, kind)


def _find_again(root, field):
    """The field that replaced ``field`` when a view was rendered whole: the one with its
    id, else with its name (and value, for a checkbox or radio), or None."""
    found = None
    if field.id:
        found = root.querySelector("#" + js.CSS.escape(field.id))
    elif field.name:
        selector = '[name="%s"]' % js.CSS.escape(field.name)
        if field.type in ("checkbox", "radio"):
            selector += '[value="%s"]' % js.CSS.escape(field.value)
        found = root.querySelector(selector)
    return None if is_null(found) else found


def restore_user_input(root, saved):
    """Put back what ``save_user_input`` saw, on the fields still in the page (or on the
    ones that replaced them, when the view was rendered whole)."""
    checks = []
    for field, kind, value in saved:
        if not field.isConnected:
            field = _find_again(root, field)
            if field is None or field.type != kind:
                continue
        if kind in ("checkbox", "radio"):
            checks.append((field, value))
        elif kind in ("select-one", "select-multiple"):
            options = field.options
            for position in range(options.length):
                option = options.item(position)
                option.selected = option.value in value
        elif field.value != value:
            field.value = value
    # Unchecking first: checking a radio unchecks the rest of its group.
    for field, value in checks:
        if not value:
            field.checked = False
    for field, value in checks:
        if value:
            field.checked = True


def submitted_fields(form):
    """What a form's fields hold as it is submitted: (field, kind, live state) for each
    field the server renders (not buttons, file or hidden inputs, nor fields inside
    ``dj-update="ignore"``), for ``show_submitted`` when the reply comes."""
    saved = []
    fields = form.querySelectorAll("input, select, textarea")
    ignored = "[" + constants.ATTR_UPDATE + '="' + constants.UPDATE_IGNORE + '"]'
    for index in range(fields.length):
        field = fields.item(index)
        kind = field.type
        if kind in ("hidden", "file", "submit", "button", "reset", "image"):
            continue
        if not is_null(field.closest(ignored)):
            continue
        saved.append((field, kind, _live_state(field, kind)))
    return saved


def show_submitted(saved):
    """After the reply to a submit (its patch applied): every field that still holds what
    was submitted shows the server's rendered value, even the focused one, so a handler
    that clears its state clears the form. A field changed since the submit keeps the
    change: nothing typed meanwhile is lost."""
    for field, kind, state in saved:
        if field.isConnected and _live_state(field, kind) == state:
            _show_default(field, kind)


def view_root(view_element):
    """The element a view's render fills: its ``[dj-root]`` if it has one, else itself."""
    root = view_element.querySelector("[" + constants.ATTR_ROOT + "]")
    if is_null(root) or root.closest("[" + constants.ATTR_VIEW + "]") != view_element:
        return view_element
    return root


def prefixed_params(element, prefix):
    """Attributes named ``prefix``-something as params: with ``dj-value-``,
    ``dj-value-doc-id`` becomes ``doc_id``; with ``data-``, ``data-page`` becomes ``page``."""
    params = {}
    for name in element.getAttributeNames():
        if name.startswith(prefix) and len(name) > len(prefix):
            params[recovery.attribute_param_name(name, prefix)] = element.getAttribute(name)
    return params


def value_params(element):
    """``dj-value-*`` attributes as params."""
    return prefixed_params(element, constants.ATTR_VALUE_PREFIX)


def _select_values(select, default):
    values = []
    options = select.options
    for index in range(options.length):
        option = options.item(index)
        if option.defaultSelected if default else option.selected:
            values.append(option.value)
    return values


def describe(element, container=None):
    """The facts recovery and events need about one element (see ``djreconnect.recovery``)."""
    tag = element.nodeName
    record = {
        "tag": tag,
        "name": element.getAttribute("name") or "",
        "input": element.getAttribute(constants.ATTR_INPUT),
        "change": element.getAttribute(constants.ATTR_CHANGE),
        "params": value_params(element),
        "disabled": bool(getattr(element, "disabled", False)),
        "no_recover": element.hasAttribute(constants.ATTR_NO_RECOVER),
        "container": container,
    }
    for key in ("input", "change"):
        if is_null(record[key]):
            record[key] = None
    if tag not in FORM_FIELDS:
        return record
    kind = element.type
    record["type"] = kind
    if kind in ("checkbox", "radio"):
        record["value"] = element.value
        record["checked"] = bool(element.checked)
        record["default_checked"] = bool(element.defaultChecked)
    elif kind == "select-multiple":
        record["value"] = _select_values(element, False)
        record["default"] = _select_values(element, True)
    elif kind == "select-one":
        record["value"] = element.value
        chosen = _select_values(element, True)
        if chosen:
            record["default"] = chosen[-1]  # the last option[selected] wins, as in the browser
        else:
            first = element.options.item(0)
            record["default"] = "" if is_null(first) else first.value
    else:
        record["value"] = element.value
        record["default"] = _server_value(element) if kind == "hidden" else element.defaultValue
    return record


def recovery_snapshot(view_element):
    """Records of a view's recoverable fields and auto-recover containers, in document
    order, from one query. Elements of nested views are left to those views."""
    found = view_element.querySelectorAll(recovery.RECOVERY_SELECTOR)
    elements = [found.item(position) for position in range(found.length)]
    if view_element.hasAttribute(constants.ATTR_AUTO_RECOVER):
        elements.insert(0, view_element)  # the view itself can be a container
    view_selector = "[" + constants.ATTR_VIEW + "]"
    auto_selector = "[" + constants.ATTR_AUTO_RECOVER + "]"
    snapshot = []
    containers = 0
    for element in elements:
        if element != view_element and element.closest(view_selector) != view_element:
            continue
        container = None
        parent = element.parentElement
        if element != view_element and not is_null(parent):
            enclosing = parent.closest(auto_selector)
            if not is_null(enclosing) and (enclosing == view_element or view_element.contains(enclosing)):
                container = enclosing.djRecoverIndex
        record = describe(element, container)
        handler = element.getAttribute(constants.ATTR_AUTO_RECOVER)
        if not is_null(handler) and handler:
            containers += 1
            element.djRecoverIndex = containers
            params = prefixed_params(element, constants.ATTR_DATA_PREFIX)
            params.update(record["params"])
            record.update(auto=handler, index=containers, params=params)
        snapshot.append(record)
    return snapshot


def form_params(form):
    """A form serialized as params; a name given several times maps to a list."""
    params = {}
    entries = getattr(js.Array, "from")(js.FormData.new(form).entries())
    for entry in entries:
        name, value = entry[0], entry[1]
        if not isinstance(value, str):
            continue  # files are not sent over the live connection
        if name in params:
            previous = params[name]
            if isinstance(previous, list):
                previous.append(value)
            else:
                params[name] = [previous, value]
        else:
            params[name] = value
    return params


def install_banner_css(document):
    """The banner's default look, first in <head> so any page stylesheet overrides it."""
    style = document.createElement("style")
    style.textContent = BANNER_CSS
    head = document.head
    head.insertBefore(style, head.firstChild)


def show_status(document, state, attempt, max_attempts, reason, texts=None):
    """Body classes, banner, attempt attribute and CSS property for a connection state.

    ``texts`` (a ``djreconnect.banner.BannerTexts``) gives the banner's words; in the
    failed state ``attempt`` and ``max_attempts`` are the attempts made and allowed."""
    if texts is None:
        texts = BannerTexts()
    body = document.body
    classes = body.classList
    connected = state == CONNECTED
    classes.toggle(constants.CLASS_CONNECTED, connected)
    classes.toggle(constants.CLASS_DISCONNECTED, not connected)
    classes.toggle(constants.CLASS_RECONNECT_FAILED, state == FAILED)
    banner = document.getElementById(constants.BANNER_ID)
    if state == RECONNECTING:
        body.setAttribute(constants.ATTR_RECONNECT_ATTEMPT, str(attempt))
        body.style.setProperty(constants.CSS_RECONNECT_ATTEMPT, str(attempt))
        banner = _banner(document, banner)
        banner.textContent = texts.reconnecting(attempt, max_attempts)
        banner.setAttribute("data-state", state)
        return
    body.removeAttribute(constants.ATTR_RECONNECT_ATTEMPT)
    body.style.removeProperty(constants.CSS_RECONNECT_ATTEMPT)
    if state == FAILED:
        banner = _banner(document, banner)
        banner.textContent = texts.failed(reason, attempt, max_attempts)
        banner.setAttribute("data-state", state)
        button = document.createElement("button")
        button.type = "button"
        button.className = constants.CLASS_BANNER_RETRY
        button.textContent = texts.retry(reason, attempt, max_attempts)
        banner.appendChild(button)
        return
    if not is_null(banner):
        banner.remove()


def _banner(document, banner):
    if not is_null(banner):
        return banner
    banner = document.createElement("div")
    banner.id = constants.BANNER_ID
    banner.className = constants.CLASS_BANNER
    banner.setAttribute("role", "status")
    banner.setAttribute("aria-live", "polite")
    # Outside <body>, so it is never part of a view that happens to be the body.
    document.documentElement.appendChild(banner)
    return banner
