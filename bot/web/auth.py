"""Webhook authentication: GitLab's secret token and, optionally, its Standard Webhooks signature.

GitLab sends the secret token in plain text in ``X-Gitlab-Token``; it is compared in constant time on
bytes (``hmac.compare_digest`` raises ``TypeError`` on non-ASCII ``str``). When a signing token
(``whsec_<base64 key>``) is configured, the ``webhook-signature`` header must also carry a valid
HMAC-SHA256 over ``webhook-id.webhook-timestamp.body`` from within the timestamp tolerance, which
stops the replay of a captured delivery after a few minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

SIGNING_PREFIX = "whsec_"
DEFAULT_TOLERANCE = timedelta(minutes=5)


def header_bytes(value: str) -> bytes:
    """The bytes a header value arrived as.

    WSGI servers decode header bytes as Latin-1, so encoding back to Latin-1 restores them exactly (a
    UTF-8 secret then compares equal to its UTF-8 bytes). Test clients may pass any ``str``; those fall
    back to UTF-8 with unencodable characters escaped, which can never raise.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def token_matches(presented: str | None, secret: bytes) -> bool:
    """Constant-time comparison of the ``X-Gitlab-Token`` header with the configured secret."""
    if presented is None or not secret:
        return False
    return hmac.compare_digest(header_bytes(presented), secret)


def parse_signing_token(token: str) -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` signing token; ``ValueError`` (one line) if malformed."""
    text = token.strip()
    if not text.startswith(SIGNING_PREFIX):
        raise ValueError("GITLAB_WEBHOOK_SIGNING_TOKEN must look like whsec_<base64 key>")
    try:
        key = base64.b64decode(text[len(SIGNING_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("GITLAB_WEBHOOK_SIGNING_TOKEN: the part after whsec_ is not valid base64") from None
    if len(key) < 16:
        raise ValueError(f"GITLAB_WEBHOOK_SIGNING_TOKEN: key is {len(key)} bytes, expected at least 16 (GitLab: 32)")
    return key


def _digest(key: bytes, msg_id: bytes, timestamp: bytes, body: bytes) -> bytes:
    mac = hmac.new(key, msg_id + b"." + timestamp + b"." + body, hashlib.sha256)
    return base64.b64encode(mac.digest())


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1`` signature value (base64) GitLab would send for this delivery."""
    return _digest(key, msg_id.encode(), timestamp.encode(), body).decode()


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    reason: str = ""


def check_signature_headers(
    *,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> SignatureCheck:
    """What can be checked before the body is read: the headers are there and the timestamp is recent."""
    if not msg_id or not timestamp or not signature:
        return SignatureCheck(False, "missing webhook-id, webhook-timestamp or webhook-signature")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return SignatureCheck(False, "webhook-timestamp is not a Unix time in seconds")
    skew = abs(now.timestamp() - int(timestamp))
    if skew > tolerance.total_seconds():
        return SignatureCheck(False, f"webhook-timestamp is {skew:.0f} s away from now")
    return SignatureCheck(True)


def verify_signature(
    key: bytes,
    *,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> SignatureCheck:
    """Check a Standard Webhooks signature. Never raises; the reason is for the log, not the client."""
    early = check_signature_headers(
        msg_id=msg_id, timestamp=timestamp, signature=signature, now=now, tolerance=tolerance
    )
    if not early.ok or not msg_id or not timestamp or not signature:
        return early
    expected = _digest(key, header_bytes(msg_id), timestamp.encode(), body)
    for entry in signature.split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(header_bytes(value), expected):
            return SignatureCheck(True)
    return SignatureCheck(False, "no webhook-signature entry matches")
