"""Checking a publisher's signature: ECDSA on P-256 with SHA-256 over the raw body, the
signature base64-encoded DER, as GitHub signs secret scanning alerts.

Pure functions over the ``cryptography`` library (the ``[secret-scanning]`` extra); no Django.
"""

from __future__ import annotations

import base64
import binascii

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
except ImportError as exc:
    raise ImportError(
        "The secret scanning endpoint checks signatures with the 'cryptography' package: "
        "pip install 'django-async-api-key[secret-scanning]'."
    ) from exc

__all__ = [
    "MAX_SIGNATURE_LENGTH",
    "is_signed_by",
    "load_publisher_key",
]

#: A base64 DER ECDSA P-256 signature is at most 96 characters; longer values are refused
#: before they are decoded.
MAX_SIGNATURE_LENGTH = 200


def load_publisher_key(pem: str | bytes) -> ec.EllipticCurvePublicKey | None:
    """The P-256 public key in ``pem``, or ``None`` if it is not one (another curve, another
    algorithm, or not a PEM public key at all)."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    return key


def is_signed_by(public_key: ec.EllipticCurvePublicKey, body: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64 of a DER ECDSA signature) signs ``body`` with ``public_key``.

    Any malformed signature (not base64, not DER, too long) is simply not a valid one.
    """
    if not signature or len(signature) > MAX_SIGNATURE_LENGTH:
        return False
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(der, body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
