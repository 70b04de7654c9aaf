"""``solr-policy world import-devices FILE.csv|.jsonl``: a Device inventory, streamed."""

from __future__ import annotations

import sys

import click

from solr_policy.cli.common import EXIT_REFUSED, EXIT_USAGE, Context, emit
from solr_policy.inventory import InventoryError, import_devices as import_inventory


@click.command("import-devices")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_obj
def import_devices(obj: Context, file: str) -> None:
    """Import Devices from FILE (.csv with columns id,type,smets,supplier, or .jsonl): every
    row checked first, then all written in one transaction and logged; a wrong row writes nothing."""
    show = sys.stderr.isatty()

    def progress(phase: str, count: int) -> None:
        if show and count % 10_000 == 0:
            click.echo(f"\r{phase} {count:,} rows", err=True, nl=False)

    try:
        loaded = import_inventory(file, obj.store, progress=progress)
    except InventoryError as exc:
        if show:
            click.echo("", err=True)  # end the progress line
        for error in exc.errors:
            click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_REFUSED)
    except OSError as exc:
        if show:
            click.echo("", err=True)
        click.echo(f"cannot read {file}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    if show:
        click.echo("", err=True)
    emit({"imported": file, **loaded})
