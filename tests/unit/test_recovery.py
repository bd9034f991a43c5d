"""Recovery decisions: form recovery, auto-recover containers, the remount flag.

Snapshots are built with small helpers that produce the records ``dom.recovery_snapshot``
would (see the ``djreconnect.recovery`` docstring for the format).
"""

import pytest
from djreconnect import recovery
from djreconnect.recovery import (
    attribute_param_name,
    auto_recovery,
    event_params,
    field_value,
    form_recovery,
    recovery_events,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# --- record builders ------------------------------------------------------------


def _field(
    tag, kind, name="", input=None, change=None, params=None, disabled=False, no_recover=False, container=None, **facts
):
    record = {
        "tag": tag,
        "type": kind,
        "name": name,
        "input": input,
        "change": change,
        "params": dict(params or {}),
        "disabled": disabled,
        "no_recover": no_recover,
        "container": container,
    }
    record.update(facts)
    return record


def text(name="", value="", default="", kind="text", **kw):
    tag = "TEXTAREA" if kind == "textarea" else "INPUT"
    return _field(tag, kind, name, value=value, default=default, **kw)


def textarea(name="", value="", default="", **kw):
    return text(name, value, default, kind="textarea", **kw)


def hidden(name="", value="", default="", **kw):
    return text(name, value, default, kind="hidden", **kw)


def checkbox(name="", checked=False, default_checked=False, value="on", **kw):
    return _field("INPUT", "checkbox", name, value=value, checked=checked, default_checked=default_checked, **kw)


def radio(name, value, checked=False, default_checked=False, **kw):
    return _field("INPUT", "radio", name, value=value, checked=checked, default_checked=default_checked, **kw)


def select(name="", value="", default="", **kw):
    return _field("SELECT", "select-one", name, value=value, default=default, **kw)


def multi(name="", value=(), default=(), **kw):
    return _field("SELECT", "select-multiple", name, value=list(value), default=list(default), **kw)


def file_input(name="", **kw):
    return _field("INPUT", "file", name, value="C:\\fakepath\\a.txt", default="", **kw)


def button(name="", value="", kind="submit", tag="BUTTON", **kw):
    return _field(tag, kind, name, value=value, default=value, **kw)


def box(handler, index, params=None, container=None, tag="DIV"):
    """An [dj-auto-recover] container record."""
    return {
        "tag": tag,
        "name": "",
        "input": None,
        "change": None,
        "params": dict(params or {}),
        "disabled": False,
        "no_recover": False,
        "container": container,
        "auto": handler,
        "index": index,
    }


# --- form recovery: each field kind ----------------------------------------------

TEXT_KINDS = ["text", "textarea", "number", "email", "hidden", "search", "password"]


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_text_like_field_that_differs_sends_its_value(kind):
    record = text("q", "typed", "rendered", kind=kind, change="search")
    assert form_recovery([record]) == [("search", {"value": "typed"})]


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_text_like_field_equal_to_its_default_sends_nothing(kind):
    assert form_recovery([text("q", "same", "same", kind=kind, change="search")]) == []


def test_cleared_text_field_sends_the_empty_string():
    assert form_recovery([text("q", "", "rendered", input="live")]) == [("live", {"value": ""})]


@pytest.mark.parametrize(
    "checked, default_checked, expected",
    [
        (True, False, [("toggle", {"value": True})]),
        (False, True, [("toggle", {"value": False})]),
        (True, True, []),
        (False, False, []),
    ],
)
def test_checkbox_compares_checked_with_the_checked_attribute(checked, default_checked, expected):
    record = checkbox("agree", checked, default_checked, change="toggle")
    assert form_recovery([record]) == expected


def test_checkbox_value_attribute_does_not_matter_only_checked_state():
    # A checkbox's value never changes by typing; it is the checked state that is compared
    # and sent, as a bool.
    record = checkbox("agree", True, True, value="yes", change="toggle")
    record["default"] = "no"
    assert form_recovery([record]) == []
    record["checked"] = False
    assert form_recovery([record]) == [("toggle", {"value": False})]


def test_select_one_differs():
    record = select("size", "L", "M", change="pick")
    assert form_recovery([record]) == [("pick", {"value": "L"})]


def test_select_one_equal_to_default_sends_nothing():
    assert form_recovery([select("size", "M", "M", change="pick")]) == []


def test_select_multiple_differs_sends_a_list():
    record = multi("tags", ["a", "c"], ["a"], change="tags")
    assert form_recovery([record]) == [("tags", {"value": ["a", "c"]})]


def test_select_multiple_comparison_ignores_order():
    assert form_recovery([multi("tags", ["c", "a"], ["a", "c"], change="tags")]) == []


def test_select_multiple_all_deselected_sends_an_empty_list():
    record = multi("tags", [], ["a"], change="tags")
    assert form_recovery([record]) == [("tags", {"value": []})]


def test_select_multiple_with_one_value_still_sends_a_list():
    record = multi("tags", ["b"], [], change="tags")
    assert form_recovery([record]) == [("tags", {"value": ["b"]})]


# --- form recovery: handlers and params ------------------------------------------


def test_field_with_dj_input_only_sends_input_handler():
    assert form_recovery([text("q", "x", "", input="typing")]) == [("typing", {"value": "x"})]


def test_field_with_both_handlers_sends_input_then_change_with_the_same_params():
    record = text("q", "x", "", input="typing", change="changed", params={"row": "3"})
    assert form_recovery([record]) == [
        ("typing", {"row": "3", "value": "x"}),
        ("changed", {"row": "3", "value": "x"}),
    ]


def test_dj_value_params_are_sent_alongside_value():
    record = text("title", "new", "old", change="rename", params={"doc_id": "42", "field": "t"})
    assert form_recovery([record]) == [("rename", {"doc_id": "42", "field": "t", "value": "new"})]


def test_recovery_does_not_mutate_the_records_params():
    record = text("title", "new", "old", input="a", change="b", params={"doc_id": "42"})
    events = form_recovery([record])
    assert record["params"] == {"doc_id": "42"}
    # The two events do not share a params dict either.
    events[0][1]["extra"] = 1
    assert "extra" not in events[1][1]


def test_field_without_any_handler_is_not_recovered():
    assert form_recovery([text("q", "typed", "")]) == []


# --- form recovery: skip rules ----------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        text("q", "typed", "", change="h", no_recover=True),
        text("q", "typed", "", change="h", disabled=True),
        text("q", "typed", "", change="h", container=1),
        file_input("upload", change="h"),
        checkbox("c", True, False, change="h", no_recover=True),
        checkbox("c", True, False, change="h", disabled=True),
        checkbox("c", True, False, change="h", container=1),
        select("s", "b", "a", change="h", disabled=True),
        select("s", "b", "a", change="h", container=2),
        multi("m", ["b"], [], change="h", no_recover=True),
        radio("r", "b", checked=True, change="h", no_recover=True),
        radio("r", "b", checked=True, change="h", disabled=True),
        radio("r", "b", checked=True, change="h", container=1),
    ],
    ids=[
        "text-no-recover",
        "text-disabled",
        "text-in-container",
        "file",
        "checkbox-no-recover",
        "checkbox-disabled",
        "checkbox-in-container",
        "select-disabled",
        "select-in-container",
        "multi-no-recover",
        "radio-no-recover",
        "radio-disabled",
        "radio-in-container",
    ],
)
def test_skipped_fields_send_nothing_even_when_they_differ(record):
    assert form_recovery([record]) == []
    assert recovery_events([record], remount=False) == []


