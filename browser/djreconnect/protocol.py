"""The wire format, defined once: message classes, their validation, and the JSON codec.

Client and server both import this module. A frame is one JSON object whose ``t``
names the message type; every other key is a field checked against the message's
field table, so a malformed frame is refused here with a clear reason.
"""

import json

# Field kinds: what a value on the wire must be.
INT = "int"
STR = "str"
DICT = "dict"
LIST = "list"
OPT_INT = "int or null"
OPT_STR = "string or null"
BOOL = "true or false"

# Error codes the runtime acts on (others are reported to the page as they come).
# A mount that broke on the server: worth another try, unlike a refusal, which the
# server follows with a 4xxx close.
MOUNT_FAILED = "mount_failed"
# An event id seen before with another payload: refused, nothing applied.
ID_REUSED = "id_reused"
# An event id older than the server's exactly-once record: it may have been applied, so
# it is refused rather than applied a second time.
ID_EXPIRED = "id_expired"
# The server's session store cannot be reached: the server closes with 1013 and the
# runtime tries again on its backoff schedule.
STORE_UNAVAILABLE = "store_unavailable"

# Why a Hello did not resume its session (Welcome.reason); the runtime remounts.
SESSION_NEW = "new"  # the page asked for no session
SESSION_UNKNOWN = "unknown"  # expired, evicted, never existed here, or a wrong secret

# Maximum length of names (views, handlers, params keys) on the wire.
MAX_NAME_LENGTH = 200
# Session ids and secrets: 24 URL-safe characters (144 bits) when the server makes them.
MAX_SECRET_LENGTH = 64


class ProtocolError(Exception):
    """A frame that is not a valid message. ``code`` is a short machine-readable tag."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check(value_type, value):
    if value_type == INT:
        return _is_int(value)
    if value_type == STR:
        return isinstance(value, str)
    if value_type == DICT:
        return isinstance(value, dict)
    if value_type == LIST:
        return isinstance(value, list)
    if value_type == OPT_INT:
        return value is None or _is_int(value)
    if value_type == OPT_STR:
        return value is None or isinstance(value, str)
    if value_type == BOOL:
        return isinstance(value, bool)
    raise ValueError("unknown field type " + repr(value_type))


class Message:
    """Base of every message. Subclasses set TYPE and FIELDS: a tuple of (name, value_type, default).

    A field whose default is ``REQUIRED`` must be present on the wire.
    """

    TYPE = None
    FIELDS = ()

    def __init__(self, **values):
        for name, value_type, default in self.FIELDS:
            if name in values:
                setattr(self, name, values.pop(name))
            elif default is REQUIRED:
                raise TypeError(self.TYPE + " needs field " + name)
            elif isinstance(default, (dict, list)):
                setattr(self, name, type(default)())  # never share a mutable default
            else:
                setattr(self, name, default)
        if values:
            raise TypeError(self.TYPE + " has no field " + ", ".join(sorted(values)))

    def to_wire(self):
        wire = {"t": self.TYPE}
        for name, value_type, default in self.FIELDS:
            wire[name] = getattr(self, name)
        return wire

    @classmethod
    def from_wire(cls, wire):
        values = {}
        for name, value_type, default in cls.FIELDS:
            if name in wire:
                value = wire[name]
                if not _check(value_type, value):
                    raise ProtocolError(
                        "bad_field",
                        "field '%s' of a '%s' message must be %s" % (name, cls.TYPE, value_type),
                    )
                values[name] = value
            elif default is REQUIRED:
                raise ProtocolError("missing_field", "a '%s' message needs the field '%s'" % (cls.TYPE, name))
        for name in wire:
            if name != "t" and name not in values:
                raise ProtocolError("unknown_field", "a '%s' message has no field '%s'" % (cls.TYPE, name))
        message = cls(**values)
        message.validate()
        return message

    def validate(self):
        """Checks beyond field kinds; raise ProtocolError."""

    def __eq__(self, other):
        return type(self) is type(other) and self.to_wire() == other.to_wire()

    def __repr__(self):
        return "%s(%s)" % (
            type(self).__name__,
            ", ".join("%s=%r" % (name, getattr(self, name)) for name, _, _ in self.FIELDS),
        )


class _Required:
    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()


def _check_name(what, value):
    if not value or len(value) > MAX_NAME_LENGTH:
        raise ProtocolError("bad_field", "%s must be 1 to %d characters" % (what, MAX_NAME_LENGTH))


# --- client -> server -------------------------------------------------------


class Hello(Message):
    """The first frame on a new transport: resume session ``session`` with ``secret``
    (both null on a page's first connection). The server answers with Welcome."""

    TYPE = "hello"
    FIELDS = (
        ("ref", INT, REQUIRED),
        ("session", OPT_STR, None),
        ("secret", OPT_STR, None),
    )

    def validate(self):
        for name in ("session", "secret"):
            value = getattr(self, name)
            if value is not None and not 0 < len(value) <= MAX_SECRET_LENGTH:
                raise ProtocolError("bad_field", "%s must be 1 to %d characters" % (name, MAX_SECRET_LENGTH))


class Join(Message):
    """Mount a view, or pick it up again in a resumed session. ``html`` is what the page
    shows now in the view's root and ``version`` the render it last applied (null before
    any), so the server patches from there instead of replacing the user's DOM."""

    TYPE = "join"
    FIELDS = (
        ("ref", INT, REQUIRED),
        ("view", STR, REQUIRED),  # the page's id for this view instance
        ("name", STR, REQUIRED),  # the registered view name
        ("token", STR, ""),  # signed mount grant from the server-rendered page
        ("html", STR, ""),
        ("version", OPT_INT, None),
    )

    def validate(self):
        _check_name("view", self.view)
        _check_name("name", self.name)


class Event(Message):
    """Call an event handler of a mounted view."""

    TYPE = "event"
    FIELDS = (
        ("ref", INT, REQUIRED),
        ("view", STR, REQUIRED),
        ("handler", STR, REQUIRED),
        ("params", DICT, {}),
    )

    def validate(self):
        _check_name("view", self.view)
        _check_name("handler", self.handler)
        for key in self.params:
            if not isinstance(key, str) or not key:
                raise ProtocolError("bad_field", "params keys must be non-empty strings")


# Most events one Batch may carry.
MAX_BATCH = 2000


class Batch(Message):
    """Several events for one view, handled in order and answered by one render: what
    recovery sends after a remount. ``events`` is a list of [handler, params] pairs."""

    TYPE = "batch"
    FIELDS = (
        ("ref", INT, REQUIRED),
        ("view", STR, REQUIRED),
        ("events", LIST, REQUIRED),
    )

    def validate(self):
        _check_name("view", self.view)
        if len(self.events) > MAX_BATCH:
            raise ProtocolError("bad_field", "a batch holds at most %d events" % MAX_BATCH)
        for pair in self.events:
            if not (
                isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], dict)
            ):
                raise ProtocolError("bad_field", "batch events must be [handler, params] pairs")
            _check_name("handler", pair[0])
            for key in pair[1]:
                if not isinstance(key, str) or not key:
                    raise ProtocolError("bad_field", "params keys must be non-empty strings")


