"""Event handler params: checked against the handler's signature, then converted and
validated from its annotations with pydantic, the way FastAPI treats query and form values.

A page sends strings for most things (``dj-value-*`` attributes, text fields, submitted
forms), so conversion is pydantic's lax mode: ``"5"`` fills an ``int``, ``"on"`` or
``"false"`` a ``bool``. Two rules make forms work as they are submitted:

- a param annotated as a list (``list[int]``, ``set[str]``, ...) given one value gets a
  list of that value: a form sends a list only when a name is repeated;
- an empty string given to a param that admits ``None`` and refuses ``""``
  (``Optional[int]``) becomes ``None``: a number field left empty means "no value".

A handler with exactly one param annotated with a pydantic model or a dataclass gets that
param filled from the event's params (a submitted form's fields), less those that name
its other params, unless the event has a param of that name itself.

Unannotated params and ``**kwargs`` pass through unchanged. What is built per handler
(the signature, one pydantic validator for all its annotated params) is built once, on
the handler's first event, and kept while the handler's function lives.
"""

import collections.abc
import dataclasses
import inspect
import types
import typing
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

if TYPE_CHECKING:
    from _typeshed import DataclassInstance
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

# How much of a refusal is reported to the client.
MAX_REPORTED_ERRORS = 3
MAX_REPORTED_INPUT = 60

# Floats must be finite: NaN and infinities in a view's state break its JSON and its sums.
# Arbitrary classes are allowed as annotations; a value from the wire is never one of
# them, so such a param is refused with a clear message rather than breaking the handler.
_CONFIG = ConfigDict(allow_inf_nan=False, arbitrary_types_allowed=True)

_NAMED_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_LIST_TYPES = (
    list,
    set,
    frozenset,
    tuple,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
    collections.abc.MutableSet,
    collections.abc.Collection,
    collections.abc.Iterable,
)
_UNIONS = (typing.Union, types.UnionType)
# A type annotation: a class, or a typing form (``list[int]``, ``Optional[str]``, ...).
Annotation = Any
# A validator of a dict of params (a TypedDict made at run time).
Validator = TypeAdapter[Any]


class BadParams(Exception):
    """Params that do not fit a handler; the message names the param and what it expected."""


def _validator(fields: dict[str, Annotation]) -> Validator:
    """One pydantic validator for a dict of optional keys (name -> annotation)."""
    params = TypedDict("Params", fields, total=False)  # type: ignore[misc]  # fields known at run time only
    params.__pydantic_config__ = _CONFIG  # type: ignore[attr-defined]  # pydantic reads it off the class
    return TypeAdapter(params)


def _bare(annotation: Annotation) -> Annotation:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _wants_list(annotation: Annotation) -> bool:
    """Whether every non-None form of ``annotation`` is a collection of values."""
    annotation = _bare(annotation)
    origin = typing.get_origin(annotation)
    if origin in _UNIONS:
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        return bool(members) and all(_wants_list(member) for member in members)
    kind = origin or annotation
    return kind in _LIST_TYPES or (isinstance(kind, type) and issubclass(kind, (list, set, frozenset, tuple)))


def _accepts(validator: Validator, value: object) -> bool:
    try:
        validator.validate_python({"v": value})
    except ValidationError:
        return False
    return True


class _Field:
    """How a raw value is prepared for one annotation before validation."""

    def __init__(self, annotation: Annotation) -> None:
        self.wants_list = _wants_list(annotation)
        probe = _validator({"v": annotation})
        self.empty_is_none = _accepts(probe, None) and not _accepts(probe, "")

    def prepare(self, value: Any) -> Any:
        if self.empty_is_none and value == "":
            return None
        if self.wants_list and isinstance(value, (str, int, float, bool)):
            return [value]
        return value


def _is_form_type(annotation: Annotation) -> bool:
    return isinstance(annotation, type) and (issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation))


def _form_fields(form_type: "type[BaseModel] | type[DataclassInstance]") -> dict[str, _Field]:
    """The fields of a model or dataclass by the name a form sends them under."""
    if issubclass(form_type, BaseModel):
        return {
            (info.alias or name): _Field(info.annotation if info.annotation is not None else typing.Any)
            for name, info in form_type.model_fields.items()
        }
    hints = typing.get_type_hints(form_type, include_extras=True)
    return {field.name: _Field(hints.get(field.name, typing.Any)) for field in dataclasses.fields(form_type)}


def _place(loc: list[int | str]) -> str:
    """An error location as a name: ``value[1]``, ``todo.text``."""
    if not loc:
        return "params"
    words = [str(loc[0])]
    for step in loc[1:]:
        words.append("[%d]" % step if isinstance(step, int) else ".%s" % step)
    return "".join(words)


