"""Recovery decisions: which events bring a remounted view's server state back to what
the page shows. Pure functions over a snapshot the browser adapter takes with one
DOM query per view.

A snapshot is a list, in document order, of element records (dicts):

    tag          "INPUT", "SELECT", "TEXTAREA", or another tag name (containers)
    type         the field's type: "text", "checkbox", "radio", "select-one",
                 "select-multiple", "textarea", "file", "hidden", ...
    name         the field's name ("" if none)
    input        handler named by dj-input, or None
    change       handler named by dj-change, or None
    params       the element's dj-value-* attributes as params
    disabled     bool
    no_recover   bool (dj-no-recover)
    container    index of the enclosing [dj-auto-recover] container, or None
    value        live value (a string; for select-multiple a list of strings)
    default      server-rendered value (same shape as value)
    checked      live checked state (checkbox and radio)
    default_checked  checked attribute present (checkbox and radio)

Containers (elements with dj-auto-recover) are records with ``auto`` (the handler),
``index`` (their number) and ``params`` (dj-value-* and data-* merged).
"""

from djreconnect import constants

# Buttons and files are never part of what recovery sends.
UNSERIALIZED_TYPES = ("file", "submit", "button", "reset", "image")


def attribute_param_name(attribute, prefix):
    """``dj-value-doc-id`` (prefix ``dj-value-``) -> ``doc_id``."""
    return attribute[len(prefix) :].replace("-", "_")


def field_value(record):
    """What an input or change event on this field reports as ``value``."""
    field_type = record.get("type")
    if field_type == "checkbox":
        return bool(record.get("checked"))
    return record.get("value")


def event_params(record):
    """The params a real input/change event on this field sends."""
    params = dict(record.get("params") or {})
    params["value"] = field_value(record)
    return params


def covers(record):
    """Whether recovery restores this field, so that an input or change event of it never
    needs sending twice: a dj-change/dj-input field, enabled, not dj-no-recover, not a
    file input. (One in a dj-auto-recover container is restored by the container's
    handler after a remount, and by form recovery after a resume.)"""
    return (
        record.get("tag") in constants.FORM_FIELD_TAGS
        and (record.get("input") or record.get("change"))
        and not record.get("disabled")
        and not record.get("no_recover")
        and record.get("type") != "file"
    )


def _differs(record):
    field_type = record.get("type")
    if field_type == "checkbox":
        return bool(record.get("checked")) != bool(record.get("default_checked"))
    if field_type == "select-multiple":
        return sorted(record.get("value") or []) != sorted(record.get("default") or [])
    return record.get("value") != record.get("default")


def _events_for(record, value=None, use_value=False):
    params = dict(record.get("params") or {})
    params["value"] = value if use_value else field_value(record)
    events = []
    # A real edit fires input, then change.
    for kind in ("input", "change"):
        handler = record.get(kind)
        if handler:
            events.append((handler, dict(params)))
    return events


def form_recovery(snapshot, containers=False):
    """(handler, params) pairs for every recoverable field whose live value differs from
    its server-rendered default, in document order; a radio group counts once. Fields in
    dj-auto-recover containers take part only with ``containers`` (after a resume, when
    no container handler runs)."""
    events = []
    groups = {}
    group_order = []
    for position, record in enumerate(snapshot):
        if not covers(record) or (record.get("container") is not None and not containers):
            continue
        if record.get("type") == "radio":
            key = record.get("name") or ("#%d" % position)
            if key not in groups:
                groups[key] = []
                group_order.append((position, key))
            groups[key].append(record)
            continue
        if _differs(record):
            events.append((position, _events_for(record)))
    for position, key in group_order:
        radios = groups[key]
        live = None
        default = None
        for radio in radios:
            if radio.get("checked"):
                live = radio
            if radio.get("default_checked"):
                default = radio
        live_value = live.get("value") if live is not None else None
        default_value = default.get("value") if default is not None else None
        if live_value != default_value:
            # The event a real change sends comes from the radio that became checked.
            source = live if live is not None else radios[0]
            events.append((position, _events_for(source, live_value, True)))
    events.sort(key=lambda pair: pair[0])
    flat = []
    for _, pairs in events:
        flat.extend(pairs)
    return flat


def _serialized(record):
    """The form-data values of a named field: [] when a form would not send it."""
    if not record.get("name") or record.get("disabled") or record.get("tag") not in constants.FORM_FIELD_TAGS:
        return []
    field_type = record.get("type")
    if field_type in UNSERIALIZED_TYPES:
        return []
    if field_type in ("checkbox", "radio"):
        if not record.get("checked"):
            return []
        value = record.get("value")
        return ["on" if value is None else value]
    if field_type == "select-multiple":
        return list(record.get("value") or [])
    return [record.get("value") if record.get("value") is not None else ""]


def auto_recovery(snapshot):
    """(handler, params) for each [dj-auto-recover] container, in document order: its
    dj-value-* and data-* attributes, overridden by its named fields' values (names
    with dashes turned into underscores)."""
    containers = []
    by_index = {}
    for record in snapshot:
        if record.get("auto"):
            params = dict(record.get("params") or {})
            entry = (record["auto"], params, {}, set())
            containers.append(entry)
            by_index[record.get("index")] = entry
    for record in snapshot:
        entry = by_index.get(record.get("container"))
        if entry is None:
            continue
        values = _serialized(record)
        if not values:
            continue
        name = record["name"].replace("-", "_")
        fields = entry[2]
        if record.get("type") == "select-multiple":
            entry[3].add(name)  # a list even with one option selected
        if name in fields:
            fields[name].extend(values)
        else:
            fields[name] = list(values)
    calls = []
    for handler, params, fields, lists in containers:
        for name in fields:
            values = fields[name]
            params[name] = values[0] if len(values) == 1 and name not in lists else values
        calls.append((handler, params))
    return calls


def recovery_events(snapshot, remount, resume=False):
    """Everything to send after a view is back: form recovery, then (on a remount only)
    the auto-recover handlers. After a resume nothing was lost, so no handler runs, and
    the fields of auto-recover containers are compared like any other."""
    events = form_recovery(snapshot, containers=resume)
    if remount:
        events.extend(auto_recovery(snapshot))
    return events


RECOVERY_SELECTOR = ",".join(
    (
        "[" + constants.ATTR_CHANGE + "]",
        "[" + constants.ATTR_INPUT + "]",
        "[" + constants.ATTR_AUTO_RECOVER + "]",
        "[" + constants.ATTR_AUTO_RECOVER + "] [name]",
    )
)
