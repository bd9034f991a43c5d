"""Wire protocol: round trips of every message class and refusal of every kind of malformed frame."""

import json

import pytest
from djreconnect import protocol
from djreconnect.protocol import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    Error,
    Event,
    Join,
    Leave,
    Ping,
    Pong,
    ProtocolError,
    Rendered,
    Reply,
    decode_client,
    decode_server,
    encode,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# One well-formed wire object per message type, written out by hand.
CLIENT_SAMPLES = {
    "hello": {"t": "hello", "ref": 1, "session": "s-id", "secret": "s-secret"},
    "join": {
        "t": "join",
        "ref": 1,
        "view": "v1",
        "name": "app.Counter",
        "token": "tok",
        "html": "<p>0</p>",
        "version": 3,
    },
    "event": {"t": "event", "ref": 2, "view": "v1", "handler": "inc", "params": {"by": 2, "x": [1, "a"]}},
    "batch": {"t": "batch", "ref": 3, "view": "v1", "events": [["inc", {"by": 1}], ["title", {"value": "x"}]]},
    "leave": {"t": "leave", "view": "v1"},
    "ping": {"t": "ping", "ref": 7},
}
SERVER_SAMPLES = {
    "welcome": {"t": "welcome", "ref": 1, "session": "s-id", "secret": "s-new", "resumed": True, "reason": ""},
    "rendered": {
        "t": "rendered",
        "ref": 1,
        "view": "v1",
        "ops": [["attr", [0], "class", "on"]],
        "version": 4,
        "resumed": False,
    },
    "reply": {"t": "reply", "ref": 2, "view": "v1", "ops": [["text", [0, 0], "1"]], "version": 5},
    "error": {"t": "error", "ref": 2, "view": "v1", "code": "no_handler", "message": "no handler 'x'"},
    "pong": {"t": "pong", "ref": 7},
}


def frame(wire):
    return json.dumps(wire)


def decode_error(decoder, text, **kwargs):
    with pytest.raises(ProtocolError) as info:
        decoder(text, **kwargs)
    assert info.value.message  # a reason a person can read
    return info.value.code


# --- type names ------------------------------------------------------------


def test_client_and_server_type_names_are_distinct():
    client = [cls.TYPE for cls in CLIENT_MESSAGES]
    server = [cls.TYPE for cls in SERVER_MESSAGES]
    assert len(set(client)) == len(client)
    assert len(set(server)) == len(server)
    assert not set(client) & set(server)
    assert all(isinstance(name, str) and name for name in client + server)


def test_every_message_class_is_in_the_samples():
    assert {cls.TYPE for cls in CLIENT_MESSAGES} == set(CLIENT_SAMPLES)
    assert {cls.TYPE for cls in SERVER_MESSAGES} == set(SERVER_SAMPLES)


@pytest.mark.parametrize("wire", list(SERVER_SAMPLES.values()), ids=list(SERVER_SAMPLES))
def test_server_messages_are_not_client_messages(wire):
    assert decode_error(decode_client, frame(wire)) == "unknown_type"


@pytest.mark.parametrize("wire", list(CLIENT_SAMPLES.values()), ids=list(CLIENT_SAMPLES))
def test_client_messages_are_not_server_messages(wire):
    assert decode_error(decode_server, frame(wire)) == "unknown_type"


# --- round trips ------------------------------------------------------------


@pytest.mark.parametrize("wire", list(CLIENT_SAMPLES.values()), ids=list(CLIENT_SAMPLES))
def test_client_sample_decodes_to_its_fields_and_back(wire):
    message = decode_client(frame(wire))
    assert message.TYPE == wire["t"]
    for key, value in wire.items():
        if key != "t":
            assert getattr(message, key) == value
    assert json.loads(encode(message)) == wire
    assert decode_client(encode(message)) == message


@pytest.mark.parametrize("wire", list(SERVER_SAMPLES.values()), ids=list(SERVER_SAMPLES))
def test_server_sample_decodes_to_its_fields_and_back(wire):
    message = decode_server(frame(wire))
    assert message.TYPE == wire["t"]
    for key, value in wire.items():
        if key != "t":
            assert getattr(message, key) == value
    assert json.loads(encode(message)) == wire
    assert decode_server(encode(message)) == message