def _shown(value: object) -> str:
    text = repr(value)
    if len(text) > MAX_REPORTED_INPUT:
        text = text[: MAX_REPORTED_INPUT - 3] + "..."
    return text


def _describe(error: ErrorDetails, form: str | None) -> str:
    """One pydantic error as a sentence naming the param: ``by should be a valid integer``."""
    loc = list(error.get("loc", ()))
    if form is not None and len(loc) > 1 and loc[0] == form:
        loc = loc[1:]  # the form's own field names, as the page knows them
    place = _place(loc)
    kind = error.get("type")
    message = error.get("msg", "is not valid")
    if kind == "missing":
        return "%s is missing" % place
    if message.startswith("Input should"):
        message = "%s should%s" % (place, message[len("Input should") :])
    else:
        message = "%s: %s" % (place, message)
    return "%s (got %s)" % (message, _shown(error.get("input")))


def _refusal(error: ValidationError, form: str | None) -> str:
    errors = error.errors(include_url=False)
    described = [_describe(one, form) for one in errors[:MAX_REPORTED_ERRORS]]
    if len(errors) > MAX_REPORTED_ERRORS:
        described.append("and %d more" % (len(errors) - MAX_REPORTED_ERRORS))
    return "; ".join(described)


class HandlerParams:
    """What one handler takes, and how to turn an event's params into its arguments."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.signature = inspect.signature(function)
        try:
            hints = typing.get_type_hints(function, include_extras=True)
        except Exception as error:
            raise TypeError("the annotations of %s cannot be resolved: %s" % (function.__qualname__, error)) from error
        params = list(self.signature.parameters.values())[1:]  # after self
        self.names = frozenset(param.name for param in params if param.kind in _NAMED_KINDS)
        annotated = {
            param.name: hints[param.name] for param in params if param.kind in _NAMED_KINDS and param.name in hints
        }
        forms = [name for name, annotation in annotated.items() if _is_form_type(annotation)]
        self.form = forms[0] if len(forms) == 1 else None
        self.form_fields = _form_fields(annotated[self.form]) if self.form is not None else {}
        self.fields = {name: _Field(annotation) for name, annotation in annotated.items()}
        self.validator = _validator(annotated) if annotated else None
        self.extra: tuple[_Field, Validator] | None = None  # (field, validator) for an annotated **kwargs
        for param in params:
            if param.kind == inspect.Parameter.VAR_KEYWORD and param.name in hints:
                annotation = hints[param.name]
                # The value type is known at run time only.
                validator = TypeAdapter(dict[str, annotation], config=_CONFIG)  # type: ignore[valid-type]
                self.extra = (_Field(annotation), validator)

    def convert(self, params: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the handler, converted; BadParams when they do not fit."""
        form_values: dict[str, Any] | None = None
        if self.form is not None and self.form not in params:
            arguments: dict[str, Any] = {}
            form_values = {}
            for name, value in params.items():
                if name in self.names:
                    arguments[name] = value
                else:
                    form_values[name] = value
            arguments[self.form] = form_values
        else:
            arguments = dict(params)
        try:
            # Bound with a stand-in for self, so a param named "self" is refused.
            self.signature.bind(None, **arguments)
        except TypeError as error:
            raise BadParams(str(error)) from None
        if self.validator is not None:
            values: dict[str, Any] = {}
            for name, field in self.fields.items():
                if name in arguments:
                    values[name] = field.prepare(arguments[name])
            if form_values is not None and self.form is not None:
                fields = self.form_fields
                values[self.form] = {
                    name: fields[name].prepare(value) if name in fields else value
                    for name, value in form_values.items()
                }
            try:
                arguments.update(self.validator.validate_python(values))
            except ValidationError as error:
                raise BadParams(_refusal(error, self.form if form_values is not None else None)) from None
        if self.extra is not None:
            field, validator = self.extra
            extra = {name: field.prepare(value) for name, value in arguments.items() if name not in self.names}
            if extra:
                try:
                    arguments.update(validator.validate_python(extra))
                except ValidationError as error:
                    raise BadParams(_refusal(error, None)) from None
        return arguments


_BUILT: weakref.WeakKeyDictionary[Callable[..., Any], HandlerParams] = (
    weakref.WeakKeyDictionary()
)  # handler function -> HandlerParams: one per handler defined


def handler_params(function: Callable[..., Any]) -> HandlerParams:
    """The (cached) HandlerParams of a handler's function."""
    built = _BUILT.get(function)
    if built is None:
        built = _BUILT[function] = HandlerParams(function)
    return built
