"""Officers with keys, for tests and the demo: sign governance statements as they would."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.governance.statements import cosign, make_statement, sign
from solr_policy.testing.pki import new_key_pem, public_pem


@dataclass
class Signatories:
    """Private keys by officer id; ``statement(...)`` is the envelope an officer would submit."""

    keys: dict[str, bytes] = field(default_factory=dict)  # officer id -> private key PEM

    def key_for(self, officer: str) -> bytes:
        """The officer's private key PEM, made on first use."""
        if officer not in self.keys:
            self.keys[officer] = new_key_pem()
        return self.keys[officer]

    def public(self, officer: str) -> str:
        return public_pem(self.key_for(officer)).decode()

    def private(self, officer: str) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_for(officer), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def statement(
        self, action: str, params: dict[str, Any], *, officer: str, at: datetime, cosigner: str | None = None,
        key_of: str | None = None,
    ) -> str:
        """Signed by ``officer`` (or, to test impersonation, with ``key_of``'s key)."""
        envelope = sign(make_statement(action, params, officer=officer, at=at), self.private(key_of or officer))
        if cosigner is not None:
            envelope = cosign(envelope, self.private(cosigner))
        return envelope.to_json()