def test_optional_fields_take_their_defaults():
    join = decode_client('{"t": "join", "ref": 1, "view": "v", "name": "n"}')
    assert (join.token, join.html) == ("", "")
    event = decode_client('{"t": "event", "ref": 1, "view": "v", "handler": "h"}')
    assert event.params == {}
    rendered = decode_server('{"t": "rendered", "ref": 1, "view": "v"}')
    assert rendered.ops == []
    reply = decode_server('{"t": "reply", "view": "v"}')
    assert (reply.ref, reply.ops) == (None, [])
    error = decode_server('{"t": "error", "code": "c", "message": "m"}')
    assert (error.ref, error.view) == (None, None)


def test_mutable_defaults_are_not_shared():
    first = Event(ref=1, view="v", handler="h")
    second = Event(ref=2, view="v", handler="h")
    first.params["x"] = 1
    assert second.params == {}
    one = Rendered(ref=1, view="v")
    one.ops.append(["text", [], "x"])
    assert Rendered(ref=2, view="v").ops == []


def test_nullable_fields_accept_null_on_the_wire():
    reply = decode_server('{"t": "reply", "ref": null, "view": "v", "ops": []}')
    assert reply.ref is None
    error = decode_server('{"t": "error", "ref": null, "view": null, "code": "c", "message": "m"}')
    assert error.view is None and error.ref is None


def test_equality_is_by_type_and_fields():
    assert Ping(ref=1) == Ping(ref=1)
    assert Ping(ref=1) != Ping(ref=2)
    assert Ping(ref=1) != Pong(ref=1)  # same fields, different type
    assert "Ping" in repr(Ping(ref=3)) and "3" in repr(Ping(ref=3))


def test_constructor_refuses_missing_and_unknown_fields():
    with pytest.raises(TypeError):
        Join(ref=1, view="v")
    with pytest.raises(TypeError):
        Ping(ref=1, extra=2)


names = st.text(min_size=1, max_size=protocol.MAX_NAME_LENGTH)
refs = st.integers(min_value=-(2**53), max_value=2**53)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_scalars = json_scalars | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
params = st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=4)
ops = st.lists(json_values, max_size=4)

client_messages = st.one_of(
    st.builds(Join, ref=refs, view=names, name=names, token=st.text(max_size=30), html=st.text(max_size=60)),
    st.builds(Event, ref=refs, view=names, handler=names, params=params),
    st.builds(Leave, view=st.text(max_size=30)),
    st.builds(Ping, ref=refs),
)
server_messages = st.one_of(
    st.builds(Rendered, ref=refs, view=st.text(max_size=30), ops=ops),
    st.builds(Reply, ref=st.none() | refs, view=st.text(max_size=30), ops=ops),
    st.builds(
        Error,
        ref=st.none() | refs,
        view=st.none() | st.text(max_size=30),
        code=st.text(max_size=20),
        message=st.text(max_size=60),
    ),
    st.builds(Pong, ref=refs),
)


@settings(max_examples=100, deadline=None)
@given(client_messages)
def test_any_client_message_round_trips(message):
    again = decode_client(encode(message))
    assert type(again) is type(message)
    assert again == message


@settings(max_examples=100, deadline=None)
@given(server_messages)
def test_any_server_message_round_trips(message):
    again = decode_server(encode(message))
    assert type(again) is type(message)
    assert again == message


# --- refusals ---------------------------------------------------------------


@pytest.mark.parametrize("decoder", [decode_client, decode_server])
@pytest.mark.parametrize("text", ["", "{", "{'t': 'ping'}", "ping", '{"t": "ping", "ref": 1,}', "\x00"])
def test_malformed_json_is_refused(decoder, text):
    assert decode_error(decoder, text) == "bad_json"


