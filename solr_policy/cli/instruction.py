"""``solr-policy instruction``: Authority instructions through their life, four eyes; every
step a statement signed by the acting governance officer."""

from __future__ import annotations

import click

from solr_policy.cli.acting import Signing, emit_act, signed
from solr_policy.cli.common import Context, emit, parse_now, parse_time, reason_option
from solr_policy.eui import parse_eui64


@click.group()
def instruction() -> None:
    """Authority instructions: propose, approve (another officer), suspend, resume, end."""


@instruction.command("propose")
@click.argument("reference")
@click.option("--failed-supplier", required=True, help="Party id of the failed Supplier.")
@click.option("--solr-party", required=True, help="Party id of the SoLR Party.")
@click.option("--from", "effective_from", required=True, help="Effective from (ISO 8601 with zone).")
@click.option("--until", "effective_until", help="Effective until (ISO 8601 with zone); open-ended if omitted.")
@click.option("--device", "devices", multiple=True, help="Limit to these Devices (EUI-64); repeatable.")
@reason_option
@signed()
@click.pass_obj
def instruction_propose(
    obj: Context,
    reference: str,
    failed_supplier: str,
    solr_party: str,
    effective_from: str,
    effective_until: str | None,
    devices: tuple[str, ...],
    reason: str,
    signing: Signing,
) -> None:
    """Propose instruction REFERENCE (it needs another officer's approval)."""
    until = parse_now(effective_until, "--until")
    try:
        scope = [parse_eui64(d) for d in devices] or None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None
    params = {
        "reference": reference, "failed_supplier": failed_supplier, "solr_party": solr_party,
        "effective_from": parse_time(effective_from, "--from").isoformat(), "effective_until": until.isoformat() if until else None,
        "devices": scope, "reason": reason,
    }
    emit_act(signing.act(obj, "instruction.propose", params))


def _transition_command(action: str, doc: str) -> click.Command:
    @instruction.command(action, help=doc)
    @click.argument("reference")
    @reason_option
    @signed()
    @click.pass_obj
    def command(obj: Context, reference: str, reason: str, signing: Signing) -> None:
        emit_act(signing.act(obj, f"instruction.{action}", {"reference": reference, "reason": reason}))

    return command


for _action, _doc in (
    ("approve", "Approve a proposed instruction (four eyes: another officer, another key). It is active from its start."),
    ("suspend", "Suspend an active instruction: requests are refused until it is resumed."),
    ("resume", "Resume a suspended instruction."),
    ("end", "End an instruction for good."),
):
    _transition_command(_action, _doc)


@instruction.command("list")
@click.pass_obj
def instruction_list(obj: Context) -> None:
    """List instructions."""
    rows = obj.store.instructions()
    if not rows:
        click.echo("no instructions")
    for i in rows:
        until = i.effective_until.isoformat() if i.effective_until else "open-ended"
        click.echo(f"{i.reference:24} {i.status.value:9} failed {i.failed_supplier:16} SoLR {i.solr_party:16} {i.effective_from.isoformat()} .. {until}"
                   f"  proposed by {i.proposed_by or '-'}, approved by {i.approved_by or '-'}")


@instruction.command("show")
@click.argument("reference")
@click.pass_obj
def instruction_show(obj: Context, reference: str) -> None:
    """Show an instruction and its history."""
    found = obj.store.get_instruction(reference)
    if found is None:
        raise click.UsageError(f"no instruction {reference}")
    emit({"instruction": found.model_dump(mode="json"), "history": [e.to_json_dict() for e in obj.store.instruction_events(reference)]})
