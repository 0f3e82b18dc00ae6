"""Schemathesis over our OpenAPI schema, against a real server: no input gives a 5xx.

Run longer with TOURNEE_FUZZ_EXAMPLES=500 make test-sqlite PYTEST_ARGS=-k fuzz.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.data import PASSWORDS
from tests.support.live_server import seeded_server_as_admin

MAX_EXAMPLES = int(os.environ.get("TOURNEE_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[dict[str, str]]:
    with seeded_server_as_admin() as (url, token):
        yield {"url": url, "token": token}


def _operations(live: dict[str, str]) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{live['url']}/schema/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis' pytest plugin does not load under pytest 9 ('Function' has no '_nodeid'), so the
# operations are driven directly with Hypothesis: same generation, same check.
def test_no_server_error(live: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {live['token']}"}
    failures: list[str] = []
    operations = _operations(live)
    assert len(operations) >= 30
    for operation in operations:
        if operation.path == "/api/v1/auth/logout":
            continue

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(base_url=live["url"], headers=headers)
            where = f"{case.method} {case.formatted_path}"
            if response.status_code >= 500:
                failures.append(f"{where}: {response.status_code} {response.text[:300]}")
            elif response.status_code >= 400 and "application/problem+json" not in str(
                response.headers.get("content-type")
            ):
                failures.append(f"{where}: {response.status_code} without problem+json")

        check()
    assert failures == [], "\n".join(failures[:20])


# --------------------------------------------------------------------------- hostile bytes
# Raw bodies no JSON encoder would produce, on every JSON route of the schema and /sync/v1/*:
# each is refused before any handler runs, with a documented code (server/jsonbody.py).

HOSTILE: list[tuple[bytes, str]] = [
    (b'{"a":"\xc3"}', "json_malformed"),  # invalid UTF-8 inside a string
    (b'{"a":"\xed\xa0\x80"}', "json_malformed"),  # an encoded surrogate (not UTF-8)
    (b'{"a":"\\ud800"}', "json_malformed"),  # a lone surrogate escape
    (b"[" * 1000 + b"]" * 1000, "json_too_deep"),  # 2 KB, RecursionError before
    (b'{"a":' * 40 + b"1" + b"}" * 40, "json_too_deep"),
    (b'{"a":1e400}', "json_number_out_of_range"),
    (b'{"a":-123456789012345678901234567890}', "json_number_out_of_range"),
    (b'{"a":"x\\u0000y"}', "text_nul_character"),
    (b'{"a\\u0000":1}', "text_nul_character"),
    (b'{"a":', "json_malformed"),
]
BODY_CODES = {code for _, code in HOSTILE} | {"validation_failed"}


def _hostile_strategy() -> Any:
    from hypothesis import strategies as st

    fragments = st.sampled_from(
        [b"\xc3", b"\xff", b"\\ud83d", b"\\udc00", b"\\u0000", b"1e999", b"-1e400", b"9" * 40]
    )
    wrapped = st.tuples(st.sampled_from([b'{"a":"', b'["', b'{"k":[1,"']), fragments).map(
        lambda t: t[0] + t[1] + b'"]' if t[0].startswith(b"[") else t[0] + t[1] + b'"}'
    )
    deep = st.integers(min_value=33, max_value=3000).map(lambda n: b"[" * n + b"]" * n)
    numbers = st.sampled_from([b"1e400", b"-1e999", b"1" + b"0" * 30, b"NaN", b"Infinity"])
    wrong_types = st.sampled_from(
        [b"[]", b'"x"', b"1", b"true", b"null", b'{"protocol":"1"}', b'{"client_id":7}']
    )
    return st.one_of(wrapped, deep, numbers, wrong_types, st.binary(max_size=64))


def _json_operations(live: dict[str, str]) -> list[tuple[str, str]]:
    schema = httpx.get(f"{live['url']}/schema/openapi.json").json()
    found = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content") or {}
            if "application/json" in content and not path.startswith("/open311"):
                concrete = path
                for name in ("{", "}"):
                    concrete = concrete.replace(name, "")
                concrete = "/".join(
                    "1" if part.endswith("_id") or part.endswith("id:int") else part
                    for part in concrete.split("/")
                )
                found.append((method.upper(), concrete))
    return found


def test_hostile_bytes_are_refused_with_a_documented_code(live: dict[str, str]) -> None:
    from server.i18n import MESSAGES

    admin = {"Authorization": f"Bearer {live['token']}"}
    device = httpx.post(
        f"{live['url']}/api/v1/auth/login",
        json={"username": "mtremblay", "password": PASSWORDS["crew"], "device_label": "fuzz"},
    ).json()["token"]
    operations = _json_operations(live)
    paths = {p for _, p in operations}
    assert {"/sync/v1/push", "/sync/v1/pull", "/api/v1/public/requests", "/api/v1/auth/login"} <= {
        p.rstrip("/") for p in paths
    }
    assert len(operations) >= 20
    failures: list[str] = []

    def send(method: str, path: str, body: bytes, expected: str | None) -> None:
        headers = {"Content-Type": "application/json"}
        headers.update(
            {"Authorization": f"Bearer {device}"} if path.startswith("/sync/") else admin
        )
        response = httpx.request(method, f"{live['url']}{path}", content=body, headers=headers)
        where = f"{method} {path} {body[:40]!r}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.status_code} {response.text[:200]}")
            return
        if response.status_code < 400:  # a generated body may be valid JSON the route takes
            if expected is not None:
                failures.append(f"{where}: {response.status_code}, expected {expected}")
            return
        if "application/problem+json" not in str(response.headers.get("content-type")):
            failures.append(f"{where}: {response.status_code} without problem+json")
            return
        code = response.json().get("code")
        if code not in MESSAGES:
            failures.append(f"{where}: undocumented code {code!r}")
        elif response.status_code == 400 and code not in BODY_CODES:
            failures.append(f"{where}: 400 {code}")
        elif expected is not None and response.status_code == 400 and code != expected:
            failures.append(f"{where}: {code}, expected {expected}")

    def hypothesis_run(method: str, path: str) -> None:
        @settings(
            max_examples=max(4, MAX_EXAMPLES // 2),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(body=_hostile_strategy())
        def check(body: bytes) -> None:
            send(method, path, body, None)

        check()

    for method, path in operations:
        for body, expected in HOSTILE:
            if path == "/sync/v1/push" and expected == "text_nul_character":
                expected = "validation_failed"  # a push judges NUL per mutation (no envelope here)
            send(method, path, body, expected)
        hypothesis_run(method, path)
    assert failures == [], "\n".join(failures[:20])
