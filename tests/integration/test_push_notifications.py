"""Citizen Web Push end to end: HTTP into the real app, the outbox in the real database, the
delivery job sending with pywebpush to a real push service on 127.0.0.1 that checks VAPID and
decrypts every message (tests/support/push_service.py). The clock is a parameter of the job."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from server.db import Database
from server.dbtypes import utcnow
from server.notify.jobs import DeliveryReport, claim_due_messages, deliver_pushes, lease_seconds
from server.notify.models import PushMessage, PushSubscription
from server.notify.quiet_hours import QuietHours
from server.notify.service import endpoint_allowed, load_vapid_keys, render_payload
from server.notify.webpush import MAX_PAYLOAD_BYTES, push_topic
from server.settings import Settings
from tests.support.notify import (
    SUB,
    act,
    assign,
    dispatcher,
    new_request,
    payloads,
    push_app,
    push_settings,
    push_settings_fixture,
    run_push_job,
    subscribe,
    work_order_for,
)
from tests.support.push_service import PushService

PUSH_FIXTURES = (push_app, push_settings_fixture)  # this module's `app` and `settings`

TORONTO = ZoneInfo("America/Toronto")


@pytest.fixture
def push_service(settings: Settings) -> Iterator[PushService]:
    with PushService() as service:
        service.expect_application_server_key(load_vapid_keys(settings).public_key_b64url)
        yield service


async def _rows(settings: Settings, model: Any) -> list[Any]:
    db = Database(settings)
    try:
        async with db.transaction() as tx:
            return list((await tx.execute(select(model).order_by(model.id))).scalars())
    finally:
        await db.dispose()


# --- keys and subscriptions --------------------------------------------------------------------


async def test_vapid_public_key_is_served_and_stable(client: Any, settings: Settings) -> None:
    response = await client.get("/api/v1/public/push/vapid-public-key")
    assert response.status_code == 200
    key = response.json()["public_key"]
    assert key == load_vapid_keys(settings).public_key_b64url
    assert Path(settings.vapid_private_key).stat().st_mode & 0o777 == 0o600
    assert len(key) == 87  # base64url of a 65-byte uncompressed P-256 point


async def test_subscription_confirms_in_the_subscriber_language(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    headers = await dispatcher(client)
    request = await new_request(client, headers)
    token = request["tracking_token"]
    fr_browser, en_browser = push_service.new_subscription(), push_service.new_subscription()

    assert (await subscribe(client, token, fr_browser, "fr")).json() == {
        "language": "fr",
        "created": True,
    }
    response = await client.post(
        f"/api/v1/public/requests/{token}/push-subscription",
        json={"subscription": en_browser},
        headers={"Accept-Language": "en-CA,en;q=0.9"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["language"] == "en"

    report = await run_push_job(settings)

    assert report.delivered == 2
    deliveries = sorted(push_service.received, key=lambda d: d.endpoint != fr_browser["endpoint"])
    fr, en = payloads(deliveries)
    assert fr["title"] == "Requête reçue" and en["title"] == "Request received"
    assert "« Encombrants" in fr["body"] or "«" in fr["body"]
    assert "100, rue Saint-Jean" in en["body"]
    assert (fr["lang"], en["lang"]) == ("fr", "en")
    assert fr["kind"] == en["kind"] == "received"
    assert fr["url"] == f"{settings.public_url}/#/suivi/{token}"
    topic = push_topic(f"request:{request['id']}")
    assert fr["tag"] == topic
    for delivery in deliveries:
        assert (delivery.topic, delivery.ttl, delivery.urgency) == (topic, 86400, "low")
        assert delivery.claims["sub"] == SUB
        assert len(delivery.payload) < MAX_PAYLOAD_BYTES
    assert push_service.rejections == []


async def test_subscription_input_is_checked(client: Any, push_service: PushService) -> None:
    headers = await dispatcher(client)
    token = (await new_request(client, headers))["tracking_token"]
    browser = push_service.new_subscription()

    bad_key = {**browser, "keys": {**browser["keys"], "p256dh": "AAAA"}}
    response = await subscribe(client, token, bad_key)
    assert (response.status_code, response.json()["code"]) == (422, "push_subscription_invalid")

    elsewhere = {**browser, "endpoint": "https://evil.example/push/abc"}
    response = await subscribe(client, token, elsewhere)
    assert (response.status_code, response.json()["code"]) == (422, "push_endpoint_not_allowed")

    response = await subscribe(client, "no-such-token", browser)
    assert response.status_code == 404

    assert (await subscribe(client, token, browser)).json()["created"] is True
    again = await subscribe(client, token, browser, "en")
    assert (again.status_code, again.json()) == (201, {"language": "en", "created": False})


@pytest.mark.parametrize(
    ("endpoint", "allowed"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", True),
        ("https://updates.push.services.mozilla.com/wpush/v2/abc", True),
        ("https://web.push.apple.com/QGx", True),
        ("https://wns2-par02p.notify.windows.com/w/?token=x", True),
        ("http://fcm.googleapis.com/fcm/send/abc", False),  # plain http to a real service
        ("https://push.apple.com.evil.example/x", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("http://127.0.0.1:5432/x", False),  # loopback is not allowed by default
        ("https://evilpush.apple.com/x", False),
        ("https://[fcm.googleapis.com/x", False),  # not a URL urlsplit accepts
        # issue 12: parsers disagree on the host of these; refused outright
        ("https://127.0.0.1\\@fcm.googleapis.com/x", False),
        ("https://127.0.0.1@fcm.googleapis.com/x", False),
        ("https://user:pw@fcm.googleapis.com/fcm/send/abc", False),
        ("https://fcm.googleapis.com\\.evil.example/x", False),
        ("https://fcm.googleapis.com/fcm\\send/abc", False),
        ("https://fcm%2egoogleapis.com/x", False),
        ("https://fcm.googleapis.com%00.evil.example/x", False),
        ("https://fcm.googleapis.com /x", False),
        ("https://fcm.googleapis.com/fcm/send/a%2Fb", True),  # % in the path is fine
    ],
)
def test_endpoint_allow_list(endpoint: str, allowed: bool) -> None:
    from server.settings import DEFAULT_PUSH_ENDPOINT_HOSTS

    hosts = tuple(DEFAULT_PUSH_ENDPOINT_HOSTS.split(","))
    assert endpoint_allowed(endpoint, hosts) is allowed


def test_allow_list_extra_hosts_add_to_the_built_in_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: a test or self-hosted push service is added, real browsers keep working."""
    from server.settings import DEFAULT_PUSH_ENDPOINT_HOSTS, get_settings

    monkeypatch.setenv("TOURNEE_PUSH_ENDPOINT_HOSTS_EXTRA", " 127.0.0.1, Push.Example.org ")
    get_settings.cache_clear()
    try:
        hosts = get_settings().push_endpoint_hosts
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert hosts == (*DEFAULT_PUSH_ENDPOINT_HOSTS.split(","), "127.0.0.1", "push.example.org")
    assert endpoint_allowed("https://fcm.googleapis.com/fcm/send/abc", hosts)
    assert endpoint_allowed("https://updates.push.services.mozilla.com/wpush/v2/a", hosts)
    assert endpoint_allowed("http://127.0.0.1:8123/push/abc", hosts)
    assert endpoint_allowed("https://push.example.org/p/1", hosts)


