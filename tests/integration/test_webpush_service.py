"""server.notify.webpush against a real push service on 127.0.0.1 (tests/support/push_service).

Nothing is mocked: pywebpush encrypts and signs, aiohttp posts, the test service verifies the
VAPID JWT and decrypts with the subscriber keys it generated.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid01, Vapid02
from pywebpush import WebPusher, WebPushException, webpush_async

from server.notify.webpush import (
    BACKOFF_CAP_SECONDS,
    MAX_PAYLOAD_BYTES,
    PushOutcome,
    SendResult,
    VapidKeys,
    backoff_seconds,
    parse_retry_after,
    push_topic,
    send_push,
)
from tests.support.push_service import PushService

SUB = "mailto:dispatch@tournee.example"


@pytest.fixture
def push_service() -> Iterator[PushService]:
    with PushService() as service:
        yield service


@pytest.fixture
def vapid(tmp_path: Any) -> VapidKeys:
    return VapidKeys.load_or_create(tmp_path / "vapid" / "private.pem")


@pytest.fixture
def subscription(push_service: PushService, vapid: VapidKeys) -> dict[str, Any]:
    return push_service.new_subscription(application_server_key=vapid.public_key_b64url)


async def push(
    subscription: dict[str, Any],
    vapid: VapidKeys,
    payload: dict[str, Any] | None = None,
    **options: Any,
) -> SendResult:
    arguments: dict[str, Any] = {
        "sub_claim": SUB,
        "ttl": 3600,
        "urgency": "normal",
        "topic": None,
        "timeout": 5.0,
    }
    arguments.update(options)
    return await send_push(
        subscription, payload or {"title": "Nid-de-poule"}, vapid=vapid, **arguments
    )


# --- VAPID keys --------------------------------------------------------------------------------


def test_vapid_keys_are_created_once_owner_only(tmp_path: Any) -> None:
    path = tmp_path / "keys" / "vapid.pem"
    first = VapidKeys.load_or_create(path)
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["vapid.pem"]  # no temporary left

    second = VapidKeys.load_or_create(path)
    assert second.public_key_b64url == first.public_key_b64url
    assert path.read_bytes() == pem
    assert len(first.public_key_b64url) == 87  # 65-byte uncompressed point, unpadded base64url


def test_vapid_keys_refuse_other_curves(tmp_path: Any) -> None:
    with pytest.raises(ValueError):
        VapidKeys(ec.generate_private_key(ec.SECP384R1()))


# --- delivery ----------------------------------------------------------------------------------


async def test_delivered_payload_and_headers_arrive(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any]
) -> None:
    payload = {"title": "Demande 311", "body": "Équipe en route — rue Saint-Denis", "id": 42}
    result = await push(subscription, vapid, payload, ttl=86400, urgency="high", topic="req42")

    assert result == SendResult(PushOutcome.DELIVERED, 201)
    assert result.delivered
    [delivery] = push_service.received
    assert json.loads(delivery.payload) == payload
    assert delivery.status_returned == 201
    assert delivery.endpoint == subscription["endpoint"]
    assert (delivery.ttl, delivery.urgency, delivery.topic) == (86400, "high", "req42")
    assert delivery.claims["aud"] == push_service.origin
    assert delivery.claims["sub"] == SUB
    assert push_service.rejections == []


async def test_topic_that_does_not_fit_is_hashed_to_32_base64url_characters(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any]
) -> None:
    request_id = "request:8f14e45f-ceea-467a-9575-9a1b5c2b2d3f"
    await push(subscription, vapid, topic=request_id)
    await push(subscription, vapid, topic=request_id)
    await push(subscription, vapid, topic="request:other")

    topics = [d.topic for d in push_service.received]
    assert topics[0] == topics[1] == push_topic(request_id)
    assert topics[2] != topics[0]
    assert all(t is not None and len(t) == 32 for t in topics)
    assert push_service.rejections == []


async def test_fresh_claims_per_send_so_aud_follows_each_endpoint(vapid: VapidKeys) -> None:
    with PushService() as one, PushService() as two:
        for service in (one, two, one):
            service.expect_application_server_key(vapid.public_key_b64url)
            assert (await push(service.new_subscription(), vapid)).delivered
        assert [d.claims["aud"] for d in one.received] == [one.origin, one.origin]
        assert [d.claims["aud"] for d in two.received] == [two.origin]
        assert one.rejections == two.rejections == []


async def test_payload_near_the_limit_is_delivered_and_over_it_refused(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any]
) -> None:
    overhead = len(json.dumps({"body": ""}, separators=(",", ":")))
    fits = {"body": "x" * (MAX_PAYLOAD_BYTES - overhead)}
    assert (await push(subscription, vapid, fits)).delivered
    assert json.loads(push_service.received[0].payload) == fits

    with pytest.raises(ValueError, match="3000"):
        await push(subscription, vapid, {"body": "é" * 1500})  # 3000 characters, 3000+ bytes
    assert len(push_service.received) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"ttl": -1},
        {"urgency": "urgent"},
        {"sub_claim": "dispatch@tournee.example"},
        {"timeout": 0},
    ],
)
async def test_caller_mistakes_raise(
    vapid: VapidKeys, subscription: dict[str, Any], bad: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        await push(subscription, vapid, **bad)


async def test_malformed_subscription_fails_without_sending(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any]
) -> None:
    broken = {**subscription, "keys": {**subscription["keys"], "p256dh": "AAAA"}}
    result = await push(broken, vapid)
    assert result.outcome is PushOutcome.FAILED
    assert result.status_code is None
    assert push_service.received == push_service.rejections == []


# --- answers of the push service ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (410, {}, PushOutcome.GONE, None),
        (404, {}, PushOutcome.GONE, None),
        (429, {"Retry-After": "120"}, PushOutcome.RETRY, 120.0),
        (429, {}, PushOutcome.RETRY, None),
        (500, {}, PushOutcome.RETRY, None),
        (503, {"Retry-After": "7"}, PushOutcome.RETRY, 7.0),
        (400, {}, PushOutcome.FAILED, None),
        (413, {}, PushOutcome.FAILED, None),
    ],
)
async def test_answers_are_classified(
    push_service: PushService,
    vapid: VapidKeys,
    subscription: dict[str, Any],
    status: int,
    headers: dict[str, str],
    outcome: PushOutcome,
    retry_after: float | None,
) -> None:
    push_service.respond(subscription, status, headers)

    result = await push(subscription, vapid)

    assert (result.outcome, result.status_code, result.retry_after) == (
        outcome,
        status,
        retry_after,
    )
    assert [d.status_returned for d in push_service.received] == [status]
    assert push_service.rejections == []
    assert (await push(subscription, vapid)).delivered  # `times=1`: back to 201


async def test_respond_times_and_http_date_retry_after(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any]
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    push_service.respond(subscription["endpoint"], 429, {"Retry-After": later}, times=2)

    first, second, third = [await push(subscription, vapid) for _ in range(3)]

    assert first.retry and second.retry and third.delivered
    assert first.retry_after is not None and 80 <= first.retry_after <= 90


async def test_stalled_push_service_times_out_as_retry(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any]
) -> None:
    push_service.stall(subscription)
    started = time.monotonic()

    result = await push(subscription, vapid, timeout=0.5)

    assert time.monotonic() - started < 3
    assert result.outcome is PushOutcome.RETRY
    assert result.status_code is None
    [delivery] = await push_service.wait_for_async(1, timeout=2)
    assert delivery.status_returned is None  # it was read and checked, never answered


async def test_unreachable_push_service_is_retry(vapid: VapidKeys) -> None:
    with socket.socket() as placeholder:  # a port with nothing listening
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    with PushService() as service:
        subscription = service.new_subscription(vapid.public_key_b64url)
    subscription["endpoint"] = f"http://127.0.0.1:{port}/push/gone-away"

    result = await push(subscription, vapid, timeout=2)

    assert result.outcome is PushOutcome.RETRY
    assert result.status_code is None


# --- the test service really checks ------------------------------------------------------------


async def test_wrong_vapid_key_is_rejected(push_service: PushService, tmp_path: Any) -> None:
    key_a = VapidKeys.load_or_create(tmp_path / "a.pem")
    key_b = VapidKeys.load_or_create(tmp_path / "b.pem")
    subscription = push_service.new_subscription(application_server_key=key_b.public_key_b64url)

    result = await push(subscription, key_a)  # validly signed, by the wrong key

    assert (result.outcome, result.status_code) == (PushOutcome.FAILED, 403)
    assert push_service.received == []
    [rejection] = push_service.rejections
    assert rejection.status == 403
    assert "applicationServerKey" in rejection.reason
    assert (await push(subscription, key_b)).delivered


async def test_subscription_without_application_server_key_is_rejected(
    push_service: PushService, vapid: VapidKeys
) -> None:
    result = await push(push_service.new_subscription(), vapid)
    assert result.status_code == 403
    push_service.expect_application_server_key(vapid.public_key_b64url)
    assert (await push(push_service.new_subscription(), vapid)).delivered


async def test_legacy_webpush_authorization_form_is_accepted(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any]
) -> None:
    # pywebpush signs with the draft-01 form (WebPush <jwt> + Crypto-Key) given a Vapid01.
    legacy = Vapid01(private_key=vapid.vapid.private_key)
    await webpush_async(
        subscription, data='{"legacy":true}', vapid_private_key=legacy,
        vapid_claims={"sub": SUB}, ttl=60, timeout=5,
    )  # fmt: skip
    [delivery] = push_service.received
    assert delivery.headers["authorization"].startswith("WebPush ")
    assert "p256ecdsa=" in delivery.headers["crypto-key"]
    assert json.loads(delivery.payload) == {"legacy": True}


async def test_exp_more_than_24_hours_ahead_is_rejected(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any]
) -> None:
    with pytest.raises(WebPushException) as raised:
        await webpush_async(
            subscription, data="{}", vapid_private_key=vapid.vapid, ttl=60, timeout=5,
            vapid_claims={"sub": SUB, "exp": int(time.time()) + 25 * 3600},
        )  # fmt: skip
    assert raised.value.status_code == 401
    assert [r.reason for r in push_service.rejections] == ["JWT exp is more than 24 hours ahead"]


def raw_push(
    service: PushService,
    subscription: dict[str, Any],
    vapid: VapidKeys,
    *,
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **extra_headers: str,
) -> httpx.Response:
    """A hand-built push (sync, plain HTTP) for the checks pywebpush would not let us fail."""
    signer = Vapid02(private_key=vapid.vapid.private_key, conf={"no-strict": True})
    headers: dict[str, str] = {
        **signer.sign({"aud": service.origin, "sub": SUB, **(claims or {})}),
        "TTL": "60",
        "Content-Encoding": "aes128gcm",
        **{name.replace("_", "-"): value for name, value in extra_headers.items()},
    }
    for name in drop:
        del headers[name]
    body = WebPusher(subscription).encode(b'{"raw":true}', "aes128gcm")["body"]
    with httpx.Client(trust_env=False) as client:
        return client.post(subscription["endpoint"], content=body, headers=headers)


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({}, 201, None),
        ({"claims": {"exp": int(time.time()) - 60}}, 401, "JWT expired"),
        ({"claims": {"sub": "dispatch@tournee.example"}}, 401, "JWT sub must be"),
        ({"claims": {"aud": "http://127.0.0.1:1"}}, 401, "JWT aud"),
        ({"drop": ("Authorization",)}, 401, "missing Authorization"),
        ({"drop": ("TTL",)}, 400, "missing TTL"),
        ({"Content_Encoding": "aesgcm"}, 400, "Content-Encoding"),
        ({"Topic": "request:42"}, 400, "Topic"),
        ({"Urgency": "urgent"}, 400, "Urgency"),
    ],
)
def test_service_checks_each_rule(
    push_service: PushService,
    vapid: VapidKeys,
    subscription: dict[str, Any],
    change: dict[str, Any],
    status: int,
    reason: str | None,
) -> None:
    response = raw_push(push_service, subscription, vapid, **change)

    assert response.status_code == status
    if reason is None:
        assert push_service.rejections == []
        assert json.loads(push_service.wait_for(1)[0].payload) == {"raw": True}
    else:
        assert reason in response.json()["reason"]
        [rejection] = push_service.rejections
        assert (rejection.status, rejection.endpoint) == (status, subscription["endpoint"])
        assert push_service.received == []


def test_tampered_signature_and_body_are_rejected(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any]
) -> None:
    signer = Vapid02(private_key=vapid.vapid.private_key)
    authorization = signer.sign({"aud": push_service.origin, "sub": SUB})["Authorization"]
    header, claims, _signature = authorization.split("t=", 1)[1].split(",k=")[0].split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["sub"] = "https://intruder.example"  # still valid claims, no longer what was signed
    forged_claims = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    forged = authorization.replace(f"{header}.{claims}.", f"{header}.{forged_claims}.")
    body = WebPusher(subscription).encode(b"{}", "aes128gcm")["body"]
    base = {"TTL": "60", "Content-Encoding": "aes128gcm"}
    with httpx.Client(trust_env=False) as client:
        bad_sig = client.post(
            subscription["endpoint"], content=body, headers={**base, "Authorization": forged}
        )
        bad_body = client.post(
            subscription["endpoint"],
            content=body[:-1] + bytes([body[-1] ^ 1]),
            headers={**base, "Authorization": authorization},
        )
        unknown = client.post(
            f"{push_service.origin}/push/nobody",
            content=body,
            headers={**base, "Authorization": authorization},
        )
    assert (bad_sig.status_code, bad_body.status_code, unknown.status_code) == (401, 400, 404)
    assert "signature does not verify" in bad_sig.json()["reason"]
    assert "does not decrypt" in bad_body.json()["reason"]
    assert len(push_service.rejections) == 3
    assert push_service.received == []


# --- pure pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, 15.0),
        (2, None, 30.0),
        (3, None, 60.0),
        (8, None, 1920.0),
        (9, None, BACKOFF_CAP_SECONDS),
        (10_000, None, BACKOFF_CAP_SECONDS),
        (1, 120.0, 120.0),  # Retry-After longer than the backoff wins
        (5, 120.0, 240.0),  # shorter Retry-After does not shorten the backoff
        (20, 7200.0, 7200.0),  # honoured even beyond the cap
        (1, 0.0, 15.0),
    ],
)
def test_backoff_seconds(attempt: int, retry_after: float | None, expected: float) -> None:
    assert backoff_seconds(attempt, retry_after) == expected


def test_backoff_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        backoff_seconds(0, None)


NOW = datetime(2025, 11, 3, 14, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Mon, 03 Nov 2025 14:02:00 GMT", 120.0),
        ("Mon, 03 Nov 2025 13:00:00 GMT", 0.0),  # already past
        ("-5", None),
        ("1.5", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("key", "kept"),
    [
        ("req42", True),
        ("a" * 32, True),
        ("a" * 33, False),
        ("request:42", False),
        ("", False),
        ("élément", False),
    ],
)
def test_push_topic(key: str, kept: bool) -> None:
    topic = push_topic(key)
    assert (topic == key) is kept
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic)
    assert push_topic(key) == topic


def test_another_process_can_push_with_synchronous_pywebpush(
    push_service: PushService, vapid: VapidKeys, subscription: dict[str, Any], tmp_path: Any
) -> None:
    key_file = tmp_path / "vapid" / "private.pem"  # the `vapid` fixture's file
    script = (
        "import json, sys, pywebpush\n"
        "sub, key = json.loads(sys.argv[1]), sys.argv[2]\n"
        'r = pywebpush.webpush(sub, data=\'{"from":"child"}\', vapid_private_key=key,\n'
        "    vapid_claims={'sub': 'mailto:dispatch@tournee.example'}, ttl=60, timeout=5)\n"
        "print(r.status_code)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, json.dumps(subscription), str(key_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert child.stdout.strip() == "201"
    assert json.loads(push_service.wait_for(1)[0].payload) == {"from": "child"}
    assert push_service.rejections == []
