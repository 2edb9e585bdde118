"""Shopify-style webhook signatures: base64 HMAC-SHA256 of the raw body, constant-time compare."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def sign(raw: bytes, secret: str) -> str:
    """The X-Shopify-Hmac-Sha256 header value for `raw` signed with `secret`."""
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def verify(raw: bytes, header: str | None, secrets: list[str]) -> bool:
    """True when `header` is the signature of `raw` under any of `secrets` (rotation: newest first).

    A missing, non-base64 or wrong-length header fails. Every secret is compared in constant time.
    """
    if not header or not secrets:
        return False
    try:
        received = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(received) != hashlib.sha256().digest_size:
        return False
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), raw, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, received)
    return matched
