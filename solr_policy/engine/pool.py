"""Admission in worker processes, feeding the one writer: ``Engine.decide_many(..., processes=True)``.

Admission (hardened parse, XMLDSig verify, typed request) is the costly, lock-free stage; in
threads it shares the GIL with the writer, so a process deciding a stream uses about one core.
Here it runs in worker processes, each with its own store connection (certificates only),
while this process decides and commits groups in input order, exactly as the thread path:

    raws --chunks of `batch`--> workers: admit() each --> (time, decision id, Admitted|InputRefusal)
         --in input order--> Engine.decide_group (one transaction per chunk) --> decisions

What comes back is what admission derived from the SIGNED content (the typed request, the
signer, the signed bytes and their digest); the writer pairs it with the raw bytes it sent,
which it records, and decides on what came back. (Pickle carries it: it is read only from
these workers, never from input.) Workers are started with ``spawn``: a forked child would
share the parent's open SQLite/PostgreSQL connections. At most ``2 * workers + 1`` chunks are
in flight, so memory does not grow with the stream. An exception inside admission refuses
that request (``engine.internal-error``); a worker that dies or stops answering ends the run
with ``AdmissionFailed`` (the decisions yielded before it are recorded; the rest were not
decided), never a hang.
"""

from __future__ import annotations

import io
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from solr_policy.crypto.verify import Verifier
from solr_policy.duis.parser import ParserLimits
from solr_policy.engine.admit import Admitted, InputRefusal, admit
from solr_policy.records import Signer

if TYPE_CHECKING:
    from solr_policy.decision import Decision
    from solr_policy.engine import Engine, Pending

# Below this many requests, processes cost more to start (~1 s) than they save.
AUTO_MIN_REQUESTS = 2048
# A chunk of a few hundred requests takes well under a second to admit; a worker silent for
# this long is stuck, and the run ends with an error rather than waiting for ever.
CHUNK_TIMEOUT_S = 300.0


class AdmissionFailed(RuntimeError):
    """A worker process died or stopped answering: the requests not yet decided were not."""


class ProcessesUnavailable(ValueError):
    """Admission in processes was asked for on a store no other process can open."""


@dataclass(frozen=True)
class AdmissionSetup:
    """What a worker needs to admit as the engine's own verifier does (picklable)."""

    store: str  # an SQLite file path or a postgresql:// URL
    schema_dir: str | None
    limits: ParserLimits
    backend: str


def setup_for(engine: Engine) -> AdmissionSetup | None:
    """How a worker process opens the engine's store and verifier; None if it cannot (a store
    that is not a file or URL another process can open)."""
    from solr_policy.store import SqliteStore, is_postgres_url

    store: Any = engine.store
    if isinstance(store, SqliteStore):
        if not store.path.is_file():
            return None
        location = str(store.path.resolve())
    elif is_postgres_url(getattr(store, "url", None)):
        location = store.url
    else:
        return None
    verifier = engine.verifier
    schema = verifier.schema
    return AdmissionSetup(location, str(Path(schema.path).parent) if schema is not None else None, verifier.limits, verifier.backend)


def choose(engine: Engine, raws: Iterable[bytes], processes: bool | None) -> tuple[Iterable[bytes], AdmissionSetup | None]:
    """The setup to admit ``raws`` in processes with, or None for threads; and ``raws`` again
    (what was looked at to choose is put back). ``processes=None`` (auto): processes when the
    store can be opened by them and the input has at least ``AUTO_MIN_REQUESTS`` requests."""
    if processes is False:
        return raws, None
    setup = setup_for(engine)
    if setup is None:
        if processes:
            raise ProcessesUnavailable("admission in processes needs a store another process can open (an SQLite file or a PostgreSQL URL)")
        return raws, None
    if processes:
        return raws, setup
    stream = iter(raws)
    head = list(islice(stream, AUTO_MIN_REQUESTS))
    return chain(head, stream), (setup if len(head) == AUTO_MIN_REQUESTS else None)


def decide_in_processes(
    engine: Engine, setup: AdmissionSetup, raws: Iterable[bytes], *, now: datetime | None, batch: int, workers: int
) -> Iterator[Decision]:
    """``Engine.decide_many`` with admission in ``workers`` processes (see the module)."""
    for group in admit_in_processes(setup, raws, now=now, batch=batch, workers=workers):
        yield from engine.decide_group(group)


def admit_in_processes(
    setup: AdmissionSetup, raws: Iterable[bytes], *, now: datetime | None, batch: int, workers: int,
    timeout: float = CHUNK_TIMEOUT_S,
) -> Iterator[list[Pending]]:
    """Groups of admitted requests, in input order, admitted by ``workers`` processes."""
    from solr_policy.engine import Pending

    workers, batch = max(1, workers), max(1, batch)
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker, initargs=(setup,))
    in_flight: deque[tuple[list[bytes], Future[bytes]]] = deque()
    depth = 2 * workers  # one chunk being admitted by each worker, one waiting for each
    finished = False
    try:
        chunks = _chunks(raws, batch)
        while True:
            while len(in_flight) <= depth:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                try:
                    in_flight.append((chunk, executor.submit(_admit_chunk, chunk, now)))
                except BrokenProcessPool as exc:  # a worker died while its chunk was queued
                    raise AdmissionFailed(_died(exc)) from None
            if not in_flight:
                break
            chunk, future = in_flight.popleft()
            generation, admitted = _result(future, timeout)
            yield [Pending(raw, when, decision_id, outcome, generation) for raw, (when, decision_id, outcome) in zip(chunk, admitted)]
        finished = True
    finally:
        _stop(executor, graceful=finished)


