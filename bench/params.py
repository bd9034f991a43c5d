"""Handler params: the cost of converting them with pydantic, against the checker it replaced.

In process, no browser: ``LiveView.handle_event`` (find the handler, check and convert
its params, call it) timed per call, p50 over many calls, for handlers annotated with
JSON-shaped types that both checkers accept. The baseline is the previous checker
(an isinstance test per annotated param, ``str``/``int``/``float``/``bool``/``list``/
``dict`` only), copied below, run in the same process, interleaved with the new one in
alternating rounds so that drift and noise hit both alike.

Then the same comparison one level up, for what a keystroke costs the server: a frame
through ``LiveConnection.receive`` (decode, handler, re-render of the demo editor, diff,
encode), the editor's ``preview`` handler, old checker against new.

Rows without a baseline show what the new conversions cost where the old checker had
no equivalent: it refused "5" for an ``int`` and a form for a model param, and let a
``list[Literal[...]]`` through unchecked.
"""

import asyncio
import dataclasses
import inspect
import json
import sys
import tempfile
import time
import typing
from pathlib import Path
from typing import Literal, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))

import _support as S  # noqa: E402
from djreconnect import protocol  # noqa: E402
from djreconnect_server.demo import TEMPLATES  # noqa: E402
from djreconnect_server.demo.editor import EditorView  # noqa: E402
from djreconnect_server.live import LiveConnection  # noqa: E402
from djreconnect_server.settings import Settings  # noqa: E402
from djreconnect_server.signing import MountSigner  # noqa: E402
from djreconnect_server.templating import Templates  # noqa: E402
from djreconnect_server.views import HandlerError, LiveView, event_handler  # noqa: E402
from pydantic import BaseModel  # noqa: E402

ROUNDS = 30
CALLS_PER_ROUND = 400
FRAMES_PER_ROUND = 40
# The aim: the new p50 within 10% of the old one's, or under a microsecond more.
AIM_RATIO = 1.10

# --- the previous checker, verbatim in what it did -----------------------------------------

_KIND_NAMES = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}
_KINDS_CACHE = {}


def _is_kind(value, expected):
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _param_kinds(cls, attribute):
    key = (cls, attribute)
    kinds = _KINDS_CACHE.get(key)
    if kinds is None:
        function = getattr(cls, attribute)
        try:
            hints = typing.get_type_hints(function)
        except Exception:
            hints = {}
        kinds = {param: hint for param, hint in hints.items() if hint in _KIND_NAMES and param != "return"}
        _KINDS_CACHE[key] = kinds
    return kinds


async def baseline_handle_event(self, name, params):
    handler = self.find_handler(name)
    try:
        bound = inspect.signature(handler.__func__).bind(self, **params)
    except TypeError as error:
        raise HandlerError("bad_params", "%s: %s" % (name, error))
    kinds = _param_kinds(type(self), handler.__name__)
    for param, value in list(bound.arguments.items())[1:]:
        expected = kinds.get(param)
        if expected is not None and not _is_kind(value, expected):
            raise HandlerError(
                "bad_params",
                "%s: %s must be %s, not %s" % (name, param, _KIND_NAMES[expected], type(value).__name__),
            )
    result = handler(**params)
    if inspect.isawaitable(result):
        await result


# --- views ---------------------------------------------------------------------------------


class Todo(BaseModel):
    text: str
    done: bool = False
    priority: Optional[int] = None


@dataclasses.dataclass
class Point:
    x: float
    y: float


class BenchView(LiveView):
    template_name = None

    def mount(self, request, **kwargs):
        self.last = None

    @event_handler()
    def keystroke(self, value: str = "", **kwargs):
        self.last = value

    @event_handler()
    def checkbox(self, value: bool = False, **kwargs):
        self.last = value

    @event_handler()
    def mixed(self, title: str, count: int, ok: bool, tags: list):
        self.last = (title, count, ok, tags)

    @event_handler()
    def plain(self, value="", **kwargs):
        self.last = value

    @event_handler()
    def by_string(self, by: int = 1, **kwargs):
        self.last = by

    @event_handler()
    def choose(self, value: list[Literal["python", "web", "networking", "ux"]] = ()):
        self.last = value

    @event_handler()
    def add_todo(self, todo: Todo):
        self.last = todo

    @event_handler()
    def move(self, point: Point):
        self.last = point


class BaselineView(BenchView):
    handle_event = baseline_handle_event


class BaselineEditorView(EditorView):
    view_name = "baseline-editor"
    handle_event = baseline_handle_event


COMPARED = (
    ("keystroke: `value: str`", "keystroke", {"value": "hello world"}),
    ("checkbox: `value: bool`", "checkbox", {"value": True}),
    ("4 params: str, int, bool, list", "mixed", {"title": "t", "count": 3, "ok": False, "tags": ["a", "b"]}),
    ("unannotated `value`, `**kwargs`", "plain", {"value": "x", "extra": "y"}),
)
NEW_ONLY = (
    ('`by: int` from "5" (a dj-value)', "by_string", {"by": "5"}),
    ("`list[Literal[...]]`, 2 values", "choose", {"value": ["web", "ux"]}),
    ("pydantic model from a 3-field form", "add_todo", {"text": "milk", "done": "on", "priority": "2"}),
    ("dataclass from a 2-field form", "move", {"x": "1.5", "y": "2"}),
)


async def time_calls(view, name, params, count):
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        started = clock()
        await view.handle_event(name, params)
        samples.append(clock() - started)
    return samples


