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

from returnflow.errors import ConfigurationError, InvalidPayload

__all__ = ["HEADER", "sign", "verify"]

HEADER = "X-Shopify-Hmac-Sha256"
"""The header that carries the signature."""


def _key(secret: object) -> bytes:
    if isinstance(secret, str):
        try:
            return secret.encode()
        except UnicodeEncodeError:
            raise ConfigurationError(
                "is not valid Unicode (a lone surrogate)", field="secret", value="..."
            ) from None
    if isinstance(secret, (bytes, bytearray)):
        return bytes(secret)
    raise ConfigurationError(
        f"must be str or bytes, not {type(secret).__name__}", field="secret", value="..."
    )


def _digest(body: object, secret: object) -> bytes:
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidPayload("body", body, "must be the raw bytes of the request, as received")
    return hmac.new(_key(secret), body, hashlib.sha256).digest()


def sign(body: bytes, secret: str | bytes) -> str:
    """The base64 HMAC-SHA256 of ``body`` under ``secret``, as the header carries it.
    A ``body`` that is not bytes (text, already decoded) is
    :class:`~returnflow.errors.InvalidPayload` naming ``body``; a ``secret`` that is neither
    ``str`` nor ``bytes`` :class:`~returnflow.errors.ConfigurationError` naming ``secret``
    (its value is never shown)."""
    return base64.b64encode(_digest(body, secret)).decode("ascii")


def verify(body: bytes, signature: str | bytes | None, secret: str | bytes) -> bool:
    """Whether ``signature`` is ``body``'s HMAC under ``secret``. A missing, malformed,
    truncated or forged signature is ``False``, and so is one of another type (a list of
    the header's values); the comparison takes constant time. ``body`` and ``secret`` are
    checked as :func:`sign` checks them."""
    expected = _digest(body, secret or b"")
    if not signature or not secret or not isinstance(signature, (str, bytes)):
        return False
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected)
