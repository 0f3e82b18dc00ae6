"""A real Web Push service for tests (RFC 8030 + RFC 8291 + RFC 8292), on 127.0.0.1.

It is an HTTP server in a background thread, so sync tests, async tests and other processes
(an app under uvicorn, say) can all push to it. It checks what a real push service checks and
decrypts every message with the subscriber keys it generated:

    with PushService() as service:
        service.expect_application_server_key(vapid.public_key_b64url)
        subscription = service.new_subscription()
        ...  # the code under test pushes to subscription["endpoint"]
        [delivery] = service.wait_for(1, timeout=5)
        assert json.loads(delivery.payload) == {...}
        assert service.rejections == []

Each POST must carry a VAPID `Authorization` (`vapid t=<jwt>,k=<key>`, or the older
`WebPush <jwt>` with `Crypto-Key: p256ecdsa=<key>`) whose ES256 signature verifies with `k`,
whose `k` equals the subscription's applicationServerKey (the signature alone passes with any
key pair), whose `aud` is this service's origin, whose `exp` is in the future and at most 24 h
ahead and whose `sub` is a `mailto:` or `https:` URI; a `TTL` header; `Content-Encoding:
aes128gcm`; a body of at most 4096 bytes that decrypts. A request failing a check is answered
400, 401, 403, 404 or 413 with a JSON reason and recorded in `.rejections`. A valid request is
recorded in `.received` and answered with the next scripted answer (`respond`, `stall`), or 201.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_BODY_BYTES = 4096  # RFC 8030 §7.2: push services must accept at least this much
MAX_JWT_LIFETIME = 24 * 60 * 60  # RFC 8292 §2: exp no more than 24 hours after the request
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_B64URL = re.compile(r"^[A-Za-z0-9_-]+=*$")
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_STALL_LIMIT = 120.0  # a stalled request is let go at stop() or after this many seconds


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))


@dataclass(frozen=True)
class Delivery:
    """A request that passed every check: what the push service would deliver."""

    endpoint: str
    status_returned: int | None  # None: the request was stalled and never answered
    ttl: int
    urgency: str | None
    topic: str | None
    payload: bytes  # decrypted
    headers: dict[str, str]  # lower-case names
    claims: dict[str, Any] = field(default_factory=dict)  # the verified VAPID JWT claims


@dataclass(frozen=True)
class Rejection:
    """A request the service refused because the request itself was wrong."""

    endpoint: str
    status: int
    reason: str
    headers: dict[str, str]


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    stall: bool = False


@dataclass
class _Subscriber:
    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: bytes | None
    answers: deque[_Answer] = field(default_factory=deque)


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PushService:
    def __init__(self, host: str = "127.0.0.1", latency: float = 0.0) -> None:
        self._host = host
        self.latency = latency  # seconds each valid push waits before its answer
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._release_stalls = threading.Event()
        self._subscribers: dict[str, _Subscriber] = {}
        self._default_key: bytes | None = None
        self._received: list[Delivery] = []
        self._rejections: list[Rejection] = []

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> PushService:
        if self._server is not None:
            raise RuntimeError("PushService already started")
        service = self

        class Handler(_Handler):
            push_service = service

        self._release_stalls.clear()
        self._server = ThreadingHTTPServer((self._host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="test-push-service",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._release_stalls.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> PushService:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("PushService not started")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        """What a VAPID `aud` claim must be for this service's endpoints."""
        return f"http://{self._host}:{self.port}"

    # subscriptions and scripted answers --------------------------------------------------

    def expect_application_server_key(self, public_key_b64url: str) -> None:
        """The applicationServerKey of subscriptions created without their own."""
        key = _decode_public_key(public_key_b64url)
        with self._lock:
            self._default_key = key

    def new_subscription(self, application_server_key: str | None = None) -> dict[str, Any]:
        """A browser-style PushSubscription JSON, as `pushManager.subscribe()` returns it."""
        asks = _decode_public_key(application_server_key) if application_server_key else None
        private_key = ec.generate_private_key(ec.SECP256R1())
        p256dh = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        auth_secret = secrets.token_bytes(16)
        sub_id = secrets.token_urlsafe(24)
        endpoint = f"{self.origin}/push/{sub_id}"
        with self._lock:
            self._subscribers[sub_id] = _Subscriber(
                sub_id, endpoint, private_key, auth_secret, asks
            )
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url_encode(p256dh), "auth": b64url_encode(auth_secret)},
        }

    def respond(
        self,
        target: str | Mapping[str, Any],
        status: int,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` valid pushes to `target` (id, endpoint or subscription)."""
        self._queue(target, _Answer(status, dict(headers or {})), times)

    def stall(self, target: str | Mapping[str, Any], times: int = 1) -> None:
        """Read and check the next `times` pushes to `target`, then never answer them."""
        self._queue(target, _Answer(0, {}, stall=True), times)

    def _queue(self, target: str | Mapping[str, Any], answer: _Answer, times: int) -> None:
        with self._lock:
            subscriber = self._subscribers[_subscription_id(target)]
            subscriber.answers.extend([answer] * times)

    # observations ------------------------------------------------------------------------

    @property
    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self._received)

    @property
    def rejections(self) -> list[Rejection]:
        with self._lock:
            return list(self._rejections)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until at least `count` deliveries were received; return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"expected {count} deliveries, got {len(self._received)} "
                        f"(rejections: {[r.reason for r in self._rejections]})"
                    )
                self._changed.wait(left)
            return list(self._received)

    async def wait_for_async(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        return await asyncio.to_thread(self.wait_for, count, timeout)

    # request handling (called on server threads) -----------------------------------------

    def _handle(self, request: _Handler) -> None:
        headers = {name.lower(): value for name, value in request.headers.items()}
        endpoint = f"{self.origin}{request.path}"
        try:
            body = _read_body(request, headers)
            subscriber = self._subscriber_for(request.path)
            delivery = self._check(subscriber, headers, body)
        except _Refused as refused:
            with self._changed:
                self._rejections.append(
                    Rejection(endpoint, refused.status, refused.reason, headers)
                )
                self._changed.notify_all()
            _send(request, refused.status, {"Content-Type": "application/json"}, refused.reason)
            return

        if self.latency > 0:
            time.sleep(self.latency)
        with self._changed:
            answer = subscriber.answers.popleft() if subscriber.answers else None
            status = None if answer and answer.stall else (answer.status if answer else 201)
            self._received.append(_replace_status(delivery, status))
            self._changed.notify_all()

        if answer is None:
            location = f"{self.origin}/message/{secrets.token_urlsafe(16)}"
            _send(request, 201, {"Location": location, "TTL": str(delivery.ttl)}, None)
        elif answer.stall:
            self._release_stalls.wait(_STALL_LIMIT)
            request.close_connection = True
        else:
            _send(request, answer.status, answer.headers, None)

    def _subscriber_for(self, path: str) -> _Subscriber:
        match = re.fullmatch(r"/push/([A-Za-z0-9_-]+)", path)
        with self._lock:
            subscriber = self._subscribers.get(match.group(1)) if match else None
        if subscriber is None:
            raise _Refused(404, "no such subscription")
        return subscriber

    def _check(self, subscriber: _Subscriber, headers: dict[str, str], body: bytes) -> Delivery:
        with self._lock:
            expected_key = subscriber.application_server_key or self._default_key
        key, claims = _verify_vapid(headers)
        if expected_key is None:
            raise _Refused(
                403, "subscription has no applicationServerKey (expect_application_server_key)"
            )
        if key != expected_key:
            raise _Refused(403, "VAPID key k is not the subscription's applicationServerKey")
        _check_claims(claims, self.origin)

        ttl_text = headers.get("ttl")
        if ttl_text is None:
            raise _Refused(400, "missing TTL header")
        if not ttl_text.isdigit():
            raise _Refused(400, f"TTL is not a non-negative integer: {ttl_text!r}")
        urgency = headers.get("urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise _Refused(400, f"invalid Urgency {urgency!r}")
        topic = headers.get("topic")
        if topic is not None and not _TOPIC.match(topic):
            raise _Refused(400, f"Topic must be 1-32 base64url characters: {topic!r}")

        if headers.get("content-encoding", "").lower() != "aes128gcm":
            raise _Refused(400, "Content-Encoding must be aes128gcm")
        if len(body) > MAX_BODY_BYTES:
            raise _Refused(413, f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
        try:
            payload = http_ece.decrypt(
                body,
                private_key=subscriber.private_key,
                auth_secret=subscriber.auth_secret,
                version="aes128gcm",
            )
        except (http_ece.ECEException, InvalidTag, ValueError, struct.error) as exc:
            raise _Refused(400, f"body does not decrypt: {exc!r}") from exc
        return Delivery(
            endpoint=subscriber.endpoint,
            status_returned=None,
            ttl=int(ttl_text),
            urgency=urgency,
            topic=topic,
            payload=payload,
            headers=headers,
            claims=claims,
        )


class _Handler(BaseHTTPRequestHandler):
    push_service: PushService
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.push_service._handle(self)

    def do_GET(self) -> None:
        _send(self, 405, {"Allow": "POST"}, "push endpoints accept POST only")

    do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _send(
    request: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], reason: str | None
) -> None:
    body = json.dumps({"code": status, "reason": reason}).encode() if reason else b""
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def _read_body(request: BaseHTTPRequestHandler, headers: dict[str, str]) -> bytes:
    length = headers.get("content-length")
    if length is None or not length.isdigit():
        request.close_connection = True
        raise _Refused(411, "Content-Length required")
    return request.rfile.read(int(length))


def _replace_status(delivery: Delivery, status: int | None) -> Delivery:
    return Delivery(
        delivery.endpoint,
        status,
        delivery.ttl,
        delivery.urgency,
        delivery.topic,
        delivery.payload,
        delivery.headers,
        delivery.claims,
    )


def _subscription_id(target: str | Mapping[str, Any]) -> str:
    if isinstance(target, Mapping):
        target = str(target["endpoint"])
    return target.rsplit("/push/", 1)[-1]


def _decode_public_key(text: str) -> bytes:
    raw = b64url_decode(text)
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)  # raises if not a point
    return raw


def _verify_vapid(headers: dict[str, str]) -> tuple[bytes, dict[str, Any]]:
    """Parse either VAPID form, verify the ES256 signature with k; return (k, claims)."""
    authorization = headers.get("authorization")
    if not authorization:
        raise _Refused(401, "missing Authorization header")
    scheme, _, params = authorization.strip().partition(" ")
    if scheme.lower() == "vapid":  # RFC 8292: vapid t=<jwt>, k=<key>
        parts: dict[str, str] = {}
        for item in params.split(","):
            name, _, value = item.strip().partition("=")
            parts[name.strip().lower()] = value.strip()
        token, key_text = parts.get("t"), parts.get("k")
        if not token or not key_text:
            raise _Refused(401, "vapid Authorization needs t= and k=")
    elif scheme.lower() == "webpush":  # draft-01: WebPush <jwt> + Crypto-Key: p256ecdsa=<key>
        token = params.strip()
        key_text = None
        for item in re.split(r"[;,]", headers.get("crypto-key", "")):
            name, _, value = item.strip().partition("=")
            if name.strip().lower() == "p256ecdsa":
                key_text = value.strip()
        if not key_text:
            raise _Refused(401, "WebPush Authorization needs Crypto-Key: p256ecdsa=")
    else:
        raise _Refused(401, f"unknown Authorization scheme {scheme!r}")

    try:
        key = b64url_decode(key_text)
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    except (ValueError, binascii.Error) as exc:
        raise _Refused(401, "k is not a P-256 public key") from exc

    segments = token.split(".")
    if len(segments) != 3:
        raise _Refused(401, "JWT must have three segments")
    try:
        header = json.loads(b64url_decode(segments[0]))
        claims = json.loads(b64url_decode(segments[1]))
        signature = b64url_decode(segments[2])
    except (ValueError, binascii.Error) as exc:
        raise _Refused(401, "JWT is not base64url JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise _Refused(401, "JWT alg must be ES256")
    if not isinstance(claims, dict):
        raise _Refused(401, "JWT claims must be an object")
    if len(signature) != 64:
        raise _Refused(401, "ES256 signature must be 64 bytes (r || s)")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    signed = f"{segments[0]}.{segments[1]}".encode("ascii")
    try:
        public_key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise _Refused(401, "JWT signature does not verify with k") from exc
    return key, claims


def _check_claims(claims: dict[str, Any], origin: str) -> None:
    aud = claims.get("aud")
    if aud != origin:
        raise _Refused(401, f"JWT aud {aud!r} is not the endpoint origin {origin!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise _Refused(401, "JWT exp must be an integer")
    now = time.time()
    if exp <= now:
        raise _Refused(401, "JWT expired")
    if exp > now + MAX_JWT_LIFETIME:
        raise _Refused(401, "JWT exp is more than 24 hours ahead")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        raise _Refused(401, f"JWT sub must be a mailto: or https: URI, got {sub!r}")
