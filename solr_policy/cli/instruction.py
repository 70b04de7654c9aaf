"""``solr-policy instruction``: Authority instructions through their life, four eyes."""

from __future__ import annotations

import click
from pydantic import ValidationError

from solr_policy.cli.common import Context, at, emit, governance_call, now_option, officer_option, parse_now, parse_time, reason_option
from solr_policy.governance import instructions
from solr_policy.world import Instruction


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
@officer_option
@reason_option
@now_option
@click.pass_obj
def instruction_propose(
    obj: Context,
    reference: str,
    failed_supplier: str,
    solr_party: str,
    effective_from: str,
    effective_until: str | None,
    devices: tuple[str, ...],
    officer: str,
    reason: str,
    now: str | None,
) -> None:
    """Propose instruction REFERENCE (it needs another officer's approval)."""
    try:
        proposal = Instruction(
            reference=reference,
            failed_supplier=failed_supplier,
            solr_party=solr_party,
            effective_from=parse_time(effective_from, "--from"),
            effective_until=parse_now(effective_until, "--until"),
            scope=tuple(devices) or None,
        )
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(str(exc).splitlines()[0]) from None
    result = governance_call(instructions.propose, obj.store, proposal, officer=officer, reason=reason, at=at(now))
    emit({"done": True, "instruction": result.model_dump(mode="json")})


def _transition_command(action: str, doc: str) -> click.Command:
    @instruction.command(action, help=doc)
    @click.argument("reference")
    @officer_option
    @reason_option
    @now_option
    @click.pass_obj
    def command(obj: Context, reference: str, officer: str, reason: str, now: str | None) -> None:
        result = governance_call(instructions.transition, obj.store, reference, action, officer=officer, reason=reason, at=at(now))
        emit({"done": True, "instruction": result.model_dump(mode="json")})

    return command


for _action, _doc in (
    ("approve", "Approve a proposed instruction (four eyes: not its proposer). It is active from its start."),
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
