"""signing.py: mount grants round-trip, and nothing else verifies."""

import pytest
from djreconnect_server.signing import MountSigner

KEY = "a-test-secret-key-of-some-length"


def test_round_trip_returns_the_params():
    signer = MountSigner(KEY)
    params = {"doc_id": "doc-7", "page": 3, "nested": {"a": [1, 2]}}
    token = signer.sign("editor", params)
    assert isinstance(token, str) and token
    assert signer.verify(token, "editor") == params


def test_empty_params_round_trip():
    signer = MountSigner(KEY)
    assert signer.verify(signer.sign("editor", {}), "editor") == {}


def test_a_token_for_another_view_is_refused():
    signer = MountSigner(KEY)
    assert signer.verify(signer.sign("editor", {"doc_id": "1"}), "admin") is None


def test_another_key_is_refused():
    token = MountSigner(KEY).sign("editor", {})
    assert MountSigner("another-secret-key-entirely").verify(token, "editor") is None


def _tampered(token):
    """Every single-character change of the token."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
    for index, char in enumerate(token):
        replacement = alphabet[(alphabet.index(char) + 1) % len(alphabet)] if char in alphabet else "a"
        yield token[:index] + replacement + token[index + 1 :]


def test_tampered_tokens_are_refused():
    signer = MountSigner(KEY)
    token = signer.sign("editor", {"doc_id": "doc-1"})
    accepted = [bad for bad in _tampered(token) if signer.verify(bad, "editor") is not None]
    # base64 padding bits can make a changed last character decode the same; nothing else may pass
    assert all(signer.verify(bad, "editor") == {"doc_id": "doc-1"} for bad in accepted)
    assert len(accepted) <= 1


def test_forged_payload_with_a_copied_signature_is_refused():
    signer = MountSigner(KEY)
    token = signer.sign("editor", {"doc_id": "doc-1"})
    other = signer.sign("editor", {"doc_id": "doc-2"})
    payload, _, signature = token.rpartition(".")
    other_payload, _, _ = other.rpartition(".")
    assert signer.verify(other_payload + "." + signature, "editor") is None


@pytest.mark.parametrize("token", ["", "garbage", "a.b", "....", "eyJ2aWV3IjoiZWRpdG9yIn0"])
def test_garbage_is_refused(token):
    assert MountSigner(KEY).verify(token, "editor") is None


def test_a_grant_without_dict_params_is_refused():
    signer = MountSigner(KEY)
    assert signer.verify(signer.serializer.dumps({"view": "editor", "params": ["x"]}), "editor") is None
    assert signer.verify(signer.serializer.dumps({"view": "editor"}), "editor") is None
    assert signer.verify(signer.serializer.dumps(["editor", {}]), "editor") is None


def test_a_token_signed_for_another_purpose_is_refused():
    from itsdangerous import URLSafeSerializer

    token = URLSafeSerializer(KEY, salt="some.other.salt").dumps({"view": "editor", "params": {}})
    assert MountSigner(KEY).verify(token, "editor") is None