def test_skip_rules_only_drop_the_skipped_field():
    snapshot = [
        text("a", "1", "", change="ha"),
        text("b", "2", "", change="hb", no_recover=True),
        text("c", "3", "", change="hc", disabled=True),
        file_input("d", change="hd"),
        text("e", "5", "", change="he"),
    ]
    assert form_recovery(snapshot) == [("ha", {"value": "1"}), ("he", {"value": "5"})]


def test_file_input_with_dj_input_is_skipped():
    assert form_recovery([file_input("f", input="h")]) == []


def test_container_record_itself_is_not_a_field():
    assert form_recovery([box("restore", 1, params={"x": "1"})]) == []


# --- form recovery: radio groups ------------------------------------------------


def test_radio_group_sends_one_event_from_the_newly_checked_radio():
    snapshot = [
        radio("size", "s", default_checked=True, change="pick_s", params={"which": "s"}),
        radio("size", "m", checked=True, change="pick_m", params={"which": "m"}),
        radio("size", "l", change="pick_l", params={"which": "l"}),
    ]
    assert form_recovery(snapshot) == [("pick_m", {"which": "m", "value": "m"})]


def test_radio_group_unchanged_sends_nothing():
    snapshot = [
        radio("size", "s", checked=True, default_checked=True, change="pick"),
        radio("size", "m", change="pick"),
    ]
    assert form_recovery(snapshot) == []


