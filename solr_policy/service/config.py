"""What one service node is started with (the serve command builds it from its flags and Settings)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

MAX_REQUEST_BYTES = 1024 * 1024 + 64 * 1024  # the pre-scan's 1 MiB, plus a margin for the HTTP layer to leave it the refusal
MAX_BATCH_ITEMS = 100
MAX_BATCH_BYTES = 16 * 1024 * 1024  # a batch of many small requests, not of 100 largest ones: memory per call stays bounded
BODY_TIMEOUT_SECONDS = 10.0  # a client sending its body slower than this is cut off (slow-loris)


@dataclass(frozen=True)
class ServiceConfig:
    db: str
    policies: str
    schema_dir: str | None = None
    api_token: str | None = None  # bearer token for the decision and alert endpoints
    mtls: bool = False  # the listener verifies client certificates (uvicorn --ssl-cert-reqs 2, or a proxy)
    log_key: str | None = None  # the log's private key: checkpoints and proofs; None: no verifiable log
    checkpoint_file: str | None = None
    checkpoint_interval: float = 30.0  # seconds between checkpoints while the log grows; 0: only after acts
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_batch_items: int = MAX_BATCH_ITEMS
    max_batch_bytes: int = MAX_BATCH_BYTES
    body_timeout: float = BODY_TIMEOUT_SECONDS
    synchronous: str = "FULL"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServiceConfig":
        return cls(**json.loads(text))

    def log_key_path(self) -> Path | None:
        return Path(self.log_key) if self.log_key else None
