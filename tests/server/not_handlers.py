"""Names a client may send that are not event handlers of the demo editor: each must be
refused with unknown_handler (lifecycle methods, helpers, class attributes, dunders,
private names, the handler marker itself)."""

NOT_HANDLERS = (
    "no_such_handler",
    "mount",
    "render",
    "get_context",
    "state",
    "state_json",
    "handle_event",
    "find_handler",
    "handler_names",
    "template_name",
    "view_name",
    "__init__",
    "__class__",
    "__dict__",
    "__init_subclass__",
    "__getattribute__",
    "__call__",
    "_handlers",
    "_private",
    "_choice",
    "_djreconnect_event_handler",
)
