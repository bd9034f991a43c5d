"""LiveView: server-side state, rendered by a Jinja2 template, changed by event handlers."""

import asyncio
import inspect
import json
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from starlette.requests import HTTPConnection

from djreconnect_server.params import BadParams, handler_params

if TYPE_CHECKING:
    from djreconnect_server.pubsub import ViewHandle

HANDLER_MARK = "_djreconnect_event_handler"

Handler = TypeVar("Handler", bound=Callable[..., Any])


@overload
def event_handler(name: Handler) -> Handler: ...


@overload
def event_handler(name: str | None = None) -> Callable[[Handler], Handler]: ...


def event_handler(name: str | Handler | None = None) -> Handler | Callable[[Handler], Handler]:
    """Mark a method as callable from the browser (``@event_handler()``).

    Only methods so marked can be invoked by a client; everything else on the
    view, ``mount`` and ``render`` included, is refused.
    """

    def mark(function: Handler) -> Handler:
        if name is not None and (not isinstance(name, str) or name.startswith("_")):
            raise ValueError("an event handler name must be a public identifier: %r" % (name,))
        setattr(function, HANDLER_MARK, name or function.__name__)
        return function

    if callable(name):  # used bare: @event_handler
        function, name = name, None
        return mark(function)
    return mark


class HandlerError(Exception):
    """An event the view refuses. ``code`` is a short tag sent to the client."""

    def __init__(self, code: str, message: str) -> None:
        Exception.__init__(self, message)
        self.code = code
        self.message = message


def _collect_handlers(cls: type) -> dict[str, str]:
    handlers = {}
    for klass in reversed(cls.__mro__):
        for attribute, value in vars(klass).items():
            public_name = getattr(value, HANDLER_MARK, None)
            if public_name is not None and not attribute.startswith("_"):
                handlers[public_name] = attribute
    return handlers


class LiveView:
    """Base class of views. Subclasses set ``template_name``, implement ``mount`` and
    mark event handlers with ``@event_handler()``. Public attributes set by them are the
    view's state and the template's context."""

    template_name: str | None = None
    _handlers: dict[str, str] = {}
    # The name pages and static includes mount the view by (``dj-view="..."``);
    # defaults to the class name without a trailing "View", lower-cased.
    view_name: str = None  # type: ignore[assignment]  # every subclass gets one (__init_subclass__)
    # Set on a live view by the server (``__dict__`` only: not part of its state).
    _djreconnect_handle: "ViewHandle"
    _djreconnect_topics: set[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = _collect_handlers(cls)
        if "view_name" not in vars(cls) or cls.view_name is None:
            name = cls.__name__
            if name.endswith("View") and len(name) > 4:
                name = name[:-4]
            cls.view_name = name.lower()

    def mount(self, request: HTTPConnection, **kwargs: Any) -> None:
        """Set the initial state. ``request`` is the page request or the live connection."""

    def get_context(self) -> dict[str, Any]:
        """The template's context: the view's public state, plus ``view``."""
        context = self.state()
        context["view"] = self
        return context

    # --- server push -------------------------------------------------------------

    def subscribe(self, topic: str) -> None:
        """Receive what is broadcast to ``topic`` in ``handle_info`` (until unsubscribed,
        or the session ends). Allowed in ``mount``."""
        if not isinstance(topic, str) or not topic:
            raise ValueError("a topic is a non-empty string, not %r" % (topic,))
        topics = self.__dict__.setdefault("_djreconnect_topics", set())
        topics.add(topic)
        handle = self.__dict__.get("_djreconnect_handle")
        if handle is not None:
            handle.hub.subscribe(topic, handle.session_id, handle.view_id)

    def unsubscribe(self, topic: str) -> None:
        self.__dict__.get("_djreconnect_topics", set()).discard(topic)
        handle = self.__dict__.get("_djreconnect_handle")
        if handle is not None:
            handle.hub.unsubscribe(topic, handle.session_id, handle.view_id)

    def send_after(self, delay_ms: float, message: Any) -> asyncio.TimerHandle:
        """Call ``handle_info(message)`` on this view in ``delay_ms`` milliseconds (once),
        connected or not; nothing if its session has ended by then."""
        handle = self.__dict__.get("_djreconnect_handle")
        if handle is None:
            raise RuntimeError("send_after needs a live view (it is not mounted over a connection)")
        return handle.hub.send_after(handle.session_id, handle.view_id, delay_ms, message)

    def broadcast(self, topic: str, message: Any) -> int:
        """``broadcast(topic, message)`` of the backend this view lives in."""
        handle = self.__dict__.get("_djreconnect_handle")
        if handle is None:
            return 0
        return handle.hub.broadcast(topic, message)

    def handle_info(self, message: Any) -> Awaitable[None] | None:
        """A message pushed to this view (a broadcast to one of its topics, or its own
        ``send_after``). Change state here; the page follows. May be ``async``."""

    def state(self) -> dict[str, Any]:
        """The view's public attributes (its state), as a new dict."""
        return {key: value for key, value in vars(self).items() if not key.startswith("_")}

    def dump_state(self) -> dict[str, Any]:
        """The state a session store keeps (JSON-able): by default the public attributes.
        A view holding other objects overrides this and ``load_state``."""
        return self.state()

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``dump_state`` returned (a resumed session, in any process)."""
        for key, value in state.items():
            setattr(self, key, value)

    def state_json(self) -> str:
        """The view's state as indented JSON (for debugging panels and the demo)."""
        return json.dumps(self.state(), indent=2, sort_keys=True, default=repr)

    @classmethod
    def handler_names(cls) -> list[str]:
        return sorted(cls._handlers)

    def find_handler(self, name: object) -> types.MethodType:
        """The bound handler called ``name``, or HandlerError if there is none."""
        attribute = type(self)._handlers.get(name) if isinstance(name, str) else None
        if attribute is None:
            raise HandlerError(
                "unknown_handler",
                "%s has no event handler %r" % (type(self).__name__, name),
            )
        return getattr(self, attribute)

    async def handle_event(self, name: object, params: dict[str, Any]) -> None:
        """Call handler ``name`` with ``params``; HandlerError for anything a client got wrong:
        a param it does not take, a missing one, or a value its annotation refuses. Annotated
        params arrive converted (see ``djreconnect_server.params``); the view is untouched
        when they do not fit."""
        handler = self.find_handler(name)
        try:
            kwargs = handler_params(handler.__func__).convert(params)
        except BadParams as error:
            raise HandlerError("bad_params", "%s: %s" % (name, error))
        result = handler(**kwargs)
        if inspect.isawaitable(result):
            await result
