"""The patch target: the page's DOM as ``djreconnect.patch.apply_ops`` sees it, a view's
root element, and the HTML of that root the server patches from."""

from djreconnect import constants
from djreconnect.fields import field_of, keeps_own_value
from djreconnect.jsbridge import is_null


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
        if self.mount or node.nodeName not in constants.FORM_FIELD_TAGS + ("OPTION",) or self._is_focused(node):
            return False
        return self.keeps is None or not self.keeps(field_of(node))

    def _is_focused(self, node):
        focused = self.focused
        return not is_null(focused) and (node == focused or (node.nodeName == "OPTION" and node.parentNode == focused))

    def child(self, node, index):
        found = node.childNodes.item(index)
        return None if is_null(found) else found

    def set_attribute(self, node, name, value):
        if name == "value" and keeps_own_value(node):
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


def view_root(view_element):
    """The element a view's render fills: its ``[dj-root]`` if it has one, else itself."""
    root = view_element.querySelector("[" + constants.ATTR_ROOT + "]")
    if is_null(root) or root.closest("[" + constants.ATTR_VIEW + "]") != view_element:
        return view_element
    return root


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
