"""Web Push sending: VAPID keys, one push with pywebpush, and what to do about the outcome.

Pure of the database: the notification job loads a queued push, calls `send_push`, and acts on
the `SendResult` (mark sent, delete the subscription, reschedule with `backoff_seconds`, or
give up). pywebpush 2.5 pitfalls handled here: its default TTL of 0 drops the message for an
offline phone and its default (aiohttp) timeout is none at all, so both are required arguments;
it mutates `vapid_claims`, so every send gets a fresh dict; it checks no payload size.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async

MAX_PAYLOAD_BYTES = 3000  # push services must take 4096 bytes of ciphertext; keep a margin
URGENCIES = ("very-low", "low", "normal", "high")
BACKOFF_BASE_SECONDS = 15.0
BACKOFF_CAP_SECONDS = 3600.0

_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+=*", text):
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


class VapidKeys:
    """The server's VAPID key pair (EC P-256), kept as a PKCS#8 PEM file readable by owner only."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("VAPID keys must be on the P-256 curve")
        self._private_key = private_key
        self._vapid = Vapid(private_key=private_key)

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> VapidKeys:
        """Load the key at `path`, creating it (mode 0600) the first time.

        Creation is atomic: a complete file appears under `path` or nothing does, and when two
        processes start together both end up with the one key that won.
        """
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            private_key = ec.generate_private_key(ec.SECP256R1())
            pem = private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(fd, "wb") as file:
                    os.fchmod(file.fileno(), 0o600)
                    file.write(pem)
                    file.flush()
                    os.fsync(file.fileno())
                with contextlib.suppress(FileExistsError):  # another process won: use theirs
                    os.link(temporary, path)
            finally:
                os.unlink(temporary)
        return cls.from_pem(path.read_bytes())

    @classmethod
    def from_pem(cls, pem: bytes) -> VapidKeys:
        private_key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ValueError("VAPID key file does not hold a P-256 (EC) private key")
        return cls(private_key)

    @classmethod
    def generate(cls) -> VapidKeys:
        """A key pair that lives in memory only."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key_b64url(self) -> str:
        """The applicationServerKey the browser passes to `pushManager.subscribe()`."""
        raw = self._private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return _b64url(raw)

    @property
    def vapid(self) -> Vapid:
        """The py_vapid signer pywebpush takes as `vapid_private_key`."""
        return self._vapid


class PushOutcome(StrEnum):
    DELIVERED = "delivered"  # 2xx: the push service accepted the message
    GONE = "gone"  # 404/410: the subscription is dead, delete it
    RETRY = "retry"  # 408, 429, 5xx, network error, timeout: try again later
    FAILED = "failed"  # other answers: retrying the same request will not help


@dataclass(frozen=True)
class SendResult:
    outcome: PushOutcome
    status_code: int | None = None  # None when no HTTP answer came back
    retry_after: float | None = None  # seconds, from Retry-After
    reason: str = ""

    @property
    def delivered(self) -> bool:
        return self.outcome is PushOutcome.DELIVERED

    @property
    def gone(self) -> bool:
        return self.outcome is PushOutcome.GONE

    @property
    def retry(self) -> bool:
        return self.outcome is PushOutcome.RETRY

    @property
    def failed(self) -> bool:
        return self.outcome is PushOutcome.FAILED


def push_topic(key: str) -> str:
    """A Topic header value (1-32 base64url characters) for `key`, e.g. a request id.

    A key that already fits is used as is; anything else becomes 32 characters of its SHA-256.
    """
    if _TOPIC.match(key):
        return key
    return _b64url(hashlib.sha256(key.encode("utf-8")).digest())[:32]


def validate_subscription(subscription: dict[str, Any]) -> None:
    """Raise ValueError unless `subscription` is a usable browser PushSubscription JSON."""
    endpoint = subscription.get("endpoint")
    if not isinstance(endpoint, str) or not re.match(r"^https?://[^/\s]+/", endpoint):
        raise ValueError("subscription endpoint must be an http(s) URL")
    keys = subscription.get("keys")
    if not isinstance(keys, dict):
        raise ValueError("subscription has no keys")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str):
        raise ValueError("subscription keys need p256dh and auth strings")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_decode(p256dh))
        auth_secret = _b64url_decode(auth)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("subscription p256dh is not a P-256 public key") from exc
    if len(auth_secret) != 16:
        raise ValueError("subscription auth secret must be 16 bytes")


async def send_push(
    subscription: dict[str, Any],
    payload: dict[str, Any],
    *,
    vapid: VapidKeys,
    sub_claim: str,
    ttl: int,
    urgency: str,
    topic: str | None,
    timeout: float,
) -> SendResult:
    """Encrypt `payload` (as JSON) for `subscription` and POST it to its push service.

    ValueError for mistakes of the caller (payload over 3000 bytes, bad ttl, urgency or
    sub_claim); every answer of the push service, and its silence, is a `SendResult`.
    """
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    size = len(data.encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"push payload is {size} bytes, more than {MAX_PAYLOAD_BYTES}")
    if ttl < 0:
        raise ValueError("ttl must be >= 0 seconds")
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {URGENCIES}")
    if not sub_claim.startswith(("mailto:", "https:")):
        raise ValueError("sub_claim must be a mailto: or https: URI")
    if timeout <= 0:
        raise ValueError("timeout must be > 0 seconds")
    try:
        validate_subscription(subscription)
    except ValueError as exc:
        return SendResult(PushOutcome.FAILED, reason=f"invalid subscription: {exc}")

    headers: dict[str, str | int | float] = {"Urgency": urgency}
    if topic is not None:
        headers["Topic"] = push_topic(topic)
    try:
        response = await webpush_async(
            subscription_info=subscription,
            data=data,
            vapid_private_key=vapid.vapid,
            vapid_claims={"sub": sub_claim},  # fresh per send: pywebpush adds aud and exp to it
            content_encoding="aes128gcm",
            ttl=ttl,
            headers=headers,
            timeout=timeout,
        )
    except WebPushException as exc:
        if exc.response is None:
            return SendResult(PushOutcome.FAILED, reason=exc.message)
        status = exc.status_code
        reason = await _response_text(exc.response)
        return classify_response(status, exc.retry_after, reason)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return SendResult(PushOutcome.RETRY, reason=f"{type(exc).__name__}: {exc}")
    return classify_response(response.status, response.headers.get("Retry-After"), "")


def classify_response(status: int | None, retry_after: str | None, reason: str) -> SendResult:
    """What an HTTP answer of a push service means for the queued push."""
    if status is None:
        return SendResult(PushOutcome.RETRY, reason=reason)
    if 200 <= status < 300:
        return SendResult(PushOutcome.DELIVERED, status)
    if status in (404, 410):
        return SendResult(PushOutcome.GONE, status, reason=reason)
    if status in (408, 429) or status >= 500:
        return SendResult(PushOutcome.RETRY, status, parse_retry_after(retry_after), reason)
    return SendResult(PushOutcome.FAILED, status, reason=reason)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Delay before retry number `attempt` (1 = first retry): 15 s doubling, capped at 1 h.

    Deterministic (no jitter) so schedules are testable; a push service's Retry-After wins when
    it asks for longer.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    exponent = min(attempt - 1, 32)  # 15 * 2**32 is far past the cap
    delay = min(BACKOFF_BASE_SECONDS * 2.0**exponent, BACKOFF_CAP_SECONDS)
    if retry_after is not None and retry_after > delay:
        return float(retry_after)
    return delay


async def _response_text(response: Any) -> str:
    try:
        text = await response.text()
    except (aiohttp.ClientError, UnicodeDecodeError, RuntimeError):
        return ""
    return str(text)[:500]