@pytest.mark.parametrize("decoder", [decode_client, decode_server])
@pytest.mark.parametrize("text", ["[]", '["ping", 1]', "1", '"ping"', "null", "true", "1.5"])
def test_json_that_is_not_an_object_is_refused(decoder, text):
    assert decode_error(decoder, text) == "bad_frame"


@pytest.mark.parametrize("decoder", [decode_client, decode_server])
@pytest.mark.parametrize("value", [b'{"t": "ping", "ref": 1}', None, 12, {"t": "ping", "ref": 1}])
def test_frames_that_are_not_text_are_refused(decoder, value):
    assert decode_error(decoder, value) == "bad_frame"


@pytest.mark.parametrize("decoder", [decode_client, decode_server])
@pytest.mark.parametrize(
    "text",
    ['{"ref": 1}', '{"t": "nope", "ref": 1}', '{"t": null}', '{"t": 1}', '{"t": ["ping"]}', '{"t": "PING", "ref": 1}'],
)
def test_unknown_types_are_refused(decoder, text):
    assert decode_error(decoder, text) == "unknown_type"


def _without(wire, key):
    return {k: v for k, v in wire.items() if k != key}


REQUIRED_FIELDS = [
    (decode_client, CLIENT_SAMPLES["join"], "ref"),
    (decode_client, CLIENT_SAMPLES["join"], "view"),
    (decode_client, CLIENT_SAMPLES["join"], "name"),
    (decode_client, CLIENT_SAMPLES["event"], "ref"),
    (decode_client, CLIENT_SAMPLES["event"], "view"),
    (decode_client, CLIENT_SAMPLES["event"], "handler"),
    (decode_client, CLIENT_SAMPLES["leave"], "view"),
    (decode_client, CLIENT_SAMPLES["ping"], "ref"),
    (decode_server, SERVER_SAMPLES["rendered"], "ref"),
    (decode_server, SERVER_SAMPLES["rendered"], "view"),
    (decode_server, SERVER_SAMPLES["reply"], "view"),
    (decode_server, SERVER_SAMPLES["error"], "code"),
    (decode_server, SERVER_SAMPLES["error"], "message"),
    (decode_server, SERVER_SAMPLES["pong"], "ref"),
]


@pytest.mark.parametrize("decoder, wire, field", REQUIRED_FIELDS)
def test_missing_required_fields_are_refused(decoder, wire, field):
    with pytest.raises(ProtocolError) as info:
        decoder(frame(_without(wire, field)))
    assert info.value.code == "missing_field"
    assert field in info.value.message


WRONG_TYPES = [
    # (decoder, sample, field, bad value)
    (decode_client, CLIENT_SAMPLES["join"], "ref", True),
    (decode_client, CLIENT_SAMPLES["join"], "ref", False),
    (decode_client, CLIENT_SAMPLES["join"], "ref", 1.0),
    (decode_client, CLIENT_SAMPLES["join"], "ref", "1"),
    (decode_client, CLIENT_SAMPLES["join"], "ref", None),
    (decode_client, CLIENT_SAMPLES["join"], "view", 1),
    (decode_client, CLIENT_SAMPLES["join"], "name", None),
    (decode_client, CLIENT_SAMPLES["join"], "token", None),
    (decode_client, CLIENT_SAMPLES["join"], "html", ["<p>"]),
    (decode_client, CLIENT_SAMPLES["event"], "ref", True),
    (decode_client, CLIENT_SAMPLES["event"], "handler", {"name": "inc"}),
    (decode_client, CLIENT_SAMPLES["event"], "params", []),
    (decode_client, CLIENT_SAMPLES["event"], "params", "by=2"),
    (decode_client, CLIENT_SAMPLES["event"], "params", None),
    (decode_client, CLIENT_SAMPLES["leave"], "view", False),
    (decode_client, CLIENT_SAMPLES["ping"], "ref", True),
    (decode_client, CLIENT_SAMPLES["ping"], "ref", 2.5),
    (decode_server, SERVER_SAMPLES["rendered"], "ref", None),
    (decode_server, SERVER_SAMPLES["rendered"], "ref", True),
    (decode_server, SERVER_SAMPLES["rendered"], "ops", {}),
    (decode_server, SERVER_SAMPLES["rendered"], "ops", None),
    (decode_server, SERVER_SAMPLES["reply"], "ref", True),
    (decode_server, SERVER_SAMPLES["reply"], "ref", "2"),
    (decode_server, SERVER_SAMPLES["reply"], "view", None),
    (decode_server, SERVER_SAMPLES["error"], "ref", False),
    (decode_server, SERVER_SAMPLES["error"], "view", 3),
    (decode_server, SERVER_SAMPLES["error"], "code", None),
    (decode_server, SERVER_SAMPLES["error"], "message", 404),
    (decode_server, SERVER_SAMPLES["pong"], "ref", True),
    (decode_server, SERVER_SAMPLES["pong"], "ref", 7.0),
]


