"""``solr-policy statement``: governance statements signed on one machine, submitted on another.

An officer whose key never leaves their workstation signs there (``statement sign``, no store
needed), a second officer co-signs where four eyes are needed (``statement cosign``), and the
service applies it (``statement submit``). The governance commands (``instruction propose``
...) do the same in one go with ``--key``.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any, get_args

import click

from solr_policy.alerts.routing import AlertRouter
from solr_policy.cli.acting import emit_act, read_officer_key, submit
from solr_policy.cli.common import Context, emit, governance_call, parse_now, policy_option, read_input, read_text
from solr_policy.cli.decide import decision_engine
from solr_policy.governance.statements import Action, Statement, cosign, make_statement, parse_envelope, sign

output_option = click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the statement here instead of stdout.")


@click.group()
def statement() -> None:
    """Signed governance statements: sign, co-sign, submit."""


def parse_param(text: str) -> tuple[str, Any]:
    """``name=text``, ``name=@FILE`` (the file's text) or ``name:=JSON`` (a number, list, ...)."""
    name, typed, value = text.partition(":=")
    if not typed:
        name, plain, value = text.partition("=")
        if not plain:
            raise click.BadParameter(f"{text!r} is not name=value, name=@FILE or name:=JSON", param_hint="--param")
    if not name.isidentifier():
        raise click.BadParameter(f"{name!r} is not a parameter name", param_hint="--param")
    if typed:
        try:
            return name, json.loads(value)
        except ValueError:
            raise click.BadParameter(f"{name}: {value!r} is not JSON", param_hint="--param") from None
    return name, read_text(value[1:], "--param") if value.startswith("@") else value


def _params(params: tuple[str, ...], params_json: str | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    if params_json is not None:
        try:
            loaded = json.loads(read_input(params_json))
        except ValueError:
            raise click.BadParameter(f"{params_json} is not JSON", param_hint="--params-json") from None
        if not isinstance(loaded, dict):
            raise click.BadParameter(f"{params_json} must hold a JSON object", param_hint="--params-json")
        merged.update(loaded)
    merged.update(parse_param(p) for p in params)
    return merged


def _write(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            Path(output).write_text(text)
        except OSError as exc:
            raise click.BadParameter(f"cannot write {output}: {exc.strerror}", param_hint="--output") from None


# Listed in the help, one a line: as a click Choice they wrapped the usage line mid-word.
SIGN_HELP = (
    "Sign a statement of ACTION as OFFICER (no store is opened). The parameters each act reads are "
    "those its governance command sends, e.g. instruction.approve: reference, reason; a missing or "
    "mistyped one is named when the statement is submitted (a number or list: --param name:=JSON).\n\n"
    "\b\nACTION is one of:\n" + "\n".join(f"  {action}" for action in get_args(Action))
)


@statement.command("sign", help=SIGN_HELP)
@click.argument("action", metavar="ACTION", type=click.Choice(get_args(Action)))
@click.option("--officer", required=True, help="Who signs: the officer's id.")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False), help="That officer's P-256 private key (PEM).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A parameter: name=text, name=@FILE (its text) or name:=JSON; repeatable.")
@click.option("--params-json", help="A JSON object of parameters (FILE or '-'); --param entries override it.")
@click.option("--now", help="The statement's time (ISO 8601 with zone), for tests and demos; default: now.")
@output_option
def statement_sign(action: str, officer: str, key_file: str, params: tuple[str, ...], params_json: str | None, now: str | None, output: str | None) -> None:
    key = read_officer_key(key_file, "--key")
    made = governance_call(make_statement, action, _params(params, params_json), officer=officer, at=parse_now(now))
    envelope = sign(made, key)
    _write(envelope.to_json(), output)
    if output is not None:
        emit({"signed": output, "action": action, "officer": officer, "statement": envelope.digest})


@statement.command("cosign")
@click.argument("file")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False), help="The co-signing officer's P-256 private key (PEM).")
@output_option
def statement_cosign(file: str, key_file: str, output: str | None) -> None:
    """Add a second officer's signature to the statement in FILE (written back to FILE unless
    -o); prints what was co-signed, to be read before signing."""
    envelope = governance_call(parse_envelope, read_input(file))
    try:
        shown = Statement.model_validate_json(_payload(envelope.payload))
    except ValueError:
        raise click.BadParameter(f"{file} does not carry a valid statement", param_hint="FILE") from None
    cosigned = governance_call(cosign, envelope, read_officer_key(key_file, "--key"))
    target = output or file
    if target == "-":
        raise click.UsageError("give -o FILE to co-sign a statement read from stdin")
    _write(cosigned.to_json(), target)
    emit({"cosigned": target, "signatures": len(cosigned.signatures), **shown.model_dump(mode="json", exclude={"v"})})


def _payload(payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise click.BadParameter("the statement's payload is not base64", param_hint="FILE") from None


@statement.command("submit")
@click.argument("file")
@click.option("--now", help="The service's time (ISO 8601 with zone), for tests and demos; recorded as a clock override.")
@policy_option
@click.pass_obj
def statement_submit(obj: Context, file: str, now: str | None, policy_dir: str) -> None:
    """Verify and apply the signed statement in FILE (or '-'). Exit 0 applied, 1 refused."""
    engine = decision_engine(obj, policy_dir)
    emit_act(submit(obj, read_input(file), now, engine=engine, router=AlertRouter(obj.store, policies=engine.policies)))
