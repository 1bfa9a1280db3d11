"""Verifying a webhook message as Omnirail signs it: Standard Webhooks (`webhook-id`,
`webhook-timestamp`, `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
with the endpoint's `whsec_` secret). A receiver needs nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any


class WebhookVerificationError(Exception):
    """A message that does not verify: wrong secret, changed body, missing headers, too old."""


def _header(headers: Mapping[str, Any], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, (list, tuple)) else str(value)
    raise WebhookVerificationError(f"missing {name} header")


def verify(payload: str | bytes, headers: Mapping[str, Any], secret: str, tolerance_seconds: int = 300) -> Any:
    """Checks `payload` (the raw body, as received) against its headers and the endpoint's
    secret, and answers the parsed message. `tolerance_seconds` bounds the timestamp's distance
    from now, against replays. Raises `WebhookVerificationError`."""
    body = payload.decode() if isinstance(payload, bytes) else payload
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("timestamp is not a number") from None
    if abs(time.time() - sent) > tolerance_seconds:
        raise WebhookVerificationError("timestamp outside the tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    for candidate in signatures.split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return json.loads(body)
    raise WebhookVerificationError("no signature matches")
