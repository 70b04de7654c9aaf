"""Public test helpers: a throw-away SMKI test PKI, GBCS and DUIS request builders, CSRs,
a ready-made SoLR scenario, and log capture. Used by the tests, the Gherkin specs, the demo and the
benchmark; embedders may use them to test their own pipelines.

Nothing here is used on the decision path.
"""

from solr_policy.testing.csr import make_csr
from solr_policy.testing.gbcs import build_general_signing
from solr_policy.testing.logs import capture_logs
from solr_policy.testing.pki import Issued, TestPki, new_key_pem, public_pem
from solr_policy.testing.scenario import RequestBuilder, SolrScenario, request_document

__all__ = [
    "Issued",
    "RequestBuilder",
    "SolrScenario",
    "TestPki",
    "build_general_signing",
    "capture_logs",
    "make_csr",
    "new_key_pem",
    "public_pem",
    "request_document",
]