@pytest.mark.parametrize("decoder, wire, field, value", WRONG_TYPES)
def test_wrong_field_types_are_refused(decoder, wire, field, value):
    bad = dict(wire)
    bad[field] = value
    with pytest.raises(ProtocolError) as info:
        decoder(frame(bad))
    assert info.value.code == "bad_field"
    assert field in info.value.message


@pytest.mark.parametrize(
    "decoder, wire",
    [(decode_client, w) for w in CLIENT_SAMPLES.values()] + [(decode_server, w) for w in SERVER_SAMPLES.values()],
)
def test_unknown_fields_are_refused(decoder, wire):
    bad = dict(wire)
    bad["extra"] = 1
    with pytest.raises(ProtocolError) as info:
        decoder(frame(bad))
    assert info.value.code == "unknown_field"
    assert "extra" in info.value.message


@pytest.mark.parametrize(
    "field, value",
    [("view", ""), ("view", "v" * (protocol.MAX_NAME_LENGTH + 1)), ("name", ""), ("name", "n" * 1000)],
)
def test_join_names_must_be_short_and_non_empty(field, value):
    bad = dict(CLIENT_SAMPLES["join"])
    bad[field] = value
    assert decode_error(decode_client, frame(bad)) == "bad_field"


def test_names_of_the_maximum_length_are_accepted():
    wire = dict(CLIENT_SAMPLES["event"])
    wire["view"] = "v" * protocol.MAX_NAME_LENGTH
    wire["handler"] = "h" * protocol.MAX_NAME_LENGTH
    assert decode_client(frame(wire)).handler == wire["handler"]


@pytest.mark.parametrize(
    "field, value",
    [("handler", ""), ("handler", "h" * (protocol.MAX_NAME_LENGTH + 1)), ("view", "")],
)
def test_event_names_must_be_short_and_non_empty(field, value):
    bad = dict(CLIENT_SAMPLES["event"])
    bad[field] = value
    assert decode_error(decode_client, frame(bad)) == "bad_field"


def test_event_params_keys_must_not_be_empty():
    bad = dict(CLIENT_SAMPLES["event"])
    bad["params"] = {"": 1}
    assert decode_error(decode_client, frame(bad)) == "bad_field"


@pytest.mark.parametrize(
    "decoder, wire", [(decode_client, CLIENT_SAMPLES["join"]), (decode_server, SERVER_SAMPLES["reply"])]
)
def test_frames_over_max_length_are_refused(decoder, wire):
    text = frame(wire)
    assert decoder(text, max_length=len(text)).TYPE == wire["t"]  # at the limit: fine
    assert decoder(text, max_length=None).TYPE == wire["t"]
    with pytest.raises(ProtocolError) as info:
        decoder(text, max_length=len(text) - 1)
    assert info.value.code == "too_big"


def test_size_check_comes_before_parsing():
    # Garbage over the limit is refused for its size, without being parsed.
    assert decode_error(decode_client, "x" * 101, max_length=100) == "too_big"


@pytest.mark.parametrize("decoder", [decode_client, decode_server])
@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deeply_nested_json_is_refused_not_crashed(decoder, opening):
    # Valid-looking JSON nested far past the interpreter's recursion limit.
    text = opening * 100_000
    with pytest.raises(ProtocolError):
        decoder(text)
    text = '{"t": "ping", "ref": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(ProtocolError):
        decoder(text)


