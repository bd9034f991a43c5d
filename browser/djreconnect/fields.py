"""The live state of a view's form fields: what a remount's render must not overwrite,
what a submit's reply shows, the server's values of hidden fields the page writes,
which fields take part in recovery, and which field sent an event (its number)."""

from djreconnect import constants
from djreconnect.jsbridge import is_null, js


def keeps_own_value(node):
    """Hidden fields that take part in recovery (the page writes them, not the user)."""
    return node.nodeName == "INPUT" and node.type == "hidden" and takes_part_in_recovery(node)


def field_of(node):
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


def server_value(field):
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
        if takes_part_in_recovery(field):
            field.djServerValue = field.value


def _live_state(field, field_type):
    """A field's live state: checked, the list of selected values, or its value."""
    if field_type in ("checkbox", "radio"):
        return bool(field.checked)
    if field_type in ("select-one", "select-multiple"):
        options = field.options
        return [options.item(i).value for i in range(options.length) if options.item(i).selected]
    return field.value


def _modified(field, field_type):
    """Whether the live state differs from the defaults of the last render."""
    if field_type in ("checkbox", "radio"):
        return bool(field.checked) != bool(field.defaultChecked)
    if field_type in ("select-one", "select-multiple"):
        options = field.options
        for position in range(options.length):
            option = options.item(position)
            if bool(option.selected) != bool(option.defaultSelected):
                return True
        return False
    return field.value != field.defaultValue


def takes_part_in_recovery(field):
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
        field_type = field.type
        if field_type in ("hidden", "file", "submit", "button", "reset", "image"):
            continue
        if takes_part_in_recovery(field) or _modified(field, field_type):
            saved.append((field, field_type, _live_state(field, field_type)))
    return saved


def _show_default(field, field_type):
    """Give a field its server-rendered state: checked, selection or value."""
    if field_type in ("checkbox", "radio"):
        field.checked = field.defaultChecked
    elif field_type in ("select-one", "select-multiple"):
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
        field_type = field.type
        if field.nodeName not in constants.FORM_FIELD_TAGS or field_type in ("hidden", "file"):
            continue
        _show_default(field, field_type)


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
    for field, field_type, value in saved:
        if not field.isConnected:
            field = _find_again(root, field)
            if field is None or field.type != field_type:
                continue
        if field_type in ("checkbox", "radio"):
            checks.append((field, value))
        elif field_type in ("select-one", "select-multiple"):
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
    """What a form's fields hold as it is submitted: (field, field_type, live state) for each
    field the server renders (not buttons, file or hidden inputs, nor fields inside
    ``dj-update="ignore"``), for ``show_submitted`` when the reply comes."""
    saved = []
    fields = form.querySelectorAll("input, select, textarea")
    ignored = "[" + constants.ATTR_UPDATE + '="' + constants.UPDATE_IGNORE + '"]'
    for index in range(fields.length):
        field = fields.item(index)
        field_type = field.type
        if field_type in ("hidden", "file", "submit", "button", "reset", "image"):
            continue
        if not is_null(field.closest(ignored)):
            continue
        saved.append((field, field_type, _live_state(field, field_type)))
    return saved


def show_submitted(saved):
    """After the reply to a submit (its patch applied): every field that still holds what
    was submitted shows the server's rendered value, even the focused one, so a handler
    that clears its state clears the form. A field changed since the submit keeps the
    change: nothing typed meanwhile is lost."""
    for field, field_type, state in saved:
        if field.isConnected and _live_state(field, field_type) == state:
            _show_default(field, field_type)
