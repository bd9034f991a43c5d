"""The recovery snapshot: the records of a view's recoverable fields and auto-recover
containers that ``djreconnect.recovery`` decides on, read from the page."""

from djreconnect import constants, recovery
from djreconnect.fields import server_value
from djreconnect.jsbridge import is_null
from djreconnect.params import prefixed_params, value_params


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
    if tag not in constants.FORM_FIELD_TAGS:
        return record
    field_type = element.type
    record["type"] = field_type
    if field_type in ("checkbox", "radio"):
        record["value"] = element.value
        record["checked"] = bool(element.checked)
        record["default_checked"] = bool(element.defaultChecked)
    elif field_type == "select-multiple":
        record["value"] = _select_values(element, False)
        record["default"] = _select_values(element, True)
    elif field_type == "select-one":
        record["value"] = element.value
        chosen = _select_values(element, True)
        if chosen:
            record["default"] = chosen[-1]  # the last option[selected] wins, as in the browser
        else:
            first = element.options.item(0)
            record["default"] = "" if is_null(first) else first.value
    else:
        record["value"] = element.value
        record["default"] = server_value(element) if field_type == "hidden" else element.defaultValue
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
