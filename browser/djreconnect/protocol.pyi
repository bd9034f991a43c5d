# Types of ``protocol.py`` for the server's type checker (the module itself carries no
# annotations: it runs under MicroPython too). A message's fields are set from its
# FIELDS table at run time; they are declared here, and a unit test holds the two equal.
from typing import Any, ClassVar

INT: str
STR: str
DICT: str
LIST: str
OPT_INT: str
OPT_STR: str
BOOL: str
MOUNT_FAILED: str
ID_REUSED: str
ID_EXPIRED: str
STORE_UNAVAILABLE: str
SESSION_NEW: str
SESSION_UNKNOWN: str
MAX_NAME_LENGTH: int
MAX_SECRET_LENGTH: int
MAX_BATCH: int

class ProtocolError(Exception):
    code: str
    message: str
    def __init__(self, code: str, message: str) -> None: ...

class _Required: ...

REQUIRED: _Required

class Message:
    TYPE: ClassVar[str]
    FIELDS: ClassVar[tuple[tuple[str, str, Any], ...]]
    def __init__(self, **values: Any) -> None: ...
    def to_wire(self) -> dict[str, Any]: ...
    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Message: ...
    def validate(self) -> None: ...

# --- client -> server

class Hello(Message):
    ref: int
    session: str | None
    secret: str | None

class Join(Message):
    ref: int
    view: str
    name: str
    token: str
    html: str
    version: int | None

class Event(Message):
    ref: int
    view: str
    handler: str
    params: dict[str, Any]

class Batch(Message):
    ref: int
    view: str
    events: list[list[Any]]

class Leave(Message):
    view: str

class Ping(Message):
    ref: int

# --- server -> client

class Welcome(Message):
    ref: int
    session: str
    secret: str
    resumed: bool
    reason: str

class Rendered(Message):
    ref: int
    view: str
    ops: list[list[Any]]
    version: int
    resumed: bool

class Reply(Message):
    ref: int | None
    view: str
    ops: list[list[Any]]
    version: int | None

class Error(Message):
    ref: int | None
    view: str | None
    code: str
    message: str

class Pong(Message):
    ref: int

ClientMessage = Hello | Join | Event | Batch | Leave | Ping
ServerMessage = Welcome | Rendered | Reply | Error | Pong

CLIENT_MESSAGES: tuple[type[Message], ...]
SERVER_MESSAGES: tuple[type[Message], ...]

def encode(message: Message) -> str: ...
def decode_client(text: object, max_length: int | None = None) -> ClientMessage: ...
def decode_server(text: object, max_length: int | None = None) -> ServerMessage: ...
