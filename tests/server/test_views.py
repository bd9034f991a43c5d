"""views.py and params.py: which methods a client may call, how their params are checked and
converted from their annotations, and view names."""

import asyncio
import dataclasses
import enum
from typing import Literal, Optional

import pytest
from djreconnect_server.demo.editor import EditorView
from djreconnect_server.params import handler_params
from djreconnect_server.views import HandlerError, LiveView, event_handler
from pydantic import BaseModel

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


# --- params converted and validated from annotations ---------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class TodoModel(BaseModel):
    text: str
    done: bool = False
    tags: list[int] = []


@dataclasses.dataclass
class TodoData:
    text: str
    priority: Optional[int] = None


class TypedView(LiveView):
    """One handler per kind of annotation; each records what it was called with."""

    def mount(self, request, **kwargs):
        self.calls = []

    @event_handler()
    def whole(self, value: int):
        self.calls.append(value)

    @event_handler()
    def number(self, value: float):
        self.calls.append(value)

    @event_handler()
    def flag(self, value: bool):
        self.calls.append(value)

    @event_handler()
    def text(self, value: str):
        self.calls.append(value)

    @event_handler()
    def maybe(self, value: Optional[int] = None):
        self.calls.append(value)

    @event_handler()
    def choice(self, value: Literal["a", "b"]):
        self.calls.append(value)

    @event_handler()
    def color(self, value: Color):
        self.calls.append(value)

    @event_handler()
    def numbers(self, value: list[int]):
        self.calls.append(value)

    @event_handler()
    def loose(self, value, **kwargs):
        self.calls.append((value, kwargs))

    @event_handler()
    def counts(self, **counts: int):
        self.calls.append(counts)

    @event_handler()
    def add_todo(self, todo: TodoModel, list_id: int = 0):
        self.calls.append((todo, list_id))

    @event_handler()
    def add_data(self, item: TodoData):
        self.calls.append(item)

    @event_handler()
    async def later(self, value: int):
        await asyncio.sleep(0)
        self.calls.append(value)


@pytest.mark.parametrize(
    "handler, params, expected",
    [
        ("whole", {"value": "5"}, 5),  # dj-value-* values are strings
        ("whole", {"value": " 7 "}, 7),
        ("whole", {"value": 5}, 5),
        ("whole", {"value": 5.0}, 5),
        ("whole", {"value": "-3"}, -3),
        ("number", {"value": "2.5"}, 2.5),
        ("number", {"value": 2}, 2.0),
        ("flag", {"value": "true"}, True),
        ("flag", {"value": "false"}, False),
        ("flag", {"value": "on"}, True),  # a checked checkbox in a submitted form
        ("flag", {"value": "off"}, False),
        ("flag", {"value": True}, True),  # a checkbox's dj-change
        ("flag", {"value": "0"}, False),
        ("text", {"value": "hello"}, "hello"),
        ("text", {"value": ""}, ""),
        ("maybe", {"value": ""}, None),  # a number field left empty
        ("maybe", {"value": None}, None),
        ("maybe", {"value": "4"}, 4),
        ("maybe", {}, None),
        ("choice", {"value": "b"}, "b"),
        ("color", {"value": "green"}, Color.GREEN),
        ("numbers", {"value": ["1", "2"]}, [1, 2]),
        ("numbers", {"value": "3"}, [3]),  # a form sends a list only when a name repeats
        ("numbers", {"value": []}, []),
        ("loose", {"value": "5", "extra": "x"}, ("5", {"extra": "x"})),  # unannotated: as sent
        ("loose", {"value": {"any": ["thing"]}}, ({"any": ["thing"]}, {})),
        ("counts", {"a": "1", "b": 2}, {"a": 1, "b": 2}),
        ("later", {"value": "8"}, 8),
    ],
)
def test_params_are_converted_from_annotations(handler, params, expected):
    view = mounted(TypedView)
    run(view.handle_event(handler, params))
    assert view.calls == [expected]
    assert type(view.calls[0]) is type(expected)


