"""Logs through a real uvicorn: one structured line per request with a request id on every line,
and no secret anywhere — passwords, bearer and ``?access_token=`` tokens, SSE tickets, Open311
API keys in the query string, citizens' tracking tokens in URL paths."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from server.logs import MASK, configure_logging, redact
from tests.support.data import PASSWORDS
from tests.support.live_server import LiveServer

CITY = {"lat": 46.8139, "lon": -71.2080}


@pytest.fixture
def logged(database_url: str) -> Iterator[tuple[str, io.StringIO]]:
    from server.app import create_app
    from server.settings import get_settings
    from tests.support.data import reset_and_seed_now

    settings = get_settings()
    reset_and_seed_now(settings)
    app = create_app(settings)
    buffer = io.StringIO()
    configure_logging(settings, stream=buffer)  # what `tournee run` installs, into a buffer
    with LiveServer(app, log_config=None, access_log=False, log_level="info") as server:
        yield server.url, buffer
    configure_logging(settings)


def _secrets_used(url: str) -> list[str]:
    """Sign in, follow a tracking link, file with an Open311 key in the query, open both SSE
    streams with ?access_token= and ?ticket=: every secret that crossed the wire."""
    http = httpx.Client(base_url=url, timeout=15)
    password = PASSWORDS["admin"]
    admin_token = http.post(
        "/api/v1/auth/login", json={"username": "admin", "password": password}
    ).json()["token"]
    admin = {"Authorization": f"Bearer {admin_token}"}
    api_key = http.post("/api/v1/open311-keys", json={"name": "logs"}, headers=admin).json()[
        "api_key"
    ]
    created = http.post(
        "/api/v1/public/requests",
        json={"service_code": "pothole", "address": "1, rue du Trésor", **CITY},
    )
    assert created.status_code == 201, created.text
    tracking = created.json()["tracking_token"]
    assert http.get(f"/api/v1/public/requests/{tracking}").status_code == 200
    http.get(f"/api/v1/public/requests/{tracking}/push-subscription")
    filed = http.post(
        "/open311/v2/requests.json",
        params={"api_key": api_key},
        data={"service_code": "pothole", "lat": "46.81", "long": "-71.21"},
    )
    assert filed.status_code == 201, filed.text
    http.get(f"/open311/v2/tokens/{tracking}.json")
    crew_password = PASSWORDS["crew"]
    crew = http.post(
        "/api/v1/auth/login",
        json={"username": "mtremblay", "password": crew_password, "device_label": "Tél."},
    ).json()["token"]
    ticket = http.post("/api/v1/auth/stream-ticket", headers=admin).json()["ticket"]
    for path, token in (("/api/v1/live/events", admin_token), ("/sync/v1/events", crew)):
        for query in ({"access_token": token}, {"ticket": ticket}):
            with http.stream("GET", path, params=query) as stream:
                assert stream.status_code < 500
    http.get("/api/v1/users", params={"access_token": admin_token})
    http.close()
    return [password, crew_password, admin_token, crew, api_key, tracking, ticket]


def test_no_secret_in_any_line_and_a_request_id_on_each(logged: tuple[str, io.StringIO]) -> None:
    url, buffer = logged
    secrets = _secrets_used(url)
    logging.getLogger("tournee.test").warning("bearer %s", secrets[2])  # any logger, any text
    text = buffer.getvalue()
    for secret in secrets:
        assert secret not in text, secret
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    requests = [line for line in lines if line.get("logger") == "tournee.access"]
    assert len(requests) == 14
    for line in requests:
        assert line["event"] == "request"
        assert {"method", "path", "status", "duration_ms", "request_id", "timestamp"} <= set(line)
    paths = [line["path"] for line in requests]
    assert f"/api/v1/public/requests/{MASK}" in paths
    assert any(p.startswith(f"/open311/v2/requests.json?api_key={MASK}") for p in paths)
    assert any(p == f"/sync/v1/events?access_token={MASK}" for p in paths)
    assert any(p == f"/api/v1/live/events?ticket={MASK}" for p in paths)
    assert len({line["request_id"] for line in requests}) == len(requests)
    assert all(line.get("level") for line in lines)


def test_the_request_id_is_sent_back_and_a_sane_one_is_kept(
    logged: tuple[str, io.StringIO],
) -> None:
    url, buffer = logged
    mine = httpx.get(f"{url}/api/v1/service-types/", headers={"X-Request-ID": "lb-42.a"})
    assert mine.headers["x-request-id"] == "lb-42.a"
    made = httpx.get(f"{url}/nowhere", headers={"X-Request-ID": "bad id;drop"})
    assert made.status_code == 404
    assert made.headers["x-request-id"] != "bad id;drop"
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    ids = {line["request_id"] for line in lines if line.get("logger") == "tournee.access"}
    assert {"lb-42.a", made.headers["x-request-id"]} <= ids


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("GET /x?access_token=abc.def&a=1", "GET /x?access_token=[redacted]&a=1"),
        (
            "POST /open311/v2/requests.xml?api_key=K9_-z",
            "/open311/v2/requests.xml?api_key=[redacted]",
        ),
        ("Authorization: Bearer eyJ.x-y_z", "Authorization: Bearer [redacted]"),
        ("password=hunter22&user=a", "password=[redacted]&user=a"),
        (
            "/api/v1/public/requests/Zq8-tok/push-subscription",
            "/api/v1/public/requests/[redacted]/",
        ),
        ("https://fcm.googleapis.com/fcm/send/dEf:APA91b", "/fcm/send/[redacted]"),
        ("/api/v1/public/requests/", "/api/v1/public/requests/"),
        ("service_code=pothole&status=open", "service_code=pothole&status=open"),
    ],
)
def test_redact(text: str, kept: str) -> None:
    assert kept in redact(text)


def test_console_format_is_one_line_per_event(database_url: str) -> None:
    from dataclasses import replace

    from server.settings import get_settings

    settings = replace(get_settings(), log_format="console")
    buffer = io.StringIO()
    configure_logging(settings, stream=buffer)
    try:
        logging.getLogger("tournee.test").info("hello %s", "?api_key=abc")
    finally:
        configure_logging(get_settings())
    line = buffer.getvalue().strip()
    assert "hello ?api_key=[redacted]" in line and "abc" not in line
    assert not line.startswith("{")


def test_scheduler_runs_log_at_debug_only(database_url: str) -> None:
    from dataclasses import replace

    from server.settings import get_settings

    runs = logging.getLogger("apscheduler.executors.default")  # "Running job …" per run
    try:
        configure_logging(get_settings(), stream=io.StringIO())
        assert not runs.isEnabledFor(logging.INFO)
        configure_logging(replace(get_settings(), debug=True), stream=io.StringIO())
        assert runs.isEnabledFor(logging.DEBUG)
    finally:
        configure_logging(get_settings())
