"""DOM helpers of the browser adapter: the patch target, event parameters, the status UI.

Stateless functions over the page; the few DOM calls each makes are the point.
"""

from djreconnect import constants
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
    state of fields the user is not in, so a server reset (a cleared input) shows.
    """

    def __init__(self, document, mount):
        self.document = document
        self.mount = mount
        self.focused = document.activeElement

    def _syncs(self, node):
        return not self.mount and node.nodeName in FORM_FIELDS + ("OPTION",) and not self._is_focused(node)

    def _is_focused(self, node):
        focused = self.focused
        return not is_null(focused) and (node == focused or (node.nodeName == "OPTION" and node.parentNode == focused))

    def child(self, node, index):
        found = node.childNodes.item(index)
        return None if is_null(found) else found

    def set_attribute(self, node, name, value):
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
            template = self.document.createElement("template")
            template.innerHTML = html
            before = node.childNodes.item(start)
            node.insertBefore(template.content, None if is_null(before) else before)


def view_root(view_element):
    """The element a view's render fills: its ``[dj-root]`` if it has one, else itself."""
    root = view_element.querySelector("[" + constants.ATTR_ROOT + "]")
    if is_null(root) or root.closest("[" + constants.ATTR_VIEW + "]") != view_element:
        return view_element
    return root


def value_params(element):
    """``dj-value-*`` attributes as params: ``dj-value-doc-id`` becomes ``doc_id``."""
    params = {}
    prefix = constants.ATTR_VALUE_PREFIX
    for name in element.getAttributeNames():
        if name.startswith(prefix) and len(name) > len(prefix):
            params[name[len(prefix):].replace("-", "_")] = element.getAttribute(name)
    return params


def field_value(field):
    """What a change or input on ``field`` reports: text, checked state, the checked
    radio of its group, or the list of selected options."""
    kind = field.type
    if kind == "checkbox":
        return bool(field.checked)
    if kind == "radio":
        form = field.form
        scope = form if not is_null(form) else field.ownerDocument
        checked = scope.querySelector('input[type="radio"][name="%s"]:checked' % field.name.replace('"', '\\"'))
        return None if is_null(checked) else checked.value
    if kind == "select-multiple":
        return [option.value for option in field.selectedOptions]
    return field.value


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


def show_status(document, state, attempt, max_attempts, reason):
    """Body classes, banner, attempt attribute and CSS property for a connection state."""
    body = document.body
    classes = body.classList
    connected = state == "connected"
    classes.toggle(constants.CLASS_CONNECTED, connected)
    classes.toggle(constants.CLASS_DISCONNECTED, not connected)
    classes.toggle(constants.CLASS_RECONNECT_FAILED, state == "failed")
    banner = document.getElementById(constants.BANNER_ID)
    if state == "reconnecting":
        body.setAttribute(constants.ATTR_RECONNECT_ATTEMPT, str(attempt))
        body.style.setProperty(constants.CSS_RECONNECT_ATTEMPT, str(attempt))
        banner = _banner(document, banner)
        banner.textContent = "Reconnecting... (attempt %d of %d)" % (attempt, max_attempts)
        banner.setAttribute("data-state", state)
        return
    body.removeAttribute(constants.ATTR_RECONNECT_ATTEMPT)
    body.style.removeProperty(constants.CSS_RECONNECT_ATTEMPT)
    if state == "failed":
        banner = _banner(document, banner)
        banner.textContent = "Connection lost: %s." % reason if reason else "Connection lost."
        banner.setAttribute("data-state", state)
        button = document.createElement("button")
        button.type = "button"
        button.className = constants.CLASS_BANNER_RETRY
        button.textContent = "Try again"
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
