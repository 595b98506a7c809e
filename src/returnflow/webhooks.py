"""Webhook signatures: HMAC-SHA256 of the raw body, compared in constant time.

Shopify signs each webhook with the app's secret and sends the base64 digest in the
``X-Shopify-Hmac-Sha256`` header. Verify the *raw* body, before any JSON parsing.

>>> body = b'{"id": 1}'
>>> header = sign(body, "s3cret")
>>> verify(body, header, "s3cret"), verify(body + b" ", header, "s3cret")
(True, False)
>>> verify(body, header[:-4], "s3cret"), verify(body, "not base64!", "s3cret")
(False, False)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["HEADER", "sign", "verify"]

HEADER = "X-Shopify-Hmac-Sha256"
"""The header that carries the signature."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(body: bytes, secret: str | bytes) -> str:
    """The base64 HMAC-SHA256 of ``body`` under ``secret``, as the header carries it."""
    digest = hmac.new(_key(secret), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, signature: str | bytes | None, secret: str | bytes) -> bool:
    """Whether ``signature`` is ``body``'s HMAC under ``secret``. A missing, malformed,
    truncated or forged signature is ``False``; the comparison takes constant time."""
    if not signature or not secret:
        return False
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(_key(secret), body, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)