async def test_unsubscribe_stops_pushes(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    headers = await dispatcher(client)
    request = await new_request(client, headers)
    token = request["tracking_token"]
    browser = push_service.new_subscription()
    await subscribe(client, token, browser)

    response = await client.delete(
        f"/api/v1/public/requests/{token}/push-subscription",
        params={"endpoint": browser["endpoint"]},
    )
    assert response.status_code == 204
    again = await client.delete(
        f"/api/v1/public/requests/{token}/push-subscription",
        params={"endpoint": browser["endpoint"]},
    )
    assert again.status_code == 204
    wo_id = await work_order_for(client, headers, [request["id"]])
    await assign(client, headers, wo_id)

    assert (await run_push_job(settings)).sent == 0
    assert push_service.received == []
    assert await _rows(settings, PushSubscription) == []
    [confirmation] = await _rows(settings, PushMessage)
    assert (confirmation.state, confirmation.subscription_id) == ("superseded", None)


# --- events ------------------------------------------------------------------------------------


async def test_life_of_a_request_told_honestly(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    headers = await dispatcher(client)
    request = await new_request(client, headers)
    await subscribe(client, request["tracking_token"], push_service.new_subscription(), "en")
    wo_id = await work_order_for(client, headers, [request["id"]])
    await run_push_job(settings)

    await assign(client, headers, wo_id)
    await act(client, headers, wo_id, "start_route")  # not news for the citizen
    await act(client, headers, wo_id, "arrive")
    await run_push_job(settings)
    await act(client, headers, wo_id, "complete", outcome="no_condition_found")
    await run_push_job(settings)
    await act(client, headers, wo_id, "reopen")
    await run_push_job(settings)

    sent = payloads(push_service.received)
    assert [p["kind"] for p in sent] == ["received", "scheduled", "completed", "reopened"]
    completed = sent[2]
    assert completed["title"] == "Request handled"
    assert "the crew found no problem on site." in completed["body"]
    assert [d.urgency for d in push_service.received] == ["low", "normal", "normal", "normal"]
    assert len({d.topic for d in push_service.received}) == 1  # only the latest is shown


async def test_cancelled_is_told_and_reassignment_is_not(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    headers = await dispatcher(client)
    request = await new_request(client, headers)
    await subscribe(client, request["tracking_token"], push_service.new_subscription(), "fr")
    await run_push_job(settings)
    wo_id = await work_order_for(client, headers, [request["id"]])
    await assign(client, headers, wo_id)
    await run_push_job(settings)
    other_crew = (await client.get("/api/v1/crews", headers=headers)).json()[-1]["id"]
    response = await client.post(
        f"/api/v1/work-orders/{wo_id}/assign", json={"crew_id": other_crew}, headers=headers
    )
    assert response.status_code == 200
    await act(client, headers, wo_id, "unassign")
    await assign(client, headers, wo_id)
    await run_push_job(settings)
    response = await client.post(
        f"/api/v1/work-orders/{wo_id}/cancel",
        json={"reason": "Adresse introuvable, note interne"},
        headers=headers,
    )
    assert response.status_code == 200
    await run_push_job(settings)

    sent = payloads(push_service.received)
    assert [p["kind"] for p in sent] == ["received", "scheduled", "cancelled"]
    assert sent[2]["title"] == "Requête fermée"
    assert "note interne" not in sent[2]["body"]  # internal reasons stay internal


async def test_merged_duplicates_notify_every_subscriber(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    headers = await dispatcher(client)
    first = await new_request(client, headers)
    second = await new_request(client, headers, description="Divan, même adresse")
    third = await new_request(client, headers, n=1)
    browsers = {
        "first": push_service.new_subscription(),
        "second": push_service.new_subscription(),
        "second_en": push_service.new_subscription(),
        "third": push_service.new_subscription(),
    }
    await subscribe(client, first["tracking_token"], browsers["first"], "fr")
    await subscribe(client, second["tracking_token"], browsers["second"], "fr")
    await subscribe(client, second["tracking_token"], browsers["second_en"], "en")
    await subscribe(client, third["tracking_token"], browsers["third"], "fr")
    await run_push_job(settings)
    wo_id = await work_order_for(client, headers, [first["id"]])
    second_wo = await work_order_for(client, headers, [second["id"]])
    await assign(client, headers, second_wo)  # the second reporter hears "scheduled" once
    await run_push_job(settings)
    response = await client.post(
        f"/api/v1/work-orders/{wo_id}/merge", json={"request_ids": [second["id"]]}, headers=headers
    )
    assert response.status_code == 200, response.text

    await assign(client, headers, wo_id)
    await run_push_job(settings)
    await act(client, headers, wo_id, "complete", outcome="fixed")
    await run_push_job(settings)

    by_browser: dict[str, list[str]] = {name: [] for name in browsers}
    endpoints = {b["endpoint"]: name for name, b in browsers.items()}
    received = push_service.received
    for delivery, payload in zip(received, payloads(received), strict=True):
        by_browser[endpoints[delivery.endpoint]].append(payload["kind"])
    assert by_browser == {
        "first": ["received", "scheduled", "completed"],
        "second": ["received", "scheduled", "completed"],
        "second_en": ["received", "scheduled", "completed"],
        "third": ["received"],  # not linked: told nothing more
    }
    english = [p for d, p in zip(received, payloads(received), strict=True)
               if d.endpoint == browsers["second_en"]["endpoint"]]  # fmt: skip
    assert english[-1]["body"].endswith("the work was done.")


# --- what the push service answers -------------------------------------------------------------


async def _one_pending_push(
    client: Any, settings: Settings, push_service: PushService, **respond: Any
) -> dict[str, Any]:
    headers = await dispatcher(client)
    request = await new_request(client, headers)
    browser = push_service.new_subscription()
    if respond:
        push_service.respond(browser, **respond)
    await subscribe(client, request["tracking_token"], browser)
    return browser


async def test_gone_subscription_is_deleted_everywhere(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    headers = await dispatcher(client)
    one, two = await new_request(client, headers), await new_request(client, headers, n=1)
    browser = push_service.new_subscription()
    await subscribe(client, one["tracking_token"], browser)
    await run_push_job(settings)
    push_service.respond(browser, 410)
    await subscribe(client, two["tracking_token"], browser)  # the same browser follows both

    report = await run_push_job(settings)

    assert (report.gone, report.delivered) == (1, 0)
    assert await _rows(settings, PushSubscription) == []
    messages = await _rows(settings, PushMessage)
    assert [(m.state, m.last_status) for m in messages] == [("delivered", 201), ("gone", 410)]
    assert all(m.subscription_id is None for m in messages)
    await assign(client, headers, await work_order_for(client, headers, [one["id"]]))
    assert (await run_push_job(settings)).sent == 0


async def test_429_waits_for_retry_after(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    await _one_pending_push(
        client, settings, push_service, status=429, headers={"Retry-After": "120"}
    )
    now = utcnow() + timedelta(seconds=1)

    first = await run_push_job(settings, now=now)
    [message] = await _rows(settings, PushMessage)
    assert (first.retried, message.state, message.attempts) == (1, "pending", 1)
    assert message.next_attempt_at == now + timedelta(seconds=120)  # not the 15 s backoff
    assert message.last_status == 429

    assert (await run_push_job(settings, now=now + timedelta(seconds=119))).sent == 0
    assert (await run_push_job(settings, now=now + timedelta(seconds=120))).delivered == 1
    assert [d.status_returned for d in push_service.received] == [429, 201]


async def test_5xx_retries_with_exponential_backoff(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    await _one_pending_push(client, settings, push_service, status=503, times=2)
    now = utcnow() + timedelta(seconds=1)

    await run_push_job(settings, now=now)
    [message] = await _rows(settings, PushMessage)
    assert message.next_attempt_at == now + timedelta(seconds=15)
    later = now + timedelta(seconds=15)
    await run_push_job(settings, now=later)
    [message] = await _rows(settings, PushMessage)
    assert message.next_attempt_at == later + timedelta(seconds=30)
    await run_push_job(settings, now=later + timedelta(seconds=30))

    [message] = await _rows(settings, PushMessage)
    assert (message.state, message.attempts) == ("delivered", 3)
    assert [d.status_returned for d in push_service.received] == [503, 503, 201]


async def test_unreachable_push_service_gives_up_after_max_attempts(
    client: Any, tmp_path: Path, push_service: PushService
) -> None:
    settings = push_settings(tmp_path, push_max_attempts=2, push_timeout_seconds=1.0)
    browser = await _one_pending_push(client, settings, push_service)
    push_service.stop()  # nothing listens any more: network errors
    now = utcnow() + timedelta(seconds=1)

    assert (await run_push_job(settings, now=now)).retried == 1
    report = await run_push_job(settings, now=now + timedelta(seconds=15))

    assert report.failed == 1
    [message] = await _rows(settings, PushMessage)
    assert (message.state, message.attempts, message.last_status) == ("failed", 2, None)
    assert browser["endpoint"]  # the subscription is kept: the service, not it, was at fault
    assert len(await _rows(settings, PushSubscription)) == 1


# --- quiet hours -------------------------------------------------------------------------------


def _next_local(at: time, after: datetime) -> datetime:
    local = after.astimezone(TORONTO)
    candidate = datetime.combine(local.date(), at, tzinfo=TORONTO)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=TORONTO)
    return candidate.astimezone(UTC)


async def test_quiet_hours_delay_and_keep_only_the_latest(
    client: Any, tmp_path: Path, push_service: PushService
) -> None:
    settings = push_settings(tmp_path, quiet_hours="21:00-07:00", push_ttl_seconds=3 * 86400)
    headers = await dispatcher(client)
    request = await new_request(client, headers)
    await subscribe(client, request["tracking_token"], push_service.new_subscription(), "fr")
    evening = _next_local(time(22, 30), utcnow())
    morning = _next_local(time(7, 0), evening)

    # The confirmation answers the citizen's own action: it goes out even at 22:30.
    assert (await run_push_job(settings, now=evening)).delivered == 1
    wo_id = await work_order_for(client, headers, [request["id"]])
    await assign(client, headers, wo_id)
    deferred = await run_push_job(settings, now=evening)
    assert (deferred.deferred, deferred.sent) == (1, 0)
    pending = [m for m in await _rows(settings, PushMessage) if m.state == "pending"]
    assert [m.next_attempt_at for m in pending] == [morning]  # 07:00 in Québec City, in UTC

    await act(client, headers, wo_id, "complete", outcome="fixed")  # later that night
    assert (await run_push_job(settings, now=evening + timedelta(minutes=30))).sent == 0
    assert (await run_push_job(settings, now=morning - timedelta(minutes=1))).sent == 0
    assert (await run_push_job(settings, now=morning)).delivered == 1

    assert [p["kind"] for p in payloads(push_service.received)] == ["received", "completed"]
    states = [m.state for m in await _rows(settings, PushMessage)]
    assert states == ["delivered", "superseded", "delivered"]


async def test_quiet_hours_never_lose_the_confirmation(
    client: Any, tmp_path: Path, push_service: PushService
) -> None:
    """Issue 19: a citizen subscribes at 22:00 and a dispatcher assigns 2 s later, before the
    push job runs: the confirmation goes out at once, the status push at 07:00, each once."""
    settings = push_settings(tmp_path, quiet_hours="21:00-07:00", push_ttl_seconds=3 * 86400)
    headers = await dispatcher(client)
    request = await new_request(client, headers)
    wo_id = await work_order_for(client, headers, [request["id"]])
    ten_pm = _next_local(time(22, 0), utcnow())
    morning = _next_local(time(7, 0), ten_pm)

    await subscribe(client, request["tracking_token"], push_service.new_subscription(), "en")
    await assign(client, headers, wo_id)  # 2 s later, the job has not run yet
    night = await run_push_job(settings, now=ten_pm + timedelta(seconds=2))
    assert (night.delivered, night.deferred) == (1, 1)
    assert [p["kind"] for p in payloads(push_service.received)] == ["received"]
    [held] = [m for m in await _rows(settings, PushMessage) if m.state == "pending"]
    assert (held.kind, held.next_attempt_at) == ("scheduled", morning)

    assert (await run_push_job(settings, now=morning - timedelta(seconds=1))).sent == 0
    assert (await run_push_job(settings, now=morning)).delivered == 1
    assert (await run_push_job(settings, now=morning + timedelta(hours=1))).sent == 0
    assert [p["kind"] for p in payloads(push_service.received)] == ["received", "scheduled"]
    assert [m.state for m in await _rows(settings, PushMessage)] == ["delivered", "delivered"]


async def test_daytime_confirmation_then_status_in_order(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    """Outside quiet hours both go out, the confirmation first (the same Topic: the service
    keeps the latest for an offline phone, which is then the status)."""
    headers = await dispatcher(client)
    request = await new_request(client, headers)
    wo_id = await work_order_for(client, headers, [request["id"]])
    await subscribe(client, request["tracking_token"], push_service.new_subscription(), "fr")
    await assign(client, headers, wo_id)
    assert (await run_push_job(settings)).delivered == 2
    assert [p["kind"] for p in payloads(push_service.received)] == ["received", "scheduled"]
    assert (await run_push_job(settings)).sent == 0


@pytest.mark.parametrize(
    ("local", "until"),
    [
        (datetime(2025, 1, 15, 20, 59), None),
        (datetime(2025, 1, 15, 21, 0), datetime(2025, 1, 16, 7, 0)),
        (datetime(2025, 1, 15, 23, 59), datetime(2025, 1, 16, 7, 0)),
        (datetime(2025, 1, 16, 0, 0), datetime(2025, 1, 16, 7, 0)),
        (datetime(2025, 1, 16, 6, 59), datetime(2025, 1, 16, 7, 0)),
        (datetime(2025, 1, 16, 7, 0), None),
        # the night clocks go forward (9 March 2025): 07:00 EDT is 11:00 UTC, not 12:00
        (datetime(2025, 3, 8, 22, 0), datetime(2025, 3, 9, 7, 0)),
        # and back (2 November 2025)
        (datetime(2025, 11, 1, 22, 0), datetime(2025, 11, 2, 7, 0)),
    ],
)
def test_quiet_hours_window(local: datetime, until: datetime | None) -> None:
    quiet = QuietHours.parse("21:00-07:00", "America/Toronto")
    assert quiet is not None
    now = local.replace(tzinfo=TORONTO).astimezone(UTC)
    expected = until.replace(tzinfo=TORONTO).astimezone(UTC) if until else None
    assert quiet.deferred_until(now) == expected


def test_quiet_hours_configuration() -> None:
    assert QuietHours.parse("off", "America/Toronto") is None
    day = QuietHours.parse("12:00-13:30", "America/Toronto")
    assert day is not None and day.contains(datetime(2025, 6, 1, 16, 45, tzinfo=UTC))
    for bad in ("21h-7h", "25:00-07:00", "21:00"):
        with pytest.raises(ValueError):
            QuietHours.parse(bad, "America/Toronto")


# --- claims ------------------------------------------------------------------------------------


async def test_a_dead_process_claim_expires_and_another_sends(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    await _one_pending_push(client, settings, push_service)
    now = utcnow() + timedelta(seconds=1)
    db = Database(settings)
    try:
        claimed, _ = await claim_due_messages(
            db, settings, now=now, worker="dead-process", limit=10, quiet=None,
            report=DeliveryReport(),
        )  # fmt: skip
    finally:
        await db.dispose()
    assert len(claimed) == 1  # ... and the process dies before sending

    lease = timedelta(seconds=lease_seconds(settings))
    assert (await run_push_job(settings, now=now + lease - timedelta(seconds=1))).sent == 0
    report = await run_push_job(settings, now=now + lease + timedelta(seconds=1), worker="alive")

    assert report.delivered == 1
    [message] = await _rows(settings, PushMessage)
    assert (message.state, message.delivered_by) == ("delivered", "alive")
    assert len(push_service.received) == 1


async def test_concurrent_jobs_send_each_push_once(client: Any, tmp_path: Path) -> None:
    settings = push_settings(tmp_path, push_batch_size=3)
    with PushService(latency=0.02) as service:
        service.expect_application_server_key(load_vapid_keys(settings).public_key_b64url)
        headers = await dispatcher(client)
        browsers = []
        for n in range(8):
            request = await new_request(client, headers, n=n)
            for _ in range(3):
                browsers.append(service.new_subscription())
                await subscribe(client, request["tracking_token"], browsers[-1])
        databases = [Database(settings) for _ in range(3)]
        try:
            reports = await asyncio.gather(
                *(
                    deliver_pushes(db, settings, load_vapid_keys(settings), worker=f"w{i}")
                    for i, db in enumerate(databases)
                )
            )
        finally:
            for db in databases:
                await db.dispose()

        assert sum(r.delivered for r in reports) == len(browsers) == 24
        assert sorted(d.endpoint for d in service.received) == sorted(
            b["endpoint"] for b in browsers
        )
        assert sum(r.lost_claims for r in reports) == 0
        assert {m.state for m in await _rows(settings, PushMessage)} == {"delivered"}


# --- payload -----------------------------------------------------------------------------------


def test_payload_stays_under_3_kb(settings: Settings) -> None:
    message = PushMessage(
        request_id=1,
        kind="completed",
        language="fr",
        params={
            "service_fr": "é" * 120,
            "address": "É" * 300,
            "outcome": "unable_to_access",
        },
    )
    payload = render_payload(message, "t" * 32, settings, photo_url="https://x/" + "p" * 2000)
    import json

    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    assert size <= MAX_PAYLOAD_BYTES
    assert (
        payload["body"].endswith("Vous pouvez faire une nouvelle requête.")
        or "…" in payload["body"]
    )
    long_url = dataclasses.replace(settings, public_url="https://" + "a" * 3000)
    with pytest.raises(ValueError):
        render_payload(message, "t" * 32, long_url)
