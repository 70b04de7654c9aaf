"""``solr-policy gbcs``: GBCS payloads."""

from __future__ import annotations

import sys

import click

from solr_policy.cli.common import emit, refuse
from solr_policy.errors import Refused
from solr_policy.gbcs import GeneralCiphering, decode, parse_payload_text


@click.group()
def gbcs() -> None:
    """GBCS payloads."""


@gbcs.command("inspect")
@click.argument("payload")
def gbcs_inspect(payload: str) -> None:
    """Decode PAYLOAD (hex or base64; '-' reads stdin): a General-Signing header (DF09), or a
    General-Ciphering frame (DD) with the General-Signing header inside when it is in clear."""
    text = sys.stdin.read() if payload == "-" else payload
    try:
        header = decode(parse_payload_text(text))
    except Refused as refusal:
        refuse({"valid": False, "reason": refusal.as_dict()})
    frame = "general-ciphering" if isinstance(header, GeneralCiphering) else "general-signing"
    emit({"valid": True, "frame": frame, "header": header.to_json_dict()})
