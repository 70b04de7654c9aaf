"""Service nodes as real processes (``solr-policy serve``) on loopback, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class NodeProcess:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_node(
    db: str, policies: str, token: str | None, log_key: str, folder: Path, *, workers: int = 1, checkpoint_interval: float = 1.0,
    extra: tuple[str, ...] = (),
) -> NodeProcess:
    port = free_port()
    log = folder / f"node-{port}.log"
    env = {**os.environ, "SOLR_POLICY_LOG_FORMAT": "json", "SOLR_POLICY_LOG_LEVEL": "WARNING"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("SOLR_POLICY_API_TOKEN", None)
    if token is not None:
        env["SOLR_POLICY_API_TOKEN"] = token
    command = [
        sys.executable, "-m", "solr_policy.cli", "--db", db, "serve", "--port", str(port), "--workers", str(workers),
        "--policies", policies, "--log-key", log_key, "--checkpoint-interval", str(checkpoint_interval), *extra,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return NodeProcess(process, port, log)


def wait_ready(node: NodeProcess, timeout: float = 30.0, *, url: str | None = None, context: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise RuntimeError(f"node on port {node.port} exited {node.process.returncode}: {node.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen((url or node.url) + "/readyz", timeout=2, context=context) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"node on port {node.port} not ready in {timeout} s: {node.log.read_text()[-2000:]}")


def stop(node: NodeProcess) -> None:
    if node.process.poll() is None:
        node.process.terminate()
        try:
            node.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()


def post(
    url: str, body: bytes, token: str | None, *, content_type: str = "application/xml", timeout: float = 30.0,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict]:
    headers = {"Content-Type": content_type} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