class Leave(Message):
    """Unmount a view."""

    TYPE = "leave"
    FIELDS = (("view", STR, REQUIRED),)


class Ping(Message):
    """Heartbeat from the client; the server answers with Pong."""

    TYPE = "ping"
    FIELDS = (("ref", INT, REQUIRED),)


# --- server -> client -------------------------------------------------------


class Welcome(Message):
    """The answer to Hello: the session this connection serves and its new secret (a
    secret works for one resume). ``resumed`` is false when the session asked for is gone
    (``reason`` says why): the views will be mounted afresh."""

    TYPE = "welcome"
    FIELDS = (
        ("ref", INT, REQUIRED),
        ("session", STR, REQUIRED),
        ("secret", STR, REQUIRED),
        ("resumed", BOOL, False),
        ("reason", STR, ""),
    )


class Rendered(Message):
    """A view was mounted (or resumed, ``resumed`` true: its state was kept): the patch
    that turns the page's HTML into the server's render number ``version``."""

    TYPE = "rendered"
    FIELDS = (
        ("ref", INT, REQUIRED),
        ("view", STR, REQUIRED),
        ("ops", LIST, []),
        ("version", INT, 0),
        ("resumed", BOOL, False),
    )


class Reply(Message):
    """The answer to an event: the patch its re-render produced (possibly empty), which
    brings the page to render ``version``. ``ref`` is null for a render no event asked for."""

    TYPE = "reply"
    FIELDS = (
        ("ref", OPT_INT, None),
        ("view", STR, REQUIRED),
        ("ops", LIST, []),
        ("version", OPT_INT, None),
    )


class Error(Message):
    """A refused message. The connection and the view's state are unchanged."""

    TYPE = "error"
    FIELDS = (
        ("ref", OPT_INT, None),
        ("view", OPT_STR, None),
        ("code", STR, REQUIRED),
        ("message", STR, REQUIRED),
    )


class Pong(Message):
    """The server's answer to Ping."""

    TYPE = "pong"
    FIELDS = (("ref", INT, REQUIRED),)


CLIENT_MESSAGES = (Hello, Join, Event, Batch, Leave, Ping)
SERVER_MESSAGES = (Welcome, Rendered, Reply, Error, Pong)


def _by_type(classes):
    table = {}
    for cls in classes:
        table[cls.TYPE] = cls
    return table


_CLIENT_TYPES = _by_type(CLIENT_MESSAGES)
_SERVER_TYPES = _by_type(SERVER_MESSAGES)


def encode(message):
    """The JSON text of a message."""
    return json.dumps(message.to_wire())


def _decode(text, table, max_length):
    if not isinstance(text, str):
        raise ProtocolError("bad_frame", "frames must be JSON text")
    if max_length is not None and len(text) > max_length:
        raise ProtocolError("too_big", "frame of %d characters exceeds the limit of %d" % (len(text), max_length))
    try:
        wire = json.loads(text)
    except ValueError:
        raise ProtocolError("bad_json", "frame is not valid JSON")
    except RuntimeError:  # RecursionError: nested deeper than the parser can go
        raise ProtocolError("bad_json", "frame is nested too deeply")
    if not isinstance(wire, dict):
        raise ProtocolError("bad_frame", "a frame must be a JSON object")
    message_type = wire.get("t")
    cls = table.get(message_type) if isinstance(message_type, str) else None
    if cls is None:
        raise ProtocolError("unknown_type", "unknown message type %r" % (message_type,))
    return cls.from_wire(wire)


def decode_client(text, max_length=None):
    """Decode a frame sent by a browser. Raises ProtocolError."""
    return _decode(text, _CLIENT_TYPES, max_length)


def decode_server(text, max_length=None):
    """Decode a frame sent by the server. Raises ProtocolError."""
    return _decode(text, _SERVER_TYPES, max_length)