def test_protocol_error_carries_code_and_message():
    error = ProtocolError("too_big", "frame too big")
    assert (error.code, error.message, str(error)) == ("too_big", "frame too big", "frame too big")
    assert isinstance(error, Exception)


# --- no input raises anything but ProtocolError -------------------------------

ALL_TYPES = [cls.TYPE for cls in CLIENT_MESSAGES + SERVER_MESSAGES]
ALL_FIELDS = sorted({name for cls in CLIENT_MESSAGES + SERVER_MESSAGES for name, _, _ in cls.FIELDS})


@st.composite
def message_like(draw):
    """A valid sample of either side, then mutated: fields dropped, values swapped for
    any JSON value (or a plausible one), a stray key added, the type changed."""
    wire = dict(draw(st.sampled_from(list(CLIENT_SAMPLES.values()) + list(SERVER_SAMPLES.values()))))
    for name in draw(st.lists(st.sampled_from(ALL_FIELDS), max_size=3)):
        if draw(st.booleans()):
            wire.pop(name, None)
        else:
            wire[name] = draw(json_values | refs | names | st.just(""))
    if draw(st.integers(0, 9)) == 0:
        wire[draw(st.text(max_size=6))] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        wire["t"] = draw(st.sampled_from(ALL_TYPES) | json_values)
    return wire


def _decode_or_refuse(decoder, text, **kwargs):
    try:
        result = decoder(text, **kwargs)
    except ProtocolError as error:
        assert isinstance(error.code, str) and error.code
        return None
    assert isinstance(result, protocol.Message)
    return result


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_raises_only_protocol_error(text):
    _decode_or_refuse(decode_client, text)
    _decode_or_refuse(decode_server, text)
    _decode_or_refuse(decode_client, text, max_length=10)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_arbitrary_json_objects_raise_only_protocol_error(wire):
    _decode_or_refuse(decode_client, json.dumps(wire))
    _decode_or_refuse(decode_server, json.dumps(wire))


@settings(max_examples=200, deadline=None)
@given(message_like())
def test_message_like_objects_raise_only_protocol_error(wire):
    message = _decode_or_refuse(decode_client, json.dumps(wire))
    if message is not None:
        # What is accepted is exactly what was sent, and is a client message.
        assert type(message) in CLIENT_MESSAGES
        assert json.loads(encode(message)) == {**message.to_wire(), **wire}
        assert decode_client(encode(message)) == message
    _decode_or_refuse(decode_server, json.dumps(wire))


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_arbitrary_json_values_raise_only_protocol_error(value):
    _decode_or_refuse(decode_client, json.dumps(value))


@pytest.mark.parametrize(
    "events",
    [
        [["inc"]],
        [["inc", {"by": 1}, "extra"]],
        [[1, {}]],
        [["inc", []]],
        [["", {}]],
        [["inc", {"": 1}]],
        "not a list",
        [["inc", {}]] * (protocol.MAX_BATCH + 1),
    ],
)
def test_malformed_batches_are_refused(events):
    wire = {"t": "batch", "ref": 1, "view": "v1", "events": events}
    with pytest.raises(ProtocolError) as refused:
        decode_client(json.dumps(wire))
    assert refused.value.code == "bad_field"


# --- sessions ------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        {"t": "hello", "ref": 1, "session": "", "secret": "x"},
        {"t": "hello", "ref": 1, "session": "s" * 65, "secret": "x"},
        {"t": "hello", "ref": 1, "session": "s", "secret": 5},
        {"t": "hello", "ref": "1"},
    ],
)
def test_malformed_hellos_are_refused(wire):
    assert decode_error(decode_client, frame(wire)) == "bad_field"


def test_a_first_hello_names_no_session():
    message = decode_client(frame({"t": "hello", "ref": 1}))
    assert (message.session, message.secret) == (None, None)


def test_resumed_must_be_a_boolean():
    wire = dict(SERVER_SAMPLES["rendered"], resumed=1)
    assert decode_error(decode_server, frame(wire)) == "bad_field"
