"""The seven MP134B business requirements, in the words the specifications quote."""

from __future__ import annotations

REQUIREMENTS: dict[str, str] = {
    "R1": "A new User Role, defined like the roles of the DCC User Interface Specification (DUIS).",
    "R2": "Parties in that role may subscribe for XML Signing certificates, but never for Digital Signing "
    "certificates used to sign Critical Commands.",
    "R3": "The role may send only SRV 1.6 Update Payment Mode; the list of allowed SRVs is configurable, so "
    "others can be added without code changes.",
    "R4": "The role's Party can create SROs and AROs, who submit ADT (Anomaly Detection Threshold) files that "
    "let the role send requests to Devices of one specific Supplier.",
    "R5": "Request content is checked: the Service Request body (SMETS1) and the GBCS payload of the Signed "
    "Pre-Command (SMETS2+) may only change the Payment Mode to Credit.",
    "R6": "By default the role may act only during a Supplier failure and on a specific, active Authority "
    "instruction; everything else is refused.",
    "R7": "Alerts for the failed Supplier's Devices keep flowing to the failed Supplier's Shared Resource "
    "Provider (SRP) after its certificates are revoked. No alert is lost.",
}


def tag(requirement: str) -> str:
    return f"MP134B-{requirement}"
