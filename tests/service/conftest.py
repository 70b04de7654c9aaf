"""A service over a fresh SQLite store holding the SoLR scenario, through Starlette's TestClient."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from solr_policy.service.app import create_app
from solr_policy.service.config import ServiceConfig
from solr_policy.store import open_store
from solr_policy.testing.scenario import SolrScenario
from solr_policy.transparency.checkpoint import generate_log_key, save_private_key

TOKEN = "service-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
XML = {**AUTH, "Content-Type": "application/xml"}


@dataclass
class Service:
    client: TestClient
    scenario: SolrScenario
    config: ServiceConfig
    key: ec.EllipticCurvePrivateKey
    folder: Path

    def decide(self, raw: bytes, path: str = "/v1/decisions") -> dict:
        answer = self.client.post(path, content=raw, headers=XML)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def store(self):
        return open_store(self.config.db)


def build_service(tmp_path: Path, pki, **overrides) -> tuple[ServiceConfig, SolrScenario, ec.EllipticCurvePrivateKey]:
    db = tmp_path / "service.db"
    store = open_store(db)
    scenario = SolrScenario(pki=pki).install(store, now=datetime.now(timezone.utc))
    store.close()
    key = generate_log_key()
    save_private_key(tmp_path / "log-key.pem", key)
    values = dict(
        db=str(db), policies=str(scenario.write_policies(tmp_path / "policies")), api_token=TOKEN,
        log_key=str(tmp_path / "log-key.pem"), checkpoint_file=str(tmp_path / "checkpoint"), checkpoint_interval=0,
    )
    return ServiceConfig(**{**values, **overrides}), scenario, key


@pytest.fixture()
def service(tmp_path, pki):
    config, scenario, key = build_service(tmp_path, pki)
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        yield Service(client, scenario, config, key, tmp_path)