async def time_frames(live, frames):
    samples = []
    clock = time.perf_counter_ns
    for frame in frames:
        started = clock()
        replies = await live.receive(frame)
        samples.append(clock() - started)
        answer = protocol.decode_server(replies[-1])
        assert isinstance(answer, protocol.Reply), answer
    return samples


async def measure_handlers():
    views = {"old": BaselineView(), "new": BenchView()}
    for view in views.values():
        view.mount(None)
    results = {}
    for label, name, params in COMPARED:
        samples = {"old": [], "new": []}
        for _ in range(3):  # warm-up: caches built, code paths hot
            for kind, view in views.items():
                await time_calls(view, name, params, 50)
        for round_number in range(ROUNDS):
            order = ("old", "new") if round_number % 2 == 0 else ("new", "old")
            for kind in order:
                samples[kind] += await time_calls(views[kind], name, params, CALLS_PER_ROUND)
        results[label] = samples
    new_only = {}
    view = views["new"]
    for label, name, params in NEW_ONLY:
        await time_calls(view, name, params, 200)
        new_only[label] = await time_calls(view, name, params, ROUNDS * CALLS_PER_ROUND)
    return results, new_only


async def measure_round_trip(workdir):
    wheels = Path(workdir) / "wheels"
    wheels.mkdir()
    (wheels / "djreconnect-0.0.0-py3-none-any.whl").write_bytes(b"")
    settings = Settings("bench-secret-key-of-some-length", wheels_dir=wheels, max_frames_per_second=10**9)
    settings.max_frame_burst = 10**9
    templates = Templates(settings, [TEMPLATES])
    registry = {cls.view_name: (cls, True) for cls in (EditorView, BaselineEditorView)}
    connections = {}
    for kind, name in (("old", BaselineEditorView.view_name), ("new", EditorView.view_name)):
        live = LiveConnection(registry, templates, MountSigner(settings.secret_key), settings, request=None)
        join = {"t": "join", "ref": 1, "view": "v", "name": name, "html": ""}
        [rendered] = await live.receive(json.dumps(join))
        assert isinstance(protocol.decode_server(rendered), protocol.Rendered), rendered
        connections[kind] = live
    refs = {"old": 1, "new": 1}
    texts = {"old": "", "new": ""}

    def frames(kind, count):
        out = []
        for _ in range(count):
            refs[kind] += 1
            texts[kind] = (texts[kind] + "abcdefghij"[refs[kind] % 10])[-400:]
            event = {
                "t": "event",
                "ref": refs[kind],
                "view": "v",
                "handler": "preview",
                "params": {"value": texts[kind]},
            }
            out.append(json.dumps(event))
        return out

    samples = {"old": [], "new": []}
    for kind in ("old", "new"):
        await time_frames(connections[kind], frames(kind, 100))
    for round_number in range(ROUNDS):
        order = ("old", "new") if round_number % 2 == 0 else ("new", "old")
        for kind in order:
            samples[kind] += await time_frames(connections[kind], frames(kind, FRAMES_PER_ROUND))
    return samples


def micro(ns):
    return ns / 1000.0


def main():
    started = time.monotonic()
    handler_results, new_only = asyncio.run(measure_handlers())
    with tempfile.TemporaryDirectory() as workdir:
        trip = asyncio.run(measure_round_trip(workdir))

    rows = []
    worst = 0.0
    for label, samples in handler_results.items():
        old, new = S.percentile(samples["old"], 0.5), S.percentile(samples["new"], 0.5)
        ratio = new / old
        ok = ratio <= AIM_RATIO or new - old < 1000
        worst = max(worst, ratio)
        rows.append(
            [
                label,
                "%s µs" % S.fmt(micro(old), 2),
                "**%s µs**" % S.fmt(micro(new), 2),
                "%.2f" % ratio,
                "%s µs" % S.fmt(micro(S.percentile(samples["new"], 0.95)), 2),
                S.verdict(ok),
            ]
        )
    old, new = S.percentile(trip["old"], 0.5), S.percentile(trip["new"], 0.5)
    rows.append(
        [
            "keystroke frame through `LiveConnection.receive` (demo editor: handler, render, diff)",
            "%s µs" % S.fmt(micro(old), 1),
            "**%s µs**" % S.fmt(micro(new), 1),
            "%.2f" % (new / old),
            "%s µs" % S.fmt(micro(S.percentile(trip["new"], 0.95)), 1),
            S.verdict(new / old <= AIM_RATIO),
        ]
    )
    for label, samples in new_only.items():
        rows.append(
            [
                label,
                "-",
                "**%s µs**" % S.fmt(micro(S.percentile(samples, 0.5)), 2),
                "-",
                "%s µs" % S.fmt(micro(S.percentile(samples, 0.95)), 2),
                "-",
            ]
        )
    body = S.table(
        ["handle_event of", "p50 old checker", "p50 pydantic", "ratio", "p95 pydantic", "aim: ≤ 1.10× or < 1 µs more"],
        rows,
    )
    body += (
        "\n\n%d rounds of %d calls per checker and case (%d frames for the round trip), alternating which goes "
        "first; p50 and p95 of every call's time (perf_counter_ns around one awaited handle_event or "
        "receive). %s. Total %.0f s."
        % (ROUNDS, CALLS_PER_ROUND, FRAMES_PER_ROUND, S.machine(), time.monotonic() - started)
    )
    S.report("params", "Handler params: pydantic conversion against the previous checker", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
