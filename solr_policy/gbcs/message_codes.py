"""GBCS Message Codes (the first two bytes of the General-Signing other-information).

Deliberately a short, curated table: the payment-mode, tariff, balance, debt, supply and
contingency-credential use cases a SoLR policy cares about. Values follow the GBCS
use-case code list (as also used by SmartDCCInnovation/gbcs-parser); 0x001A and 0x001B are
confirmed by the RTDS Pre-Command vectors. Codes not listed decode to ``None``, never to a
guess.

``critical`` is ``True`` only where the DUIS request matrix marks the Service Request that
carries the use case as Critical and that mapping is certain (SRV 1.1.1, 1.1.2, 1.2.1, 1.6);
elsewhere it is ``None`` (not asserted either way).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MessageCode:
    code: int
    use_case: str
    name: str
    critical: bool | None = None

    @property
    def code_hex(self) -> str:
        return f"0x{self.code:04X}"


def _table(*entries: MessageCode) -> dict[int, MessageCode]:
    table: dict[int, MessageCode] = {}
    for entry in entries:
        # A duplicate code would silently shadow an entry: fail at import instead.
        if entry.code in table:
            raise ValueError(f"duplicate message code {entry.code_hex}")
        table[entry.code] = entry
    return table


MESSAGE_CODES: dict[int, MessageCode] = _table(
    # Electricity (ESME)
    MessageCode(0x0019, "ECS01a", "Set Tariff and Price on ESME", critical=True),
    MessageCode(0x001A, "ECS02", "Set ESME Payment Mode to Credit", critical=True),
    MessageCode(0x001B, "ECS03", "Set ESME Payment Mode to Prepayment", critical=True),
    MessageCode(0x001C, "ECS04a", "Adjust Meter Balance on the ESME"),
    MessageCode(0x001E, "ECS07", "Manage Debt on the ESME"),
    MessageCode(0x001F, "ECS08", "Update Prepayment Configuration on ESME"),
    MessageCode(0x0020, "ECS09", "Activate Emergency Credit Remotely on ESME"),
    MessageCode(0x004F, "ECS42", "Remotely Close the Load Switch on the ESME"),
    MessageCode(0x0050, "ECS43", "Remotely Open the Load Switch on the ESME"),
    MessageCode(0x0051, "ECS44", "Arm Load Switch in ESME"),
    MessageCode(0x00A2, "ECS01b", "Set Price on ESME", critical=True),
    MessageCode(0x00B7, "ECS01c", "Set Tariff and Price on ESME secondary", critical=True),
    # Gas (GSME)
    MessageCode(0x006B, "GCS01a", "Set Tariff and Price on GSME", critical=True),
    MessageCode(0x006C, "GCS02", "Set GSME Payment Mode to Credit", critical=True),
    MessageCode(0x006D, "GCS03", "Set GSME Payment Mode to Prepayment", critical=True),
    MessageCode(0x006E, "GCS04", "Manage Debt on the GSME"),
    MessageCode(0x006F, "GCS05", "Update Prepayment Configurations on GSME"),
    MessageCode(0x0070, "GCS06", "Activate Emergency Credit Remotely on GSME"),
    MessageCode(0x0081, "GCS32", "Remotely close the valve in the GSME"),
    MessageCode(0x0085, "GCS39", "Arm Valve in GSME"),
    MessageCode(0x0086, "GCS40a", "Adjust Prepayment Mode Meter Balance on the GSME"),
    MessageCode(0x00A3, "GCS01b", "Set Price on GSME", critical=True),
    # Security credentials replaced under the Contingency key (the SoLR route)
    MessageCode(0x0109, "CS02b", "Update Security Credentials (anyByContingency)"),
)

# The "switch to Credit mode" commands (ECS02, GCS02).
CREDIT_MODE_CODES: frozenset[int] = frozenset({0x001A, 0x006C})


def lookup(code: int) -> MessageCode | None:
    """The table entry for ``code``, or ``None`` when the code is not in the table."""
    return MESSAGE_CODES.get(code)