Admissions = tuple[int | None, list[tuple[datetime, str, Admitted | InputRefusal]]]  # (certificates' generation, each)


def _result(future: Future[bytes], timeout: float) -> Admissions:
    try:
        data = future.result(timeout=timeout)
    except BrokenProcessPool as exc:
        raise AdmissionFailed(_died(exc)) from None
    except FutureTimeout:
        raise AdmissionFailed(f"an admission worker gave no answer in {timeout:.0f} s") from None
    except Exception as exc:  # noqa: BLE001 - e.g. a result that could not be sent back
        raise AdmissionFailed(f"admission failed in a worker process ({type(exc).__name__}: {exc})") from None
    result: Admissions = pickle.loads(data)
    return result


def _died(exc: BrokenProcessPool) -> str:
    return f"an admission worker process died or could not start ({exc})"


def _stop(executor: ProcessPoolExecutor, *, graceful: bool) -> None:
    """Stop the workers: at the end, let them exit; on an error, KeyboardInterrupt or an
    abandoned generator, drop what is queued and end them now (they hold no state)."""
    if graceful:
        executor.shutdown(wait=True)
        return
    processes = list(getattr(executor, "_processes", {}).values())  # no public way to end them before 3.14
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


def _chunks(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    stream = iter(items)
    while chunk := list(islice(stream, size)):
        yield chunk


# -- in the worker process --------------------------------------------------------------------
_verifier: Verifier | None = None


def _start_worker(setup: AdmissionSetup) -> None:
    """Open the store (for certificates) and the verifier, as the engine's own."""
    global _verifier
    # Ctrl-C goes to the whole process group: the parent decides when the workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker outlives a parent killed with SIGKILL (it holds its own end of the task queue,
    # so it would wait for ever): it ends when its parent's sentinel says the parent is gone.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="solr-admit-parent", daemon=True).start()
    from solr_policy.duis.xsd import DuisSchema
    from solr_policy.store import open_store

    schema = DuisSchema.from_folder(setup.schema_dir) if setup.schema_dir is not None else None
    _verifier = Verifier(open_store(setup.store), schema=schema, limits=setup.limits, backend=setup.backend)


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _admit_chunk(raws: list[bytes], now: datetime | None) -> bytes:
    """Admit each request as ``Engine.prepare`` does; one that makes admission raise is refused."""
    verifier = _verifier
    if verifier is None:
        raise RuntimeError("the admission worker was not started")
    out: list[tuple[datetime, str, Admitted | InputRefusal]] = []
    fixed = now.astimezone(timezone.utc) if now is not None else None
    # One generation read per chunk; the writer admits again, in its transaction, any request
    # whose certificates' generation is no longer the store's (Engine._decide_in_tx).
    certificates = verifier.certificates.view()
    for raw in raws:
        when = fixed or datetime.now(timezone.utc)
        try:
            outcome: Admitted | InputRefusal = admit(raw, verifier, when, certificates=certificates)
        except Exception as exc:  # noqa: BLE001 - default deny: one bad request must not end the run
            outcome = InputRefusal("engine.internal-error", f"the request could not be admitted ({type(exc).__name__}); refused by default")
        out.append((when, str(uuid.uuid4()), outcome))
    return _dumps((certificates.generation, out))


def _dumps(results: Admissions) -> bytes:
    buffer = io.BytesIO()
    _CompactPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(results)
    return buffer.getvalue()


class _CompactPickler(pickle.Pickler):
    """Pickles a chunk's results with less for the writer to unpickle: one copy of each signer
    (a chunk is mostly one User's stream), and pydantic models as their field values (they
    were validated when admission built them; they are rebuilt as they were, not re-validated)."""

    def __init__(self, file: io.BytesIO, protocol: int) -> None:
        super().__init__(file, protocol=protocol)
        self._signers: dict[Signer, Signer] = {}

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is Signer:
            try:
                first = self._signers.setdefault(obj, obj)
            except TypeError:  # not hashable after all: pickled as it is
                return NotImplemented
            if first is not obj:
                return _same, (first,)  # pickled once per chunk, referenced after
        elif isinstance(obj, BaseModel) and obj.__pydantic_extra__ is None and obj.__pydantic_private__ is None:
            return _model, (type(obj), obj.__dict__, obj.__pydantic_fields_set__)
        return NotImplemented


def _same(obj: object) -> object:
    return obj


_new = object.__new__
_set = object.__setattr__


def _model(cls: type[BaseModel], values: dict[str, Any], fields_set: set[str]) -> BaseModel:
    """The model with exactly the state it was pickled with (what pydantic's own __setstate__ sets)."""
    model = _new(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", fields_set)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model
