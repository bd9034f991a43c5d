"""views.py: which methods a client may call, how their params are checked, and view names."""

import asyncio

import pytest
from djreconnect_server.demo.editor import EditorView
from djreconnect_server.views import HandlerError, LiveView, event_handler

from .asyncrun import run


class CounterView(LiveView):
    template_name = "counter.html"

    def mount(self, request, **kwargs):
        self.count = 0
        self.log = []

    @event_handler()
    def increment(self, by=1):
        self.count += by

    @event_handler("reset")
    def reset_to_zero(self):
        self.count = 0

    @event_handler
    def bare(self):
        self.log.append("bare")

    @event_handler()
    async def slow_add(self, by):
        await asyncio.sleep(0)
        self.count += by

    @event_handler()
    def _private(self):
        self.log.append("private")

    @event_handler("public_alias")
    def _hidden(self):
        self.log.append("hidden")

    def helper(self):
        self.log.append("helper")

    not_a_method = 42


def mounted(cls=CounterView):
    view = cls()
    view.mount(None)
    return view


def test_event_handler_marks_methods_by_public_name():
    assert CounterView.handler_names() == ["bare", "increment", "reset", "slow_add"]


def test_find_handler_returns_the_bound_method():
    view = mounted()
    handler = view.find_handler("increment")
    handler(by=2)
    assert view.count == 2


def test_renamed_handler_is_found_by_its_public_name_only():
    view = mounted()
    view.count = 5
    view.find_handler("reset")()
    assert view.count == 0
    with pytest.raises(HandlerError) as info:
        view.find_handler("reset_to_zero")
    assert info.value.code == "unknown_handler"


@pytest.mark.parametrize(
    "name",
    [
        "nope",
        "mount",
        "render",
        "get_context",
        "state",
        "state_json",
        "find_handler",
        "handle_event",
        "helper",
        "not_a_method",
        "count",
        "__init__",
        "__class__",
        "__dict__",
        "_private",
        "_hidden",
        "",
        None,
        42,
    ],
)
def test_find_handler_refuses_everything_else(name):
    view = mounted()
    with pytest.raises(HandlerError) as info:
        view.find_handler(name)
    assert info.value.code == "unknown_handler"
    assert view.log == []


def test_private_handler_names_are_refused_at_definition():
    def method(self):
        pass

    with pytest.raises(ValueError):
        event_handler("_secret")(method)
    with pytest.raises(ValueError):
        event_handler(123)(method)


def test_handle_event_calls_the_handler_with_params():
    view = mounted()
    run(view.handle_event("increment", {"by": 3}))
    run(view.handle_event("increment", {}))
    assert view.count == 4


def test_bare_decorator_works():
    view = mounted()
    run(view.handle_event("bare", {}))
    assert view.log == ["bare"]


def test_async_handlers_are_awaited():
    view = mounted()
    run(view.handle_event("slow_add", {"by": 7}))
    assert view.count == 7


@pytest.mark.parametrize(
    "name, params",
    [
        ("increment", {"amount": 1}),
        ("increment", {"by": 1, "extra": 2}),
        ("reset", {"x": 1}),
        ("slow_add", {}),
    ],
)
def test_wrong_params_are_bad_params_and_change_nothing(name, params):
    view = mounted()
    view.count = 10
    before = view.state()
    with pytest.raises(HandlerError) as info:
        run(view.handle_event(name, params))
    assert info.value.code == "bad_params"
    assert view.state() == before


def test_unknown_handler_through_handle_event():
    view = mounted()
    with pytest.raises(HandlerError) as info:
        run(view.handle_event("mount", {}))
    assert info.value.code == "unknown_handler"


def test_a_type_error_inside_a_handler_is_not_bad_params():
    class Broken(LiveView):
        @event_handler()
        def go(self):
            raise TypeError("a bug in the handler")

    with pytest.raises(TypeError, match="a bug in the handler"):
        run(Broken().handle_event("go", {}))


def test_handlers_are_inherited_and_not_shared_between_siblings():
    class Base(LiveView):
        @event_handler()
        def common(self):
            pass

    class Left(Base):
        @event_handler()
        def left(self):
            pass

    class Right(Base):
        pass

    assert Left.handler_names() == ["common", "left"]
    assert Right.handler_names() == ["common"]
    with pytest.raises(HandlerError):
        Right().find_handler("left")


def test_view_name_defaults():
    assert EditorView.view_name == "editor"
    assert CounterView.view_name == "counter"

    class Dashboard(LiveView):
        pass

    class View(LiveView):
        pass

    class Named(LiveView):
        view_name = "custom"

    class SubNamedView(Named):
        pass

    assert Dashboard.view_name == "dashboard"
    assert View.view_name == "view"
    assert Named.view_name == "custom"
    assert SubNamedView.view_name == "subnamed"


def test_state_and_context():
    view = mounted()
    view._internal = "hidden"
    assert view.state() == {"count": 0, "log": []}
    context = view.get_context()
    assert context["view"] is view and context["count"] == 0
    assert '"count": 0' in view.state_json()


def test_editor_handlers_validate_choices():
    view = mounted(EditorView)
    run(view.handle_event("set_category", {"value": "guide"}))
    assert view.category == "guide"
    with pytest.raises(HandlerError) as info:
        run(view.handle_event("set_category", {"value": "gossip"}))
    assert info.value.code == "bad_params"
    assert view.category == "guide"
    with pytest.raises(HandlerError):
        run(view.handle_event("set_tags", {"value": ["python", "cobol"]}))
    assert view.tags == []
