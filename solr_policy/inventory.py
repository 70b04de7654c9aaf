"""Device inventories (the DCC's are tabular): CSV or JSON lines, streamed in constant memory.

Columns (CSV header, or keys of each JSON object): ``id`` (EUI-64), ``type`` (ESME, GSME, ...),
``smets`` (SMETS1 or SMETS2+), ``supplier`` (a Party already in the store). The file is read
twice: first every row is checked (errors name the line and the field; nothing is written if
any row is wrong), then the rows are written in one transaction with a ``world.import-devices``
log entry (file, SHA-256 of its bytes, count). Neither pass keeps more than one row and the
set of Parties in memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from solr_policy.store.base import Store
from solr_policy.world import Device

COLUMNS = ("id", "type", "smets", "supplier")
MAX_ERRORS = 20  # errors listed before the check stops


class InventoryError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, row) or (line, what is wrong with it), lazily."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or set(reader.fieldnames) != set(COLUMNS):
                yield 1, f"the header must name the columns {', '.join(COLUMNS)} (it names {', '.join(reader.fieldnames or [])})"
                return
            for row in reader:
                yield reader.line_num, row
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not JSON ({exc.msg})"
                continue
            except RecursionError:  # json's C scanner recurses per nesting level: "[[[[..."
                yield number, "not JSON (nested too deeply)"
                continue
            yield number, row if isinstance(row, dict) else "not a JSON object"


def _device(row: dict[str, Any] | str, parties: set[str]) -> Device | str:
    if isinstance(row, str):
        return row
    extra = set(row) - set(COLUMNS)
    if extra:
        return f"unknown field {sorted(extra)[0]!r}"
    try:
        device = Device.model_validate(row)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "row"
        return f"field {field}: {first['msg']}"
    if device.supplier not in parties:
        return f"field supplier: {device.supplier!r} is not a Party in the store"
    return device


def import_devices(path: str | Path, store: Store, *, progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Check every row, then write them all; raises ``InventoryError`` (nothing written) or OSError.
    ``progress(phase, rows)`` is called every 1,000 rows of each pass, ``checked`` then ``written``."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise InventoryError([f"{path}: give a .csv or .jsonl file"])
    parties = {p.id for p in store.list_parties()}
    errors: list[str] = []
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        for block in iter(lambda: raw.read(io.DEFAULT_BUFFER_SIZE * 64), b""):
            digest.update(block)
    try:
        for line, row in _rows(path):
            checked = _device(row, parties)
            if progress is not None and line % 1000 == 0:
                progress("checked", line)
            if isinstance(checked, str):
                errors.append(f"{path} line {line}: {checked}")
                if len(errors) >= MAX_ERRORS:
                    break
    except UnicodeDecodeError:
        errors.append(f"{path}: not UTF-8")
    if errors:
        raise InventoryError(errors)
    count = 0
    with store.transaction():
        for line, row in _rows(path):
            device = _device(row, parties)
            if not isinstance(device, Device):  # the file changed since it was checked: write none of it
                raise InventoryError([f"{path} line {line}: {device} (the file changed while it was imported; nothing was written)"])
            store.put_device(device)
            count += 1
            if progress is not None and count % 1000 == 0:
                progress("written", count)
        loaded = {"devices": count, "sha256": digest.hexdigest()}
        store.append_audit("world.import-devices", {"file": str(path), **loaded}, at=datetime.now(timezone.utc))
    return loaded
