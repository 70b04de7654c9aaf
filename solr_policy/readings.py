"""What is SEC text and what is this project's reading of it, and the glossary (SECAS report, README).

No public MP134B document was found beyond its working-group summary (the seven requirements
in ``requirements.py``). Where the engine had to choose, the choice is listed here with what
the public text does say and the question SECAS is asked to settle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reading:
    topic: str
    requirement: str  # the MP134B requirement it belongs to
    sec_text: str  # what public SEC (or DUIS, GBCS) text says, and where
    our_reading: str  # what the engine does: this project's reading
    question: str  # the open question for SECAS


READINGS: tuple[Reading, ...] = (
    Reading(
        "Role code SC", "R1",
        "MP134B (working-group summary) adds a User Role defined like the DUIS roles; the DUIS role codes are IS, ES, GS, ED, GT, RSA and OU. No code for the new role was found.",
        "The role's code is SC (\"SoLR Contingency\"), in policies/solr-contingency.yaml and the world file.",
        "Which code will the DUIS give the role?",
    ),
    Reading(
        "The 1.6-only allowlist", "R3",
        "MP134B R3: the role may send only SRV 1.6 Update Payment Mode; the list of SRVs is configurable.",
        "SRV 1.6 only, Command Variant 4 (Service Request) and 5-7 (Signed Pre-Command), to Credit only, GBCS 0x001A and 0x006C.",
        "Does MP134B intend Command Variants 5-7 for a role that holds no Digital Signing certificate (R2), or CV 4 only?",
    ),
    Reading(
        "ADT rules for the role", "R4",
        "SEC A1 and G6 (Threshold Anomaly Detection Procedures): each User sets thresholds and exceptions; a breach is quarantined, a SMETS1 data value out of bounds deleted; MP109 moved the files to the DCC's secure delivery. MP134B R4: ADT files let the role act on one specific Supplier's Devices.",
        "An ADT file names one Supplier, per SRV thresholds in fixed UTC windows, and exceptions (exempt, or own thresholds); without a current file naming the Device's Supplier the request is refused (E4); over a threshold it is quarantined (AD1); a SMETS1 data value outside a policy's limits is deleted (outcome delete, AD1).",
        "Is a missing ADT file a refusal (as here) or a quarantine? Which DCC code does the User get for a SMETS1 deletion?",
    ),
    Reading(
        "Cancellations", "R6",
        "The DUIS cancels a future-dated request by re-sending it with ExecutionDateTime 3000-12-31T00:00:00Z. MP134B says nothing on cancellations.",
        "The role may not cancel (policy allow_cancellation: false): a cancellation could undo a switch to Credit that the Authority instructed.",
        "May the SoLR role cancel its own future-dated requests?",
    ),
    Reading(
        "Pre-Command signers", "R5",
        "MP134B R2: the role never holds a Digital Signing certificate; GBCS Signed Pre-Commands carry the User's Digital Signing signature.",
        "No one is trusted to sign the role's Pre-Commands (pre_command_signers: []); a deployment names a signer (e.g. a DCC service) in its policy.",
        "Who, if anyone, signs Pre-Commands for the SoLR role?",
    ),
    Reading(
        "File formats", "R4",
        "SEC G6 and MP109: ADT and Exit Quarantine files travel by the DCC's secure delivery method (formerly email). No public file layout was found.",
        "ADT and Exit Quarantine files are this project's YAML with a detached ECDSA P-256 signature by an ARO; governance acts are signed DSSE statements; reference data (including a Device's Supplier history) is a YAML world file.",
        "What layout will the DCC use, so the files can be exchanged as they are?",
    ),
    Reading(
        "Supplier ownership during an event", "R6",
        "MP134A and MP185 (approved 2021): the SMKI PMA may delay revoking the failed Supplier's certificates and delay moving its market identifiers to the SoLR.",
        "A Device's Supplier is a history with effective times; R4 and R6 use the Supplier at the decision time and at a future-dated request's execution time.",
        "Is a request to a meter whose identifiers have already moved refused (as here), or routed to the new Supplier?",
    ),
)

GLOSSARY: dict[str, str] = {
    "SEC": "Smart Energy Code: the multi-party agreement governing GB smart metering; SECAS is its secretariat.",
    "MP134B": "The SEC modification adding the SoLR Contingency User Role.",
    "SoLR": "Supplier of Last Resort: the Supplier Ofgem appoints to take over a failed Supplier's customers.",
    "DCC": "Data Communications Company: runs the smart metering network and its User Interface (DUIS).",
    "DUIS": "DCC User Interface Specification: the signed XML messages Users send and receive.",
    "SRV": "Service Reference Variant: a DUIS service request type, e.g. 1.6 Update Payment Mode.",
    "CV": "Command Variant: how a Service Request is sent (4: as a Service Request the DCC turns into a command; 5-7: as a Signed Pre-Command).",
    "Pre-Command": "A GBCS command the DCC prepares and the User signs itself before it goes to the Device (Signed Pre-Command).",
    "GBCS": "Great Britain Companion Specification: the command format the meters understand.",
    "SMETS": "Smart Metering Equipment Technical Specifications: SMETS1 meters are commanded by the DCC on the User's behalf; SMETS2+ meters take GBCS commands.",
    "ADT": "Anomaly Detection Threshold: a User's limits on how many requests of a kind it sends (and exceptions); a breach is quarantined.",
    "SRO": "Senior Responsible Officer: the Party's officer, registered by governance, who appoints AROs.",
    "ARO": "Authorised Responsible Officer: signs the Party's ADT and Exit Quarantine files.",
    "SRP": "Shared Resource Provider: serves a failed Supplier's prepayment customers; receives its alerts (R7).",
    "SMKI": "Smart Metering Key Infrastructure: the PKI of the Users' certificates; its PMA is the Policy Management Authority.",
    "Exit Quarantine file": "A User's signed file releasing or deleting its quarantined requests.",
    "I99": "DUIS response code: the request was accepted.",
    "E1": "DUIS response code: the User or its role may not send the request (here: the originator is not the signer, an unknown User, an ungoverned role).",
    "E2": "DUIS response code: the role may not use that Service Reference Variant.",
    "E3": "DUIS response code: the User is not in a state to send it (suspended or withdrawn; here also: no active instruction).",
    "E4": "DUIS response code: the User is not entitled to act on that Device (another Supplier's, outside the instruction or the ADT file).",
    "E11": "DUIS response code: the Device type is not one the request addresses.",
    "E12": "DUIS response code: the request's content is not valid for the SRV (here: not a switch to Credit, a bad GBCS command).",
    "E19": "DUIS response code: the Device is unknown.",
    "AD1": "DCC Alert: a request held by anomaly detection (quarantined); here also the code of a SMETS1 data-value deletion.",
}


def markdown() -> str:
    """The readings and the glossary as Markdown (the report's twin, and the README's section)."""
    lines = ["| Topic | Req. | SEC text | This project's reading | Open question for SECAS |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.topic} | {r.requirement} | {r.sec_text} | **This project's reading:** {r.our_reading} | {r.question} |" for r in READINGS]
    lines += ["", "**Glossary**", "", "| Term | Meaning |", "| --- | --- |"]
    lines += [f"| {term} | {text} |" for term, text in GLOSSARY.items()]
    return "\n".join(lines) + "\n"