def test_radio_group_with_no_default_sends_the_checked_radio():
    snapshot = [
        radio("size", "s", change="pick"),
        radio("size", "m", change="pick"),
        radio("size", "l", checked=True, change="pick"),
    ]
    assert form_recovery(snapshot) == [("pick", {"value": "l"})]


def test_radio_group_with_no_default_and_nothing_checked_sends_nothing():
    snapshot = [radio("size", "s", change="pick"), radio("size", "m", change="pick")]
    assert form_recovery(snapshot) == []


def test_two_radio_groups_are_recovered_separately():
    snapshot = [
        radio("size", "s", default_checked=True, change="size"),
        radio("size", "m", checked=True, change="size"),
        radio("color", "red", checked=True, default_checked=True, change="color"),
        radio("color", "blue", change="color"),
        radio("shape", "round", default_checked=True, change="shape"),
        radio("shape", "square", checked=True, change="shape"),
    ]
    assert form_recovery(snapshot) == [
        ("size", {"value": "m"}),
        ("shape", {"value": "square"}),
    ]


def test_radio_with_both_handlers_sends_input_then_change_once_per_group():
    snapshot = [
        radio("size", "s", default_checked=True, input="i", change="c"),
        radio("size", "m", checked=True, input="i", change="c"),
    ]
    assert form_recovery(snapshot) == [("i", {"value": "m"}), ("c", {"value": "m"})]


def test_radio_event_matches_the_live_event_of_the_checked_radio():
    checked = radio("size", "m", checked=True, change="pick", params={"row": "7"})
    snapshot = [radio("size", "s", default_checked=True, change="pick", params={"row": "1"}), checked]
    assert form_recovery(snapshot) == [("pick", event_params(checked))]


# --- form recovery: document order ------------------------------------------------


def test_mixed_kinds_are_recovered_in_document_order():
    snapshot = [
        text("title", "T", "", change="title"),
        checkbox("done", True, False, change="done"),
        text("ignored", "same", "same", change="ignored"),
        radio("size", "s", default_checked=True, change="size"),
        radio("size", "m", checked=True, change="size"),
        select("color", "red", "blue", change="color"),
        multi("tags", ["x", "y"], ["x"], change="tags"),
        textarea("body", "B", "", input="body_input", change="body_change"),
        hidden("token", "new", "old", change="token"),
    ]
    assert form_recovery(snapshot) == [
        ("title", {"value": "T"}),
        ("done", {"value": True}),
        ("size", {"value": "m"}),
        ("color", {"value": "red"}),
        ("tags", {"value": ["x", "y"]}),
        ("body_input", {"value": "B"}),
        ("body_change", {"value": "B"}),
        ("token", {"value": "new"}),
    ]


