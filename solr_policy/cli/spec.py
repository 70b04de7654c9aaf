"""``solr-policy spec``: the living specification (Gherkin features) for SECAS."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from solr_policy.cli.common import EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from solr_policy.spec_report import SpecReportError, write_report


@click.group()
def spec() -> None:
    """The living specification (Gherkin features) for SECAS."""


@spec.command("report")
@click.option("--out", "out_dir", default="out/spec", show_default=True, type=click.Path(file_okay=False), help="Folder for spec-report.html and spec-report.md.")
@click.option("--from-json", "cucumber_json", type=click.Path(exists=True, dir_okay=False), help="Use this cucumber JSON instead of running the features.")
def spec_report(out_dir: str, cucumber_json: str | None) -> None:
    """Run the features and write the requirements report (HTML + Markdown). Exit 1 if a requirement is not proven."""
    if cucumber_json is None:
        click.echo("running the Gherkin features with pytest-bdd (about half a minute)...", err=True)
    try:
        page, statuses = write_report(Path(out_dir), cucumber_json=Path(cucumber_json) if cucumber_json else None)
    except SpecReportError as exc:
        click.echo(f"no report: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    for status in statuses.values():
        click.echo(f"{status.code}  {status.state:5}  {status.passing}/{len(status.scenarios)} scenarios passing")
    click.echo(f"report: {page}")
    sys.exit(EXIT_OK if all(s.state == "green" for s in statuses.values()) else EXIT_REFUSED)
