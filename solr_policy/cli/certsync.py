"""``solr-policy certs sync FILE.xml.gz``: an SMKI repository extract, streamed (see ``smki_sync``)."""

from __future__ import annotations

import sys
from collections import Counter

import click

from solr_policy.cli.common import EXIT_USAGE, Context, emit
from solr_policy.smki_sync import sync_extract


@click.command("sync")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_obj
def certs_sync(obj: Context, file: str) -> None:
    """Apply an SMKI repository extract (full or delta, .xml.gz or .xml): Organisation
    Certificates that chain to a trust anchor and their statuses (logged); Device Certificates skipped."""
    show = sys.stderr.isatty()

    def progress(counts: Counter[str]) -> None:
        if show:
            click.echo(f"\rrecords {counts['records']:,}  imported {counts['imported']:,}  devices skipped {counts['device_skipped']:,}",
                       err=True, nl=False)

    try:
        result = sync_extract(file, obj.store, progress=progress)
    except OSError as exc:  # gzip.BadGzipFile too
        click.echo(f"cannot read {file}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - lxml's XMLSyntaxError and the like: one line, no traceback
        click.echo(f"cannot read {file}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", err=True)
        sys.exit(EXIT_USAGE)
    finally:
        if show:
            click.echo("", err=True)
    emit(result)
