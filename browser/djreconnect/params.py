"""Params from the page: an element's ``dj-value-*`` (or ``data-*``) attributes and a
form's fields, as events send them."""

from djreconnect import constants, recovery
from djreconnect.jsbridge import js


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
