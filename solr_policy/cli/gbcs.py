"""``solr-policy gbcs``: GBCS payloads."""

from __future__ import annotations

import sys

import click

from solr_policy.cli.common import emit, refuse
from solr_policy.errors import Refused
from solr_policy.gbcs import decode_general_signing, parse_payload_text


@click.group()
def gbcs() -> None:
    """GBCS payloads."""


@gbcs.command("inspect")
@click.argument("payload")
def gbcs_inspect(payload: str) -> None:
    """Decode the General-Signing header of PAYLOAD (hex or base64; '-' reads stdin)."""
    text = sys.stdin.read() if payload == "-" else payload
    try:
        header = decode_general_signing(parse_payload_text(text))
    except Refused as refusal:
        refuse({"valid": False, "reason": refusal.as_dict()})
    emit({"valid": True, "header": header.to_json_dict()})
