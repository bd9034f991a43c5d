"""protocol.pyi (the types the server's type checker reads) says what protocol.py does:
each message's fields, in order, with the kinds its FIELDS table checks on the wire."""

import ast
from pathlib import Path

import pytest
from djreconnect import protocol

STUB = Path(protocol.__file__).with_suffix(".pyi")
# The annotation a field of each kind has in the stub (LIST: any list).
ANNOTATIONS = {
    protocol.INT: "int",
    protocol.STR: "str",
    protocol.DICT: "dict[str, Any]",
    protocol.OPT_INT: "int | None",
    protocol.OPT_STR: "str | None",
    protocol.BOOL: "bool",
}


def _stub_classes():
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _stub_fields(node):
    return [
        (statement.target.id, ast.unparse(statement.annotation))
        for statement in node.body
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
    ]


MESSAGES = protocol.CLIENT_MESSAGES + protocol.SERVER_MESSAGES


@pytest.mark.parametrize("message", MESSAGES, ids=lambda cls: cls.__name__)
def test_each_message_has_its_fields_in_the_stub(message):
    stub = _stub_classes().get(message.__name__)
    assert stub is not None, "protocol.pyi has no class %s" % message.__name__
    fields = _stub_fields(stub)
    assert [name for name, _ in fields] == [name for name, _, _ in message.FIELDS]
    for (name, annotation), (_, kind, _) in zip(fields, message.FIELDS):
        if kind == protocol.LIST:
            assert annotation.startswith("list["), (name, annotation)
        else:
            assert annotation == ANNOTATIONS[kind], (message.__name__, name, annotation, kind)


def test_the_stub_declares_no_message_protocol_lacks():
    stubbed = {name for name, node in _stub_classes().items() if any(base.id == "Message" for base in node.bases)}
    assert stubbed == {cls.__name__ for cls in MESSAGES}


def test_every_public_name_of_the_stub_exists():
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    # ClientMessage and ServerMessage are unions for the checker only.
    missing = sorted(name for name in names if not hasattr(protocol, name))
    assert missing == []
