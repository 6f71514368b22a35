"""
Password hashing with scrypt, a memory-hard key derivation function, and a
random salt per user. Hashing takes tens of milliseconds, so it runs in the
reactor's thread pool.
"""

import base64
import hashlib
import hmac
import os

from twisted.internet import threads

N, R, P, LENGTH = 2**14, 8, 1, 32


def _scrypt_function():
    if hasattr(hashlib, "scrypt"):
        return lambda password, salt: hashlib.scrypt(
            password, salt=salt, n=N, r=R, p=P, dklen=LENGTH
        )
    try:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    except ImportError:
        return None
    return lambda password, salt: Scrypt(
        salt=salt, length=LENGTH, n=N, r=R, p=P
    ).derive(password)


scrypt = _scrypt_function()


def _hash(password, salt):
    return scrypt(password.encode("utf-8"), salt)


def _encode(salt, digest):
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


#: A stored form that no known password matches (a digest of zeros), for
#: checking a login to an unknown email in the time a known one takes.
UNMATCHABLE = _encode(bytes(16), bytes(LENGTH))


def hash_password(password):
    """A Deferred of the stored form of ``password``."""
    salt = os.urandom(16)
    return threads.deferToThread(lambda: _encode(salt, _hash(password, salt)))


def check_password(password, stored):
    """A Deferred of whether ``password`` matches the ``stored`` form."""
    _, n, r, p, salt, digest = stored.split("$")
    if (int(n), int(r), int(p)) != (N, R, P):
        raise ValueError("stored with other scrypt parameters")
    salt, digest = base64.b64decode(salt), base64.b64decode(digest)
    return threads.deferToThread(
        lambda: hmac.compare_digest(_hash(password, salt), digest)
    )
