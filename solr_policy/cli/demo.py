"""``solr-policy demo``: the demo SoLR event on the embedded default store."""

from __future__ import annotations

import sys

import click

from solr_policy.demo import run_demo


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False), default=None, help="Where the demo keeps its database and files (default: a fresh temporary folder).")
def demo(workdir: str | None) -> None:
    """Run the demo SoLR event on the embedded default store."""
    sys.exit(run_demo(workdir))
