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
    return form_data_params(js.FormData.new(form))


def form_data_params(data):
    """A FormData as params (a live submit's, or one the boot loader kept): a name given
    several times maps to a list; files are left out (not sent over the live connection)."""
    params = {}
    entries = getattr(js.Array, "from")(data.entries())
    for index in range(entries.length):
        entry = entries[index]
        name, value = entry[0], entry[1]
        if not isinstance(value, str):
            continue
        if name in params:
            previous = params[name]
            if isinstance(previous, list):
                previous.append(value)
            else:
                params[name] = [previous, value]
        else:
            params[name] = value
    return params
