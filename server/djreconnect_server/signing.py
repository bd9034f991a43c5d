"""Mount grants: which view (and with which mount params) a page may mount, signed."""

import hashlib
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "djreconnect.mount"


class MountSigner:
    def __init__(self, secret_key: str) -> None:
        self.serializer = URLSafeSerializer(secret_key, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})

    def sign(self, view_name: str, params: dict[str, Any]) -> str:
        return self.serializer.dumps({"view": view_name, "params": params})

    def verify(self, token: str, view_name: str) -> dict[str, Any] | None:
        """The mount params a token grants for ``view_name``, or None if it grants nothing."""
        try:
            grant = self.serializer.loads(token)
        except BadSignature:
            return None
        if not isinstance(grant, dict) or grant.get("view") != view_name:
            return None
        params = grant.get("params")
        return params if isinstance(params, dict) else None
