"""The OpenAPI 3.1 description: every route described, the served file the committed one, and
property-based tests of the app against it (schemathesis; bounded to keep the suite fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route
from starlette.testclient import TestClient

from solr_policy.service.app import create_app

from .conftest import AUTH, build_service

COMMITTED = Path(__file__).resolve().parents[2] / "solr_policy" / "service" / "openapi.json"


@pytest.fixture(scope="module")
def app(tmp_path_factory, pki):
    config, _, _ = build_service(tmp_path_factory.mktemp("openapi"), pki)
    application = create_app(config)
    with TestClient(application):  # runs the lifespan: the node is open for every call below
        yield application


def test_every_route_is_described_and_nothing_else(app):
    spec = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.1")
    routes = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route) for m in (r.methods or ()) if m != "HEAD"}
    described = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert routes == described


def test_served_description_is_the_committed_file(app):
    served = TestClient(app).get("/openapi.json")
    assert served.status_code == 200
    assert served.content == COMMITTED.read_bytes()


class _Delegate:
    """The ASGI app schemathesis calls, made at import; the fixture points it at a service."""

    target = None

    async def __call__(self, scope, receive, send):
        await self.target(scope, receive, send)


schema = schemathesis.openapi.from_dict(json.loads(COMMITTED.read_text(encoding="utf-8")))
schema.app = _Delegate()


@pytest.fixture(autouse=True)
def _serve(app):
    schema.app.target = app


@schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_app_keeps_to_its_description(case):
    case.call_and_validate(
        headers=AUTH,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