def test_radio_group_is_placed_where_the_group_begins():
    snapshot = [
        text("a", "1", "", change="a"),
        radio("size", "s", change="size"),
        radio("size", "m", checked=True, change="size"),
        text("b", "2", "", change="b"),
    ]
    assert form_recovery(snapshot) == [
        ("a", {"value": "1"}),
        ("size", {"value": "m"}),
        ("b", {"value": "2"}),
    ]


# --- auto-recover -----------------------------------------------------------------


def test_seed_example_restore_editor():
    snapshot = [
        box("restore_editor", 1, params={"doc_id": "42"}),
        hidden("cursor", "17:4", "0:0", change="sync_cursor", container=1),
    ]
    assert recovery_events(snapshot, remount=True) == [
        ("restore_editor", {"doc_id": "42", "cursor": "17:4"}),
    ]


def test_seed_example_sends_nothing_on_first_load():
    snapshot = [
        box("restore_editor", 1, params={"doc_id": "42"}),
        hidden("cursor", "17:4", "0:0", change="sync_cursor", container=1),
    ]
    assert recovery_events(snapshot, remount=False) == []


def test_container_without_fields_is_still_called_once_with_its_params():
    assert auto_recovery([box("restore", 1, params={"page": "2"})]) == [("restore", {"page": "2"})]


def test_container_with_nothing_at_all_is_called_with_empty_params():
    assert auto_recovery([box("restore", 1)]) == [("restore", {})]


def test_auto_recover_serializes_every_named_field_like_a_form():
    snapshot = [
        box("restore", 1),
        text("title", "T", "", container=1),
        textarea("body", "B", "", container=1),
        hidden("token", "tok", "", container=1),
        checkbox("agree", True, False, value="yes", container=1),
        checkbox("newsletter", True, False, value=None, container=1),
        checkbox("unchecked", False, True, value="x", container=1),
        radio("size", "s", container=1),
        radio("size", "m", checked=True, container=1),
        radio("nothing", "a", container=1),
        select("color", "red", "blue", container=1),
        multi("tags", ["a", "b"], [], container=1),
        text("off", "x", "", disabled=True, container=1),
        file_input("upload", container=1),
        button("go", "1", container=1),
        button("go2", "1", kind="submit", tag="INPUT", container=1),
        button("reset", "r", kind="reset", tag="INPUT", container=1),
        button("btn", "b", kind="button", tag="INPUT", container=1),
        button("img", "i", kind="image", tag="INPUT", container=1),
        text("", "nameless", "", container=1),
    ]
    assert auto_recovery(snapshot) == [
        (
            "restore",
            {
                "title": "T",
                "body": "B",
                "token": "tok",
                "agree": "yes",
                "newsletter": "on",
                "size": "m",
                "color": "red",
                "tags": ["a", "b"],
            },
        )
    ]


def test_auto_recover_checkbox_with_empty_value_sends_empty_string():
    snapshot = [box("restore", 1), checkbox("flag", True, False, value="", container=1)]
    assert auto_recovery(snapshot) == [("restore", {"flag": ""})]


def test_auto_recover_sends_fields_whatever_their_defaults_and_handlers():
    # Unchanged fields and fields with dj-change are serialized too: the handler gets the
    # container's whole state.
    snapshot = [
        box("restore", 1),
        text("a", "same", "same", container=1),
        text("b", "new", "old", change="b", input="b2", container=1),
    ]
    assert auto_recovery(snapshot) == [("restore", {"a": "same", "b": "new"})]


def test_auto_recover_same_name_values_become_a_list_in_document_order():
    snapshot = [
        box("restore", 1),
        checkbox("tags", True, False, value="a", container=1),
        checkbox("tags", False, False, value="b", container=1),
        checkbox("tags", True, False, value="c", container=1),
        text("row", "1", "", container=1),
        text("row", "2", "", container=1),
    ]
    assert auto_recovery(snapshot) == [("restore", {"tags": ["a", "c"], "row": ["1", "2"]})]


