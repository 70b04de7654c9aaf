"""Refusals raised at the input boundary.

Every refusal carries a stable ``rule`` id (what a pipeline keys on), a human ``message``
and, where the DUIS defines one, a DUIS response ``code``. Nothing at the boundary raises
anything else for bad input: callers catch ``Refused`` and never see a traceback.
"""

from __future__ import annotations

from pydantic import ValidationError


class Refused(Exception):
    """Input refused with a named reason."""

    def __init__(self, rule: str, message: str, code: str | None = None) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message
        self.code = code

    def as_dict(self) -> dict[str, str | None]:
        return {"rule": self.rule, "code": self.code, "message": self.message}


class ParseRefused(Refused):
    """The bytes are not an acceptable DUIS document."""


class GbcsRefused(Refused):
    """A GBCS payload is malformed; ``offset`` is the byte where decoding stopped."""

    def __init__(self, message: str, offset: int, rule: str = "gbcs.malformed") -> None:
        super().__init__(rule, f"{message} (at byte offset {offset})")
        self.offset = offset


class CertificateRefused(Refused):
    """A certificate file cannot be imported."""


class SignatureRefused(Refused):
    """The XML signature, or the certificate behind it, is not acceptable."""


class GovernanceRefused(Refused):
    """A governance step (instruction, officer, ADT file, quarantine) is not allowed."""


class StoreUnavailable(Exception):
    """The store cannot be used: a missing, unreadable, corrupt, non-database or locked file,
    or any driver error during a read or a transaction. Callers never see the driver's own
    exceptions; an engine refuses by default (rule ``store.unavailable``), a command exits 2.
    """

    rule = "store.unavailable"
    code: str | None = None  # the DUIS has no response code for it

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def first_error(exc: ValidationError) -> str:
    """The first validation error of ``exc`` as one line: ``where: what``."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid"))
