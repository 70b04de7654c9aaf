"""``solr-policy rules``: the decision rules in pipeline order."""

from __future__ import annotations

import click

from solr_policy.cli.common import emit
from solr_policy.rules import RULES, markdown_table


@click.command("rules")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.option("--markdown", is_flag=True, help="The Markdown table the README shows.")
def rules_command(as_json: bool, markdown: bool) -> None:
    """List the decision rules in pipeline order: id, requirement, DUIS code, what each refuses."""
    if markdown:
        click.echo(markdown_table(), nl=False)
    elif as_json:
        emit([{"rule": r.id, "requirement": r.requirement, "code": r.code, "refuses": r.summary} for r in RULES])
    else:
        for r in RULES:
            click.echo(f"{r.id:36} {r.requirement}  {r.code or '-':4} {r.summary}")