def test_auto_recover_one_checked_of_several_same_name_checkboxes_is_a_string():
    snapshot = [
        box("restore", 1),
        checkbox("tags", True, False, value="a", container=1),
        checkbox("tags", False, False, value="b", container=1),
    ]
    assert auto_recovery(snapshot) == [("restore", {"tags": "a"})]


def test_auto_recover_select_multiple_with_one_value_is_a_list():
    snapshot = [box("restore", 1), multi("tags", ["a"], [], container=1)]
    assert auto_recovery(snapshot) == [("restore", {"tags": ["a"]})]


def test_auto_recover_select_multiple_and_field_with_the_same_name_merge():
    snapshot = [
        box("restore", 1),
        multi("tags", ["a", "b"], [], container=1),
        text("tags", "c", "", container=1),
    ]
    assert auto_recovery(snapshot) == [("restore", {"tags": ["a", "b", "c"]})]


def test_auto_recover_field_names_with_dashes_become_underscores():
    snapshot = [
        box("restore", 1, params={"doc_id": "42"}),
        text("first-name", "Ada", "", container=1),
        checkbox("is-admin", True, False, container=1),
    ]
    assert auto_recovery(snapshot) == [
        ("restore", {"doc_id": "42", "first_name": "Ada", "is_admin": "on"}),
    ]


def test_auto_recover_field_wins_over_container_attribute_of_the_same_name():
    snapshot = [
        box("restore", 1, params={"doc_id": "42", "cursor": "attr", "page": "3"}),
        hidden("cursor", "field", "", container=1),
    ]
    assert auto_recovery(snapshot) == [("restore", {"doc_id": "42", "cursor": "field", "page": "3"})]


def test_auto_recover_dashed_field_wins_over_dashed_attribute():
    # dj-value-doc-id (already doc_id in the record) against a field named doc-id.
    snapshot = [
        box("restore", 1, params={"doc_id": "from-attribute"}),
        text("doc-id", "from-field", "", container=1),
    ]
    assert auto_recovery(snapshot) == [("restore", {"doc_id": "from-field"})]


def test_auto_recover_unserialized_field_does_not_shadow_the_attribute():
    snapshot = [
        box("restore", 1, params={"cursor": "attr", "flag": "attr"}),
        hidden("cursor", "field", "", disabled=True, container=1),
        checkbox("flag", False, False, container=1),
    ]
    assert auto_recovery(snapshot) == [("restore", {"cursor": "attr", "flag": "attr"})]


def test_auto_recover_does_not_mutate_the_container_params():
    container = box("restore", 1, params={"doc_id": "42"})
    auto_recovery([container, text("x", "1", "", container=1)])
    assert container["params"] == {"doc_id": "42"}


def test_multiple_containers_each_get_their_own_fields_in_document_order():
    snapshot = [
        box("first", 1, params={"n": "1"}),
        text("a", "A", "", container=1),
        box("second", 2, params={"n": "2"}),
        text("a", "B", "", container=2),
        text("b", "C", "", container=2),
    ]
    assert auto_recovery(snapshot) == [
        ("first", {"n": "1", "a": "A"}),
        ("second", {"n": "2", "a": "B", "b": "C"}),
    ]


def test_nested_containers_field_belongs_to_its_closest_container():
    # <div dj-auto-recover=outer> <input a> <div dj-auto-recover=inner> <input b> </div>
    #   <input c> </div>
    snapshot = [
        box("outer", 1, params={"level": "outer"}),
        text("a", "A", "", container=1),
        box("inner", 2, params={"level": "inner"}, container=1),
        text("b", "B", "", container=2),
        text("c", "C", "", container=1),
    ]
    assert auto_recovery(snapshot) == [
        ("outer", {"level": "outer", "a": "A", "c": "C"}),
        ("inner", {"level": "inner", "b": "B"}),
    ]


