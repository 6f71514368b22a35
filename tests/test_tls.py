"""
HTTPS: shijid serves TLS on its port with the configured certificate, and
refuses bad certificate files at start with one line.
"""

import datetime
import http.client
import ipaddress
import json
import ssl

import pytest
from daemons import PROBE_VERSION, failing_run

pytest.importorskip("OpenSSL", reason="HTTPS needs pyOpenSSL (the tls extra)")
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.slow


def self_signed(directory, name="shijid"):
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def https(daemon, cert_path, path="/probe/probe", headers=PROBE_VERSION):
    context = ssl.create_default_context(cafile=str(cert_path))
    connection = http.client.HTTPSConnection(
        "127.0.0.1", daemon.port, context=context, timeout=10
    )
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_shijid_serves_https(shijid, tmp_path, workers):
    cert_path, key_path = self_signed(tmp_path)
    daemon = shijid(
        {
            "general": {
                "tls_certificate": str(cert_path),
                "tls_private_key": str(key_path),
                "workers": workers,
            }
        }
    )
    status, _, body = https(daemon, cert_path)
    assert status == 200
    assert json.loads(body)["client_ip"] == "127.0.0.1"
    status, _, body = https(daemon, cert_path, "/_health", {})
    assert (status, json.loads(body)) == (200, {"status": "serving"})
    # Plain HTTP on the HTTPS port gets no answer.
    plain = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=5)
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        plain.request("GET", "/_health")
        plain.getresponse().read()
    plain.close()


def test_bad_certificate_files_stop_shijid_with_one_line(tmp_path):
    cert_path, key_path = self_signed(tmp_path)
    _, other_key = self_signed(tmp_path, "other")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    cases = [
        (
            {"tls_certificate": str(cert_path)},
            "[general] tls_private_key: is required with tls_certificate",
        ),
        (
            {
                "tls_certificate": str(tmp_path / "missing.crt"),
                "tls_private_key": str(key_path),
            },
            f"[general] tls_certificate: cannot be read: No such file or directory: {tmp_path / 'missing.crt'}",
        ),
        (
            {"tls_certificate": str(not_pem), "tls_private_key": str(key_path)},
            f"[general] tls_certificate: holds no PEM certificate: {not_pem}",
        ),
        (
            {"tls_certificate": str(cert_path), "tls_private_key": str(not_pem)},
            f"[general] tls_private_key: holds no PEM private key (without a passphrase): {not_pem}",
        ),
        (
            {"tls_certificate": str(cert_path), "tls_private_key": str(other_key)},
            f"[general] tls_private_key: is not the private key of tls_certificate: {other_key}",
        ),
    ]
    for index, (general, expected) in enumerate(cases):
        path, line = failing_run(tmp_path / f"case{index}", {"general": general})
        assert line == f"shijid: error: {path}: {expected}"
