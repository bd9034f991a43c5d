"""Mount grants: which view (and with which mount params) a page may mount, signed."""

import hashlib

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "djreconnect.mount"


class MountSigner:
    def __init__(self, secret_key):
        self.serializer = URLSafeSerializer(secret_key, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})

    def sign(self, view_name, params):
        return self.serializer.dumps({"view": view_name, "params": params})

    def verify(self, token, view_name):
        """The mount params a token grants for ``view_name``, or None if it grants nothing."""
        try:
            grant = self.serializer.loads(token)
        except BadSignature:
            return None
        if not isinstance(grant, dict) or grant.get("view") != view_name:
            return None
        params = grant.get("params")
        return params if isinstance(params, dict) else None