def test_named_fields_outside_any_container_are_not_serialized_anywhere():
    snapshot = [
        text("outside", "x", "", change="outside"),
        text("loose", "y", ""),
        box("restore", 1, params={"p": "1"}),
        text("inside", "z", "", container=1),
        checkbox("after", True, False, change="after"),
    ]
    assert auto_recovery(snapshot) == [("restore", {"p": "1", "inside": "z"})]


def test_field_in_a_container_is_only_auto_recovered_not_form_recovered():
    snapshot = [
        box("restore", 1),
        text("q", "typed", "", input="search", change="search", container=1),
        checkbox("c", True, False, change="toggle", container=1),
    ]
    assert form_recovery(snapshot) == []
    assert recovery_events(snapshot, remount=True) == [("restore", {"q": "typed", "c": "on"})]


# --- the remount flag ---------------------------------------------------------------


def _mixed_snapshot():
    return [
        text("title", "T", "", change="title"),
        box("restore", 1, params={"doc_id": "42"}),
        hidden("cursor", "5", "0", change="sync_cursor", container=1),
        checkbox("done", True, False, change="done"),
        box("other", 2),
    ]


def test_remount_sends_form_recovery_then_auto_recover():
    # Form recovery first, even for fields after a container in document order.
    assert recovery_events(_mixed_snapshot(), remount=True) == [
        ("title", {"value": "T"}),
        ("done", {"value": True}),
        ("restore", {"doc_id": "42", "cursor": "5"}),
        ("other", {}),
    ]


def test_first_load_sends_form_recovery_only():
    assert recovery_events(_mixed_snapshot(), remount=False) == [
        ("title", {"value": "T"}),
        ("done", {"value": True}),
    ]
    assert recovery_events(_mixed_snapshot(), remount=False) == form_recovery(_mixed_snapshot())


def test_empty_snapshot_sends_nothing():
    assert recovery_events([], remount=True) == []
    assert recovery_events([], remount=False) == []


# --- live events agree with recovery ------------------------------------------------


LIVE_RECORDS = [
    text("q", "typed", "", change="h", params={"row": "1"}),
    textarea("body", "B", "", input="h", params={"doc_id": "9"}),
    hidden("cursor", "3", "0", change="h"),
    checkbox("done", True, False, change="h", params={"item_id": "5"}),
    checkbox("done", False, True, change="h", value="yes"),
    select("size", "L", "M", change="h", params={"kind": "shirt"}),
    multi("tags", ["a", "b"], ["a"], change="h"),
    multi("tags", [], ["a"], change="h"),
]


@pytest.mark.parametrize("record", LIVE_RECORDS, ids=lambda record: record["type"])
def test_live_event_params_match_recovery_params(record):
    assert form_recovery([record]) == [("h", event_params(record))]


def test_live_radio_change_matches_radio_group_recovery():
    live = radio("size", "m", checked=True, change="h", params={"row": "2"})
    snapshot = [radio("size", "s", default_checked=True, change="h", params={"row": "1"}), live]
    assert form_recovery(snapshot) == [("h", event_params(live))]


def test_field_value_by_kind():
    assert field_value(text("q", "x", "")) == "x"
    assert field_value(checkbox("c", True, False, value="yes")) is True
    assert field_value(checkbox("c", False, True, value="yes")) is False
    assert field_value(radio("r", "m", checked=True)) == "m"
    assert field_value(select("s", "L", "M")) == "L"
    assert field_value(multi("m", ["a", "b"], [])) == ["a", "b"]


def test_event_params_adds_value_without_mutating_the_record():
    record = text("q", "x", "", params={"doc_id": "1"})
    assert event_params(record) == {"doc_id": "1", "value": "x"}
    assert record["params"] == {"doc_id": "1"}