@pytest.mark.parametrize(
    "handler, params, said",
    [
        ("whole", {"value": "x"}, "value should be a valid integer, unable to parse string as an integer (got 'x')"),
        ("whole", {"value": "5.5"}, "value should be a valid integer"),
        ("whole", {"value": ""}, "value should be a valid integer"),
        ("whole", {"value": None}, "value should be a valid integer (got None)"),
        ("whole", {"value": [1]}, "value should be a valid integer"),
        ("whole", {"value": "1" * 5000}, "value: Unable to parse input string as an integer, exceeded maximum size"),
        ("whole", {}, "missing a required argument: 'value'"),
        ("whole", {"value": 1, "other": 2}, "got an unexpected keyword argument 'other'"),
        ("whole", {"self": 1, "value": 1}, "multiple values for argument 'self'"),
        ("number", {"value": "inf"}, "value should be a finite number (got 'inf')"),
        ("number", {"value": "nan"}, "value should be a finite number"),
        ("number", {"value": "two"}, "value should be a valid number"),
        ("flag", {"value": "maybe"}, "value should be a valid boolean"),
        ("flag", {"value": 2}, "value should be a valid boolean"),
        ("text", {"value": 5}, "value should be a valid string (got 5)"),
        ("text", {"value": None}, "value should be a valid string"),
        ("text", {"value": ["a"]}, "value should be a valid string"),
        ("maybe", {"value": "x"}, "value should be a valid integer"),
        ("choice", {"value": "c"}, "value should be 'a' or 'b' (got 'c')"),
        ("color", {"value": "blue"}, "value should be 'red' or 'green' (got 'blue')"),
        ("numbers", {"value": ["1", "y"]}, "value[1] should be a valid integer"),
        ("numbers", {"value": {"a": 1}}, "value should be a valid list"),
        ("counts", {"a": "x"}, "a should be a valid integer"),
        ("add_todo", {"done": "on"}, "text is missing"),
        ("add_todo", {"text": "milk", "tags": ["1", "z"]}, "tags[1] should be a valid integer"),
        ("add_todo", {"text": "milk", "list_id": "first"}, "list_id should be a valid integer"),
        ("add_todo", {"todo": "milk"}, "todo should be a valid dictionary or instance of TodoModel"),
        ("add_data", {"priority": "high"}, "priority should be a valid integer"),
    ],
)
def test_params_that_do_not_convert_are_bad_params_naming_the_param(handler, params, said):
    view = mounted(TypedView)
    before = view.state()
    with pytest.raises(HandlerError) as info:
        run(view.handle_event(handler, params))
    assert info.value.code == "bad_params"
    assert info.value.message.startswith(handler + ": ")
    assert said in info.value.message
    assert view.calls == [] and view.state() == before  # the handler never ran


def test_a_refusal_reports_a_few_errors_and_how_many_more():
    view = mounted(TypedView)
    with pytest.raises(HandlerError) as info:
        run(view.handle_event("numbers", {"value": ["a", "b", "c", "d", "e"]}))
    message = info.value.message
    assert "value[0] should" in message and "value[2] should" in message and "value[3]" not in message
    assert message.endswith("and 2 more")


def test_a_long_input_is_shortened_in_the_message():
    view = mounted(TypedView)
    with pytest.raises(HandlerError) as info:
        run(view.handle_event("whole", {"value": "x" * 10_000}))
    assert len(info.value.message) < 200 and "..." in info.value.message


def test_a_model_param_is_filled_from_the_submitted_form():
    view = mounted(TypedView)
    form = {"text": "milk", "done": "on", "tags": "3", "list_id": "7", "submit": "Add"}
    run(view.handle_event("add_todo", form))
    assert view.calls == [(TodoModel(text="milk", done=True, tags=[3]), 7)]
    # An unchecked checkbox is not sent: the field's default.
    run(view.handle_event("add_todo", {"text": "bread"}))
    assert view.calls[-1] == (TodoModel(text="bread"), 0)
    # A param named after the model param fills it by name.
    run(view.handle_event("add_todo", {"todo": {"text": "eggs", "tags": ["1", "2"]}}))
    assert view.calls[-1] == (TodoModel(text="eggs", tags=[1, 2]), 0)


def test_a_dataclass_param_is_filled_from_the_submitted_form():
    view = mounted(TypedView)
    run(view.handle_event("add_data", {"text": "milk", "priority": ""}))
    run(view.handle_event("add_data", {"text": "tea", "priority": "2"}))
    assert view.calls == [TodoData("milk", None), TodoData("tea", 2)]


def test_validators_are_built_once_per_handler():
    built = handler_params(TypedView.whole)
    assert handler_params(TypedView.whole) is built
    view = mounted(TypedView)
    run(view.handle_event("whole", {"value": "1"}))
    run(view.handle_event("whole", {"value": "2"}))
    assert handler_params(TypedView.whole) is built

    class Sub(TypedView):
        pass

    assert handler_params(Sub.whole) is built  # an inherited handler shares its validator


def test_an_annotation_that_does_not_resolve_is_a_server_error_not_bad_params():
    class Broken(LiveView):
        @event_handler()
        def go(self, value: "NoSuchType"):  # noqa: F821
            pass

    with pytest.raises(TypeError, match="NoSuchType"):
        run(Broken().handle_event("go", {"value": 1}))


def test_a_class_pydantic_cannot_build_from_json_is_refused_as_bad_params():
    class Thing:
        pass

    class Odd(LiveView):
        @event_handler()
        def go(self, value: Thing):
            self.got = value

    view = Odd()
    with pytest.raises(HandlerError) as info:
        run(view.handle_event("go", {"value": {"a": 1}}))
    assert info.value.code == "bad_params"
    assert "value should be an instance of" in info.value.message and "Thing" in info.value.message
    assert not hasattr(view, "got")
