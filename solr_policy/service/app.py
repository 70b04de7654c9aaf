"""The Starlette app: routes over the engine, governance, alert router and verifiable log.

Engine, router and governance are synchronous (the store is DB-API): each call runs in
Starlette's thread pool, so one slow decision never stalls the event loop. Every error is
problem details (RFC 9457) with a rule id; nothing answers with a traceback.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import hmac
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesParser
from importlib import resources
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from solr_policy import logs
from solr_policy.alerts.routing import AlertRouter
from solr_policy.decision import Decision
from solr_policy.engine import Engine
from solr_policy.errors import GovernanceRefused, StoreUnavailable
from solr_policy.governance.acts import Governance
from solr_policy.policy import PolicySet
from solr_policy.records import AlertStatus, QuarantineStatus
from solr_policy.service import metrics
from solr_policy.service.config import ServiceConfig
from solr_policy.service.events import event_view
from solr_policy.service.problems import Problem, problem_response
from solr_policy.store import open_store
from solr_policy.store.base import Store
from solr_policy.transparency.checkpoint import read_private_key
from solr_policy.transparency.log import LogKeeper
from solr_policy.transparency.merkle import LogRefused

XML_TYPES = ("application/xml", "text/xml")
# Only to order a batch: the engine reads the RequestID again from the signed content.
_REQUEST_ID = re.compile(rb"<(?:\w{1,8}:)?RequestID>\s*([0-9A-Fa-f-]{16,23}):[0-9A-Fa-f-]{16,23}:(\d{1,20})\s*</")

log = logs.get_logger("solr_policy.service")


@dataclass
class Node:
    """What one worker process opened at start-up: its own store, engine and friends."""

    store: Store
    engine: Engine
    router: AlertRouter
    governance: Governance
    keeper: LogKeeper | None


def create_app(config: ServiceConfig) -> Starlette:
    state: dict[str, Node] = {}
    stop = threading.Event()

    def node() -> Node:
        if "node" not in state:
            raise Problem(503, "service.starting", "the service is not ready yet")
        return state["node"]

    def store_or_none() -> Store | None:
        return state["node"].store if "node" in state else None

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if "node" in state:  # a test client inside another: one node, closed by the outer one
            yield
            return
        # Opened here, in the worker, after any fork: a pool or an SQLite handle never crosses processes.
        state["node"] = await run_in_threadpool(_open_node, config)
        stop.clear()
        checkpointer = None
        if state["node"].keeper is not None and config.checkpoint_interval > 0:
            checkpointer = threading.Thread(target=_checkpoint_loop, args=(state["node"], config.checkpoint_interval, stop), daemon=True)
            checkpointer.start()
        try:
            yield
        finally:
            stop.set()
            if checkpointer is not None:
                checkpointer.join(timeout=5)
            closing = state.pop("node")
            await run_in_threadpool(closing.engine.close)  # what was handed to its writer is decided first
            closing.store.close()

    # -- guards ---------------------------------------------------------------------------
    def require_pipeline(request: Request) -> None:
        """Decision and alert endpoints: the DCC's pipeline only (mutual TLS or the bearer token)."""
        if config.mtls:
            return  # the TLS listener accepted only connections with a verified client certificate
        if not config.api_token:
            raise Problem(401, "auth.not-configured", "this node has neither mutual TLS nor an API token configured: refused by default")
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.api_token.encode()):
            raise Problem(401, "auth.token", "a valid bearer token is required (Authorization: Bearer ...)")

    async def body(request: Request, limit: int, types: tuple[str, ...]) -> bytes:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in types:
            raise Problem(415, "http.content-type", f"the body must be {' or '.join(types)}, not {media or 'unnamed'}")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise Problem(413, "http.body-too-large", f"the body is larger than {limit} bytes")
        chunks, size = [], 0
        try:
            with anyio.fail_after(config.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:  # a chunked body: stop reading at the limit
                        raise Problem(413, "http.body-too-large", f"the body is larger than {limit} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            raise Problem(408, "http.body-timeout", f"the body was not received within {config.body_timeout} s") from None
        return b"".join(chunks)

    # -- decisions --------------------------------------------------------------------------
    async def decide_one(raw: bytes, *, dry_run: bool) -> dict[str, Any]:
        started = time.perf_counter()
        n = node()
        decision = await run_in_threadpool(n.engine.evaluate if dry_run else n.engine.decide, raw)
        return _answer(decision, dry_run, started)

    async def decide_in_order(raws: list[bytes]) -> list[dict[str, Any]]:
        """One originator's requests of a batch, in counter order: handed to the engine's
        writer together, so they share transactions (not one commit each)."""
        started = time.perf_counter()
        engine = node().engine
        decisions = await run_in_threadpool(lambda: list(engine.decide_many(raws)))
        return [_answer(decision, False, started) for decision in decisions]

    async def post_decision(request: Request) -> Response:
        require_pipeline(request)
        raw = await body(request, config.max_request_bytes, XML_TYPES)
        return JSONResponse(await decide_one(raw, dry_run=False))

    async def post_evaluation(request: Request) -> Response:
        require_pipeline(request)
        raw = await body(request, config.max_request_bytes, XML_TYPES)
        return JSONResponse(await decide_one(raw, dry_run=True))

    async def post_batch(request: Request) -> Response:
        require_pipeline(request)
        raw_body = await body(request, config.max_batch_bytes, ("application/json", "multipart/mixed", "multipart/form-data"))
        # Parsed off the event loop: a large body must not stall this worker's other requests.
        raws = await run_in_threadpool(_batch_items, raw_body, request.headers.get("content-type", ""), config)
        answers: list[dict[str, Any] | None] = [None] * len(raws)

        async def run_group(indexes: list[int]) -> None:
            # one originator: one after the other, counters rising
            for i, answer in zip(indexes, await decide_in_order([raws[i] for i in indexes])):
                answers[i] = answer

        async with anyio.create_task_group() as group:
            for indexes in _by_originator(raws):
                group.start_soon(run_group, indexes)
        return JSONResponse({"decisions": answers})

    # -- alerts -----------------------------------------------------------------------------
    async def post_alert(request: Request) -> Response:
        require_pipeline(request)
        raw = await body(request, config.max_request_bytes, XML_TYPES)
        delivery = await run_in_threadpool(node().router.route, raw)
        if delivery.status == "refused":
            metrics.count_boundary(delivery.rule or "alert.refused")
        return JSONResponse(delivery.model_dump(mode="json"))

    # -- governance ---------------------------------------------------------------------------
    async def post_statement(request: Request) -> Response:
        # No login: the officers' signatures on the statement are the authority.
        data = await body(request, config.max_request_bytes, ("application/json", "application/vnd.dsse.envelope+json"))
        try:
            act = await run_in_threadpool(node().governance.submit, data, now=datetime.now(timezone.utc))
        except GovernanceRefused as refusal:
            raise Problem(422, refusal.rule, refusal.message) from None
        return JSONResponse(act.to_json_dict())

    async def get_instructions(request: Request) -> Response:
        items = await run_in_threadpool(node().store.instructions)
        return JSONResponse([i.model_dump(mode="json") for i in items])

    async def get_officers(request: Request) -> Response:
        items = await run_in_threadpool(node().store.list_officers)
        return JSONResponse([o.public_json() for o in items])

    async def get_adt_files(request: Request) -> Response:
        items = await run_in_threadpool(node().store.list_adt_files)
        return JSONResponse([a.to_json_dict() for a in items])

    async def get_quarantine(request: Request) -> Response:
        status = request.query_params.get("status")
        if status is not None and status not in {s.value for s in QuarantineStatus}:
            raise Problem(400, "http.query", f"status must be one of {', '.join(s.value for s in QuarantineStatus)}")
        items = await run_in_threadpool(lambda: node().store.list_quarantine(status=QuarantineStatus(status) if status else None))
        return JSONResponse([q.to_json_dict() for q in items])

    async def get_pending_alerts(request: Request) -> Response:
        items = await run_in_threadpool(lambda: node().store.alert_deliveries(status=AlertStatus.PENDING))
        return JSONResponse([d.to_json_dict() for d in items])

    async def get_event(request: Request) -> Response:
        reference = request.path_params["reference"]
        view = await run_in_threadpool(event_view, node().store, reference)
        if view is None:
            raise Problem(404, "event.unknown", f"there is no instruction {reference!r}")
        return JSONResponse(view)

    # -- audit ----------------------------------------------------------------------------
    def keeper() -> LogKeeper:
        k = node().keeper
        if k is None:
            raise Problem(404, "log.not-configured", "this node has no log key: it keeps no checkpoints")
        return k

    async def get_checkpoint(request: Request) -> Response:
        newest = await run_in_threadpool(keeper().newest_checkpoint)
        if newest is None:
            raise Problem(404, "log.no-checkpoint", "no checkpoint has been signed yet")
        checkpoint, note = newest
        return JSONResponse({"size": checkpoint.size, "root": checkpoint.root_hash.hex(), "time": checkpoint.time.isoformat(),
                             "origin": checkpoint.origin, "note": note})

    async def get_inclusion(request: Request) -> Response:
        seq = _int(request.path_params["seq"], "seq")
        return _proof(await _log_call(keeper().prove_inclusion, seq))

    async def get_consistency(request: Request) -> Response:
        first = _int(request.query_params.get("first", ""), "first")
        return _proof(await _log_call(keeper().prove_consistency, first))

    # -- operations -------------------------------------------------------------------------
    async def healthz(request: Request) -> Response:
        return JSONResponse({"alive": True})

    async def readyz(request: Request) -> Response:
        checks = await run_in_threadpool(_readiness, state.get("node"))
        ready = all(c["ok"] for c in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def get_metrics(request: Request) -> Response:
        text = await run_in_threadpool(metrics.render, store_or_none)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(request: Request) -> Response:
        return Response(openapi_text(), media_type="application/json")

    routes = [
        Route("/v1/decisions", post_decision, methods=["POST"]),
        Route("/v1/decisions:batch", post_batch, methods=["POST"]),
        Route("/v1/evaluations", post_evaluation, methods=["POST"]),
        Route("/v1/alerts", post_alert, methods=["POST"]),
        Route("/v1/alerts/pending", get_pending_alerts, methods=["GET"]),
        Route("/v1/statements", post_statement, methods=["POST"]),
        Route("/v1/instructions", get_instructions, methods=["GET"]),
        Route("/v1/officers", get_officers, methods=["GET"]),
        Route("/v1/adt-files", get_adt_files, methods=["GET"]),
        Route("/v1/quarantine", get_quarantine, methods=["GET"]),
        Route("/v1/events/{reference}", get_event, methods=["GET"]),
        Route("/v1/audit/checkpoint", get_checkpoint, methods=["GET"]),
        Route("/v1/audit/proofs/inclusion/{seq}", get_inclusion, methods=["GET"]),
        Route("/v1/audit/proofs/consistency", get_consistency, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", get_metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        Problem: _on_problem, HTTPException: _on_http, StoreUnavailable: _on_store, Exception: _on_error,
    }
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


# -- helpers, outside the closure ---------------------------------------------------------
def _open_node(config: ServiceConfig) -> Node:
    from solr_policy.duis.xsd import DuisSchema

    store = open_store(config.db, synchronous=config.synchronous)
    policies = PolicySet.load_dir(config.policies)
    schema = DuisSchema.from_folder(config.schema_dir) if config.schema_dir else None
    key_path = config.log_key_path()
    keeper = None
    if key_path is not None:
        key = read_private_key(key_path)
        keeper = LogKeeper(store, key.public_key(), key=key, checkpoint_file=config.checkpoint_file)
    # Group commit: concurrent requests share a transaction (one fsync for many decisions,
    # and no queue of threads sleeping on SQLite's write lock); each is answered after its commit.
    engine = Engine(store, policies, schema=schema, audit_log=keeper, group_commit=True)
    router = AlertRouter(store, policies=policies, schema=schema)
    return Node(store, engine, router, Governance(store, engine=engine, router=router, log=keeper), keeper)


def _checkpoint_loop(node: Node, interval: float, stop: threading.Event) -> None:
    """Sign a checkpoint whenever the log grew since the newest one, every ``interval`` s."""
    assert node.keeper is not None
    while not stop.wait(interval):
        try:
            newest = node.store.latest_checkpoint()
            if newest is None or node.store.log_head().size > newest.size:
                node.keeper.checkpoint(datetime.now(timezone.utc))
        except Exception as exc:  # noqa: BLE001 - a missed checkpoint is retried next time; readyz shows its age
            log.warning("checkpoint_failed", error=type(exc).__name__)


def _answer(decision: Decision, dry_run: bool, started: float) -> dict[str, Any]:
    """A decision's JSON answer, counted in the metrics (no store read: the engine gave its log position)."""
    metrics.count_decision(decision, "evaluation" if dry_run else "decision", time.perf_counter() - started)
    return _decision_json(decision, dry_run)


def _decision_json(decision: Decision, dry_run: bool) -> dict[str, Any]:
    data = decision.record()
    data["decided_at"] = decision.decided_at.isoformat()
    data["dry_run"] = dry_run
    data["log_position"] = None if dry_run else decision.log_position  # given by the engine's commit
    return data


def _batch_items(data: bytes, media: str, config: ServiceConfig) -> list[bytes]:
    """The requests of a batch: JSON (``{"requests": [base64, ...]}`` or the bare list), or
    multipart with one ``application/xml`` part per request."""
    if media.lower().startswith("multipart/"):  # media types are case-insensitive
        raws = _multipart_items(data, media, config.max_batch_items)
    else:
        raws = _json_items(data, config.max_batch_items)
    if not raws:
        raise Problem(400, "batch.malformed", "the batch holds no request")
    _check_count(len(raws), config.max_batch_items)
    for n, raw in enumerate(raws):
        if len(raw) > config.max_request_bytes:
            raise Problem(413, "http.body-too-large", f"request {n} of the batch is larger than {config.max_request_bytes} bytes")
    return raws


def _check_count(count: int, max_items: int) -> None:
    if count > max_items:
        raise Problem(413, "batch.too-many", f"a batch holds at most {max_items} requests")


def _json_items(data: bytes, max_items: int) -> list[bytes]:
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "batch.malformed", "the body is not JSON") from None
    except RecursionError:  # json's C scanner recurses per nesting level: "[[[[..." within the body limit
        raise Problem(400, "batch.malformed", "the body is JSON nested too deeply") from None
    items = parsed.get("requests") if isinstance(parsed, dict) else parsed
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise Problem(400, "batch.malformed", 'the body must be {"requests": [base64 of a signed DUIS request, ...]} or that list')
    _check_count(len(items), max_items)  # before decoding any
    raws = []
    for n, item in enumerate(items):
        try:
            raws.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            raise Problem(400, "batch.base64", f"requests[{n}] is not base64") from None
    return raws


def _multipart_items(data: bytes, content_type: str, max_items: int) -> list[bytes]:
    # The standard library's MIME parser, fed the header it needs: no extra dependency.
    header = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    boundary = BytesParser(policy=email.policy.HTTP).parsebytes(header).get_boundary()
    try:
        delimiter = b"\n--" + boundary.encode("latin-1") if boundary else None
    except UnicodeEncodeError:  # an RFC 2231 boundary no body can carry as written
        delimiter = None
    if delimiter is None:
        raise Problem(400, "batch.malformed", "the multipart body cannot be read (boundary?)")
    # Parts counted in C first (an over-estimate: the first delimiter may open the body, the
    # last closes it): the parser builds a message per part, about 0.4 ms each, so a body of
    # many empty parts would hold a worker for minutes before the count refused it.
    _check_count(data.count(delimiter) + data.startswith(delimiter[1:]) - 1, max_items)
    message = BytesParser(policy=email.policy.HTTP).parsebytes(header + data)
    if not message.is_multipart() or message.defects:
        raise Problem(400, "batch.malformed", "the multipart body cannot be read (boundary?)")
    raws = []
    for n, part in enumerate(message.iter_parts()):
        if part.get_content_type() not in XML_TYPES:
            raise Problem(415, "http.content-type", f"part {n} of the batch must be application/xml, not {part.get_content_type()}")
        payload = part.get_payload(decode=True)
        raws.append(payload if isinstance(payload, bytes) else b"")
    return raws


def _by_originator(raws: list[bytes]) -> list[list[int]]:
    """Indexes grouped by originator, each group in rising counter order (unreadable ones alone)."""
    groups: dict[bytes | int, list[tuple[int, int]]] = {}
    for i, raw in enumerate(raws):
        found = _REQUEST_ID.search(raw)
        if found is None:
            groups[i] = [(0, i)]
        else:
            originator = found.group(1).replace(b"-", b"").upper()
            groups.setdefault(originator, []).append((int(found.group(2)), i))
    return [[i for _, i in sorted(group)] for group in groups.values()]


def _readiness(node: Node | None) -> dict[str, dict[str, Any]]:
    if node is None:
        return {"store": {"ok": False, "detail": "not opened yet"}}
    checks: dict[str, dict[str, Any]] = {}
    try:
        size = node.store.log_head().size
        checks["store"] = {"ok": True, "detail": f"reachable; the log holds {size} entries"}
    except StoreUnavailable as fault:
        return {"store": {"ok": False, "detail": fault.message}}
    roles = sorted(node.engine.policies.role_codes)
    checks["policies"] = {"ok": bool(roles), "detail": "roles " + ", ".join(roles) if roles else "no policy loaded"}
    if node.keeper is None:
        checks["log"] = {"ok": True, "detail": "no log key on this node: no checkpoint to be behind"}
    else:
        try:
            behind = node.keeper.behind()
        except (LogRefused, StoreUnavailable) as exc:
            behind = getattr(exc, "message", str(exc))
        checks["log"] = {"ok": behind is None, "detail": behind or "not behind its newest checkpoint"}
    return checks


def _int(text: str, name: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise Problem(400, "http.query", f"{name} must be a non-negative whole number")
    return int(text)


async def _log_call(fn: Callable[[int], str], value: int) -> str:
    try:
        return await run_in_threadpool(fn, value)
    except LogRefused as refusal:
        raise Problem(404 if refusal.rule in ("log.no-entry", "log.no-checkpoint") else 400, refusal.rule, refusal.message) from None


def _proof(document: str) -> Response:
    return Response(document, media_type="application/json")


_OPENAPI: list[str] = []


def openapi_text() -> str:
    if not _OPENAPI:
        _OPENAPI.append(resources.files("solr_policy.service").joinpath("openapi.json").read_text(encoding="utf-8"))
    return _OPENAPI[0]


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    if exc.status in (400, 401, 408, 413, 415):
        metrics.count_boundary(exc.rule)
    return problem_response(exc, request.url.path)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    rule = {404: "http.not-found", 405: "http.method"}.get(exc.status_code, "http.error")
    return problem_response(Problem(exc.status_code, rule, str(exc.detail)), request.url.path)


async def _on_store(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    return problem_response(Problem(503, exc.rule, exc.message), request.url.path)


async def _on_error(request: Request, exc: Exception) -> Response:
    log.error("request_failed", error=type(exc).__name__, path=request.url.path)
    return problem_response(Problem(500, "service.internal-error", "the request could not be served; nothing was decided"), request.url.path)