def test_event_params_value_overrides_a_dj_value_named_value():
    record = text("q", "typed", "", params={"value": "attr"})
    assert event_params(record) == {"value": "typed"}
    assert form_recovery([dict(record, change="h")]) == [("h", {"value": "typed"})]


def test_attribute_param_name():
    assert attribute_param_name("dj-value-doc-id", "dj-value-") == "doc_id"
    assert attribute_param_name("data-page", "data-") == "page"
    assert attribute_param_name("dj-value-a-b-c", "dj-value-") == "a_b_c"


def test_recovery_selector_covers_handlers_containers_and_their_named_fields():
    parts = recovery.RECOVERY_SELECTOR.split(",")
    assert "[dj-change]" in parts
    assert "[dj-input]" in parts
    assert "[dj-auto-recover]" in parts
    assert "[dj-auto-recover] [name]" in parts


# --- property: random text-field snapshots ------------------------------------------

VALUES = st.sampled_from(["", "a", "b", "ab"])
HANDLERS = st.sampled_from([None, "on_input", "on_change", "other"])


@st.composite
def text_records(draw):
    kind = draw(st.sampled_from(["text", "textarea", "number", "email", "hidden", "file"]))
    record = text(
        draw(st.sampled_from(["", "a", "b", "a-b"])),
        draw(VALUES),
        draw(VALUES),
        kind=kind,
        input=draw(HANDLERS),
        change=draw(HANDLERS),
        params=draw(st.dictionaries(st.sampled_from(["doc_id", "row"]), VALUES, max_size=2)),
        disabled=draw(st.booleans()),
        no_recover=draw(st.booleans()),
        container=draw(st.sampled_from([None, None, 1])),
    )
    return record


def _expected_form_recovery(snapshot):
    expected = []
    for record in snapshot:
        recoverable = (
            (record["input"] or record["change"])
            and not record["disabled"]
            and not record["no_recover"]
            and record["container"] is None
            and record["type"] != "file"
        )
        if recoverable and record["value"] != record["default"]:
            params = dict(record["params"], value=record["value"])
            for handler in (record["input"], record["change"]):
                if handler:
                    expected.append((handler, params))
    return expected


@settings(max_examples=300, deadline=None)
@given(st.lists(text_records(), max_size=12), st.booleans())
def test_form_recovery_sends_exactly_the_differing_recoverable_fields_in_order(records, with_box):
    snapshot = ([box("restore", 1)] if with_box else []) + records
    assert form_recovery(snapshot) == _expected_form_recovery(snapshot)
    assert recovery_events(snapshot, remount=False) == _expected_form_recovery(snapshot)
    remount = recovery_events(snapshot, remount=True)
    expected = _expected_form_recovery(snapshot)
    assert remount[: len(expected)] == expected
    assert len(remount) == len(expected) + (1 if with_box else 0)


def test_after_a_resume_fields_of_auto_recover_containers_are_compared_like_any_other():
    container = {
        "tag": "DIV", "name": "", "input": None, "change": None, "params": {"doc_id": "d1"},
        "disabled": False, "no_recover": False, "container": None, "auto": "restore", "index": 1,
    }  # fmt: skip
    cursor = {
        "tag": "INPUT", "type": "hidden", "name": "cursor", "input": None, "change": "sync_cursor",
        "params": {}, "disabled": False, "no_recover": False, "container": 1, "value": "17", "default": "",
    }  # fmt: skip
    snapshot = [container, cursor]
    # Resumed: no handler runs (nothing was lost); the field the page wrote goes by form recovery.
    assert recovery_events(snapshot, False, True) == [("sync_cursor", {"value": "17"})]
    # Remounted: the container's handler restores it, once.
    assert recovery_events(snapshot, True, False) == [("restore", {"doc_id": "d1", "cursor": "17"})]
    # Unchanged since the server's last render: nothing either way.
    same = dict(cursor, value="")
    assert recovery_events([container, same], False, True) == []
