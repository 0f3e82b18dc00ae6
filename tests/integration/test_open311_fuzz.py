"""Open311 is not in the OpenAPI schema (its errors are Open311 documents, not problem+json), so
Schemathesis never sees it: this fuzzes it on its own, against a real server, with the same
guarantee — no input gives a 5xx — and checks every refusal is an Open311 error document.

Run longer with TOURNEE_FUZZ_EXAMPLES=500.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.live_server import seeded_server_as_admin

MAX_EXAMPLES = int(os.environ.get("TOURNEE_FUZZ_EXAMPLES", "12")) * 4

FIELDS = [
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
    "attribute[item-types]",
    "attribute[item-types][]",
    "attribute[item-count]",
    "attribute[blocked-by]",
    "attribute[noticed-at]",
    "service_request_id",
    "status",
    "start_date",
    "end_date",
    "page",
    "page_size",
    "locale",
]
CODES = ["bulky-items", "snow-driveway-blocked", "pothole", "", "nope"]
text = st.text(max_size=40)
value = st.one_of(
    text,
    st.sampled_from(CODES),
    st.sampled_from(["46.81", "-71.21", "1e400", "nan", "-0", "2026-01-15T08:30-05:00", "0"]),
    st.integers(-(2**70), 2**70).map(str),
)
params = st.dictionaries(st.one_of(st.sampled_from(FIELDS), text), value, max_size=8)
suffix = st.sampled_from([".json", ".xml", ".JSON", ".txt", ""])
paths = st.one_of(
    st.tuples(
        st.sampled_from(
            ["discovery", "services", "requests", "servicerequestupdates", "../discovery"]
        ),
        suffix,
    ).map("".join),
    st.tuples(
        st.sampled_from(["services/", "requests/", "tokens/"]),
        text.map(lambda t: quote(t, safe="")),
        suffix,
    ).map("".join),
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=200).map(lambda b: ("application/octet-stream", b)),
    st.dictionaries(st.sampled_from(FIELDS), text, max_size=6).map(
        lambda d: ("application/json", json.dumps(d).encode())
    ),
    st.binary(max_size=200).map(lambda b: ("application/x-www-form-urlencoded", b)),
    st.just(("multipart/form-data; boundary=x", b"--x\r\nbroken")),
)


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[dict[str, str]]:
    with seeded_server_as_admin() as (url, token):
        key = httpx.post(
            f"{url}/api/v1/open311-keys",
            json={"name": "fuzz"},
            headers={"Authorization": f"Bearer {token}"},
        )
        key.raise_for_status()
        yield {"url": url, "api_key": key.json()["api_key"]}


def _is_open311_error(response: httpx.Response) -> bool:
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/json"):
        body = response.json()
        return isinstance(body, list) and all("code" in e and "description" in e for e in body)
    if kind.startswith("text/xml"):
        return ET.fromstring(response.content).tag == "errors"
    return False


def test_open311_never_answers_5xx(live: dict[str, str]) -> None:
    failures: list[str] = []
    with httpx.Client(base_url=f"{live['url']}/open311/v2/", timeout=30) as client:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(
            method=st.sampled_from(["GET", "POST"]),
            path=paths,
            query=params,
            body=bodies,
            with_key=st.booleans(),
        )
        def check(
            method: str,
            path: str,
            query: dict[str, str],
            body: tuple[str, bytes] | None,
            with_key: bool,
        ) -> None:
            if with_key:
                query = {**query, "api_key": live["api_key"]}
            headers = {"Content-Type": body[0]} if body else {}
            response = client.request(
                method,
                path,
                params=query,
                content=body[1] if body else None,
                headers=headers,
            )
            where = f"{method} {path} {query!r} {body!r}"[:300]
            if response.status_code >= 500:
                failures.append(f"{where}: {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400 and not _is_open311_error(response):
                failures.append(f"{where}: {response.status_code} not an Open311 error")

        check()
        # the fuzz reached past the checks: a well-formed request is still accepted
        ok = client.post(
            "requests.json",
            data={"api_key": live["api_key"], "service_code": "pothole", "lat": "46.81"}
            | {"long": "-71.21"},
        )
        assert ok.status_code == 201, ok.text
    assert failures == [], "\n".join(failures[:20])
