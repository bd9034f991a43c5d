"""What a delegated page event sends and shows while it is in flight: its params by
kind, and the ``dj-disable-with`` elements it disables until it is answered."""

from djreconnect import constants
from djreconnect.client import KIND_CLICK, KIND_SUBMIT
from djreconnect.params import form_params, value_params
from djreconnect.recovery import covers, event_params
from djreconnect.snapshot import describe


def params_for(kind, element):
    """The params an event of ``kind`` on ``element`` sends, and whether recovery covers it
    (an input or change of a field recovery restores is never sent twice): a submit sends
    its form and the form's ``dj-value-*``, a click its ``dj-value-*``, an input or change
    the field's value and ``dj-value-*``."""
    if kind == KIND_SUBMIT:
        params = form_params(element)
        params.update(value_params(element))
        return params, False
    if kind == KIND_CLICK:
        return value_params(element), False
    record = describe(element)
    return event_params(record), covers(record)


def disable_targets(kind, element):
    """The elements an event disables until its reply: a submit's ``dj-disable-with``
    descendants of the form, else the element itself if it has the attribute."""
    if kind == KIND_SUBMIT:
        found = element.querySelectorAll("[" + constants.ATTR_DISABLE_WITH + "]")
        return [found.item(index) for index in range(found.length)]
    return [element] if element.hasAttribute(constants.ATTR_DISABLE_WITH) else []


def disable(elements):
    """Disable each element and show its ``dj-disable-with`` text, keeping its own."""
    for element in elements:
        element.setAttribute(constants.ATTR_DISABLED_TEXT, element.textContent)
        element.textContent = element.getAttribute(constants.ATTR_DISABLE_WITH)
        element.disabled = True


def enable(elements):
    """Undo ``disable``: the element's own text back, enabled."""
    for element in elements:
        if element.hasAttribute(constants.ATTR_DISABLED_TEXT):
            element.textContent = element.getAttribute(constants.ATTR_DISABLED_TEXT)
            element.removeAttribute(constants.ATTR_DISABLED_TEXT)
        element.disabled = False
