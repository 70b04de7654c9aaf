"""Mutual TLS at the node (``serve --ssl-ca-certs``): a connection without a client certificate
the CA signed never reaches HTTP; with one, decisions need no token."""

from __future__ import annotations

import ipaddress
import ssl
import urllib.error
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from solr_policy.store import open_store
from solr_policy.testing.scenario import SolrScenario
from solr_policy.transparency.checkpoint import generate_log_key, save_private_key

from .nodes import post, start_node, stop, wait_ready


def _issue(folder: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, usage=None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, key


def test_mutual_tls(tmp_path, pki):
    ca = _issue(tmp_path, "ca", None)
    _issue(tmp_path, "node", ca, ExtendedKeyUsageOID.SERVER_AUTH)
    _issue(tmp_path, "pipeline", ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    stranger_ca = _issue(tmp_path, "stranger-ca", None)
    _issue(tmp_path, "stranger", stranger_ca, ExtendedKeyUsageOID.CLIENT_AUTH)

    db = str(tmp_path / "tls.db")
    store = open_store(db)
    scenario = SolrScenario(pki=pki).install(store, now=datetime.now(timezone.utc))
    store.close()
    save_private_key(tmp_path / "log-key.pem", generate_log_key())
    tls = ("--ssl-certfile", str(tmp_path / "node.pem"), "--ssl-keyfile", str(tmp_path / "node.key"), "--ssl-ca-certs", str(tmp_path / "ca.pem"))
    node = start_node(db, str(scenario.write_policies(tmp_path / "policies")), None, str(tmp_path / "log-key.pem"), tmp_path, extra=tls)

    def context(client: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        if client:
            ctx.load_cert_chain(str(tmp_path / f"{client}.pem"), str(tmp_path / f"{client}.key"))
        return ctx

    url = f"https://127.0.0.1:{node.port}"
    try:
        wait_ready(node, url=url, context=context("pipeline"))
        raw = scenario.requests().switch_to_credit(scenario.device("electricity meter (SMETS1)"))
        for client in (None, "stranger"):
            with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
                post(url + "/v1/decisions", raw, None, context=context(client))
        status, answer = post(url + "/v1/decisions", raw, None, context=context("pipeline"))
        assert status == 200 and answer["outcome"] == "allow"
    finally:
        stop(node)
