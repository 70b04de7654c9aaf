"""The store interface the rest of solr-policy depends on.

Everything durable goes through a ``Store``. The SQLite implementation is the embedded
default; a PostgreSQL implementation for several nodes implements the same protocol (the
SQL is kept portable: plain types, no SQLite-only functions in queries, see ``sqlite.py``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from solr_policy.crypto.certs import CertRecord, SmkiStatus


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[object]: ...

    # certificates
    def put_certificate(self, record: CertRecord) -> bool: ...
    def get_certificate(self, issuer: str, serial: int) -> CertRecord | None: ...
    def find_certificates(
        self, *, eui: str | None = None, role: int | None = None, spki_sha256: str | None = None
    ) -> list[CertRecord]: ...
    def key_shared_with(self, spki_sha256: str, fingerprint: str) -> list[tuple[str, int | None, str, str | None]]: ...
    def set_certificate_status(self, issuer: str, serial: int, status: SmkiStatus) -> bool: ...
    def list_certificates(self) -> list[CertRecord]: ...

    def close(self) -> None: ...
