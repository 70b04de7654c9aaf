"""``solr-policy serve``: the decision service (Starlette on uvicorn), one or several workers."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import tempfile
from pathlib import Path

import click
import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from solr_policy.cli.common import Context, load_policies, policy_option, schema_option
from solr_policy.service.app import create_app
from solr_policy.service.config import ServiceConfig

# How the serve command hands its configuration to its own worker processes (uvicorn starts
# each with the app factory below); not a setting anyone sets.
CONFIG_VARIABLE = "_SOLR_POLICY_SERVE_CONFIG"


def app_from_environment() -> Starlette:
    """uvicorn's app factory, called in each worker process."""
    return create_app(ServiceConfig.from_json(os.environ[CONFIG_VARIABLE]))


class NoDelayH11(H11Protocol):
    """uvicorn's h11 protocol with Nagle's algorithm off on every connection.

    asyncio turns it off only on sockets whose protocol number says TCP; the listening socket
    uvicorn binds itself for several workers is made with protocol 0, so on its connections an
    answer's last small write waited for the client's delayed ACK: measured 44 ms a request
    with ``--workers 2`` (even for /healthz) against 1-3 ms with one worker."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass  # a connection already gone: uvicorn notices on its own
        super().connection_made(transport)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes; each opens its own store.")
@click.option("--log-key", type=click.Path(exists=True, dir_okay=False), help="The log's private key (PEM): signed checkpoints and proofs.")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False), help="File holding the newest checkpoint, outside the store.")
@click.option("--checkpoint-interval", default=30.0, show_default=True, type=click.FloatRange(0), help="Seconds between checkpoints while the log grows (0: only after governance acts).")
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="TLS: this node's certificate (PEM).")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS: its private key.")
@click.option("--ssl-ca-certs", type=click.Path(exists=True, dir_okay=False), help="Mutual TLS: the CA(s) of the pipeline's client certificates; every connection must present one.")
@click.option("--timeout-keep-alive", default=5, show_default=True, type=click.IntRange(1, 600), help="Seconds an idle connection is kept.")
@schema_option
@policy_option
@click.pass_obj
def serve(
    obj: Context, host: str, port: int, workers: int, log_key: str | None, checkpoint_file: str | None, checkpoint_interval: float,
    ssl_certfile: str | None, ssl_keyfile: str | None, ssl_ca_certs: str | None, timeout_keep_alive: int,
    schema_dir: str | None, policy_dir: str,
) -> None:
    """Serve decisions over HTTP (OpenAPI at /openapi.json). Needs mutual TLS or SOLR_POLICY_API_TOKEN."""
    settings = obj.settings
    mtls = ssl_ca_certs is not None
    if mtls and not (ssl_certfile and ssl_keyfile):
        raise click.UsageError("--ssl-ca-certs (mutual TLS) needs --ssl-certfile and --ssl-keyfile")
    if not mtls and not settings.api_token:
        # Default deny: the decision endpoints would refuse everyone, so say so now.
        raise click.UsageError("set SOLR_POLICY_API_TOKEN, or give --ssl-ca-certs for mutual TLS (see README, The decision service)")
    load_policies(policy_dir)  # a bad policy folder stops here with its message, not in each worker
    # The store's log key and checkpoint file, as every other command finds them (Settings),
    # unless given here; a store that was never init-ed has no key and keeps the chain only.
    if log_key is None and Path(settings.log_key).is_file():
        log_key = str(settings.log_key)
    config = ServiceConfig(
        db=str(settings.db), policies=str(policy_dir), schema_dir=str(schema_dir) if schema_dir else None,
        api_token=settings.api_token, mtls=mtls, log_key=log_key,
        # On PostgreSQL the store keeps the checkpoints (several nodes, one log) unless a file is given.
        checkpoint_file=checkpoint_file or (str(settings.checkpoint) if log_key and isinstance(settings.db, Path) else None),
        checkpoint_interval=checkpoint_interval, synchronous=settings.synchronous,
    )
    os.environ[CONFIG_VARIABLE] = config.to_json()
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # The workers' counters in files one scrape adds up (prometheus_client's multiprocess mode).
        metrics_dir = tempfile.mkdtemp(prefix="solr-policy-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "solr_policy.cli.serve:app_from_environment", factory=True, host=host, port=port, workers=workers,
            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, ssl_ca_certs=ssl_ca_certs,
            ssl_cert_reqs=ssl.CERT_REQUIRED if ssl_ca_certs else ssl.CERT_NONE, timeout_keep_alive=timeout_keep_alive,
            limit_concurrency=1000, log_level=settings.log_level.lower(), access_log=False, server_header=False,
            http=NoDelayH11,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
