"""``solr-policy decide --batch PATH``: many requests through group commit, with progress on
stderr (at a terminal) and a JSON summary on stdout."""

from __future__ import annotations

import gc
import json
from datetime import datetime
import sys
from typing import IO

import click

from solr_policy.bulk import ProgressLine, decide_batch, read_batch
from solr_policy.cli.common import EXIT_OK, EXIT_USAGE, emit
from solr_policy.decision import Decision
from solr_policy.engine import Engine
from solr_policy.engine.pool import ProcessesUnavailable


def run_batch(engine: Engine, source: str, *, now: datetime | None, group: int, workers: int, decisions_file: str | None,
              processes: bool | None = None) -> None:
    out: IO[str] | None = None
    if decisions_file:
        try:
            out = open(decisions_file, "w", encoding="utf-8")
        except OSError as exc:
            raise click.UsageError(f"cannot write {decisions_file}: {exc.strerror}") from None

    def record(where: str, decision: Decision) -> None:
        if out is not None:
            out.write(json.dumps({"source": where, **decision.record()}, default=str) + "\n")

    progress = ProgressLine(sys.stderr) if sys.stderr.isatty() else None
    # What is loaded by now (modules, policies) lives as long as the process: kept out of the
    # collector's full passes, which otherwise walk it every few thousand decisions (about 6 %
    # of the deciding process's CPU in a long batch). Given back at the end (tests run in-process).
    gc.freeze()
    try:
        summary = decide_batch(engine, read_batch(source), now=now, group=group, workers=workers, processes=processes,
                               on_decision=record, progress=progress)
    except OSError as exc:
        click.echo(f"cannot read {source}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    except ProcessesUnavailable as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        gc.unfreeze()
        if out is not None:
            out.close()
        if progress is not None:
            progress.done()
    emit({"batch": source, **summary.record()})
    if summary.error is not None:
        click.echo(f"the batch stopped: {summary.error}", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_OK)
