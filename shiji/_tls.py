"""
HTTPS: the certificate and key of ``[general] tls_certificate`` and
``tls_private_key``, read once at start and checked, so that a bad file
stops shijid with one clear line instead of failing the first handshake.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, List

from .config import ConfigError, ShijiConfig

__all__ = ["tls_options"]

_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)


def _read(config: ShijiConfig, option: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(
            config.path, f"cannot be read: {e.strerror}: {path}", "general", option
        ) from None


def tls_options(config: ShijiConfig) -> Any:
    """
    The server-side TLS options of ``config``, or ``None`` for plain HTTP.

    :raises ConfigError: pyOpenSSL is missing, a file cannot be read or
        holds no PEM certificate (or key), or the key is not the
        certificate's.
    """
    general = config.general
    certificate_path, key_path = general.tls_certificate, general.tls_private_key
    if certificate_path is None or key_path is None:
        return None
    try:
        from OpenSSL import SSL, crypto
        from twisted.internet import ssl
    except ImportError:
        raise ConfigError(
            config.path,
            "serving HTTPS needs pyOpenSSL: pip install 'shiji[tls]'",
            "general",
            "tls_certificate",
        ) from None
    blocks = _CERTIFICATE.findall(_read(config, "tls_certificate", certificate_path))
    key_data = _read(config, "tls_private_key", key_path)
    try:
        certificates: List[Any] = [ssl.Certificate.loadPEM(b).original for b in blocks]
    except crypto.Error:
        certificates = []
    if not certificates:
        raise ConfigError(
            config.path,
            f"holds no PEM certificate: {certificate_path}",
            "general",
            "tls_certificate",
        )
    try:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, key_data)
    except crypto.Error:
        raise ConfigError(
            config.path,
            f"holds no PEM private key (without a passphrase): {key_path}",
            "general",
            "tls_private_key",
        ) from None
    try:
        options = ssl.CertificateOptions(
            privateKey=key,
            certificate=certificates[0],
            extraCertChain=certificates[1:],
        )
        options.getContext()
    except (SSL.Error, ValueError):
        raise ConfigError(
            config.path,
            f"is not the private key of tls_certificate: {key_path}",
            "general",
            "tls_private_key",
        ) from None
    return options
