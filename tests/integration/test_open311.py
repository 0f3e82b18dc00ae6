"""Open311 GeoReport v2 through HTTP, in XML and JSON, read the way real clients read it."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import insert, select

from server.db import Database
from server.settings import get_settings
from tests.support.data import login

V2 = "/open311/v2"
CITY = {"lat": "46.8139", "long": "-71.2080"}
ZULU = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
REQUEST_KEYS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]


def xml_of(response: Any, status: int = 200) -> ET.Element:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(response.content)


def json_of(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return json.loads(response.content)


def xml_error(response: Any, status: int) -> str:
    root = xml_of(response, status)
    assert root.tag == "errors"
    (error,) = root.findall("error")
    assert error.findtext("code") == str(status)
    description = error.findtext("description")
    assert description
    return description


def json_error(response: Any, status: int) -> str:
    body = json_of(response, status)
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["code"] == status
    assert body[0]["description"]
    return str(body[0]["description"])


async def new_key(client: Any, name: str = "FixMyStreet Québec") -> str:
    admin = await login(client, "admin", "admin")
    response = await client.post("/api/v1/open311-keys", json={"name": name}, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


def bulky(api_key: str | None = None, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service_code": "bulky-items",
        "description": "Vieux divan et matelas",
        "address_string": "100, rue Saint-Jean",
        "first_name": "Josée",
        "last_name": "Tremblay",
        "email": "josee@example.com",
        "phone": "418-555-0101",
        "attribute[item-types]": ["furniture", "mattress"],
        "attribute[item-count]": "2",
        **CITY,
        **over,
    }
    if api_key is not None:
        body["api_key"] = api_key
    return body


async def tracking_token(request_id: int) -> str:
    from server.requests.models import ServiceRequest

    db = Database(get_settings())
    try:
        async with db.transaction() as tx:
            row = await tx.get(ServiceRequest, request_id)
            assert row is not None
            return row.tracking_token
    finally:
        await db.dispose()


async def file_request(client: Any, api_key: str, fmt: str = "json", **over: Any) -> str:
    response = await client.post(f"{V2}/requests.{fmt}", data=bulky(api_key, **over))
    if fmt == "json":
        return str(json_of(response, 201)[0]["service_request_id"])
    return str(xml_of(response, 201).findtext("request/service_request_id"))


# ------------------------------------------------------------------ discovery and services


async def test_discovery_in_both_formats(client: Any) -> None:
    root = xml_of(await client.get(f"{V2}/discovery.xml"))
    assert root.tag == "discovery"
    endpoint = root.find("endpoints/endpoint")
    assert endpoint is not None
    assert endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint.findtext("url", "").endswith("/open311/v2")
    assert [f.text for f in endpoint.findall("formats/format")] == [
        "text/xml",
        "application/json",
    ]
    assert ZULU.match(root.findtext("changeset", ""))
    body = json_of(await client.get("/open311/discovery.json"))
    assert body["endpoints"][0]["formats"] == ["text/xml", "application/json"]
    assert body["endpoints"][0]["type"] == "production"


async def test_service_list(client: Any) -> None:
    root = xml_of(await client.get(f"{V2}/services.xml"))
    services = {s.findtext("service_code"): s for s in root.findall("service")}
    assert len(services) == 14
    assert services["bulky-items"].findtext("metadata") == "true"
    assert services["snow-hydrant-buried"].findtext("metadata") == "false"
    assert services["bulky-items"].findtext("service_name") == "Collecte des encombrants"
    assert services["bulky-items"].findtext("type") == "realtime"
    body = json_of(await client.get(f"{V2}/services.json", params={"locale": "en_CA"}))
    by_code = {s["service_code"]: s for s in body}
    assert by_code["bulky-items"]["metadata"] is True
    assert by_code["snow-hydrant-buried"]["metadata"] is False
    assert by_code["bulky-items"]["service_name"] == "Bulky item pickup"
    assert by_code["salting"]["group"] == "Snow removal"
    english = json_of(await client.get(f"{V2}/services.json", headers={"Accept-Language": "en-US"}))
    assert english == body


async def test_service_definitions(client: Any) -> None:
    root = xml_of(await client.get(f"{V2}/services/bulky-items.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "bulky-items"
    attrs = root.findall("attributes/attribute")
    assert [a.findtext("code") for a in attrs] == [
        "volume-notice",
        "item-types",
        "item-count",
        "placement",
    ]
    notice, items, count, placement = attrs
    assert notice.findtext("variable") == "false"
    assert items.findtext("datatype") == "multivaluelist"
    assert items.findtext("required") == "true"
    assert "mattress" in [v.findtext("key") for v in items.findall("values/value")]
    assert count.findtext("datatype") == "number"
    assert placement.findtext("datatype") == "text"
    assert [a.findtext("order") for a in attrs] == ["1", "2", "3", "4"]

    body = json_of(
        await client.get(f"{V2}/services/snow-driveway-blocked.json", params={"locale": "en"})
    )
    blocked_by = body["attributes"][0]
    assert blocked_by["code"] == "blocked-by"
    assert blocked_by["datatype"] == "singlevaluelist"
    assert blocked_by["required"] is True and blocked_by["variable"] is True
    assert blocked_by["order"] == 1
    assert {"key": "plow", "name": "Plow (street clearing)"} in blocked_by["values"]
    assert {a["datatype"] for a in body["attributes"]} == {"singlevaluelist", "number", "datetime"}
    empty = json_of(await client.get(f"{V2}/services/snow-hydrant-buried.json"))
    assert empty == {"service_code": "snow-hydrant-buried", "attributes": []}


async def test_unknown_service_and_bad_paths_are_open311_errors(client: Any) -> None:
    xml_error(await client.get(f"{V2}/services/no-such-thing.xml"), 404)
    json_error(await client.get(f"{V2}/services/no-such-thing.json"), 404)
    xml_error(await client.get(f"{V2}/services/bulky-items"), 404)  # no format
    xml_error(await client.get(f"{V2}/nothing-here.xml"), 404)
    json_error(await client.get(f"{V2}/nothing-here.json"), 404)
    xml_error(await client.delete(f"{V2}/requests.xml"), 405)
    json_error(await client.put(f"{V2}/services.json"), 405)
    json_error(await client.get(f"{V2}/services.json", params={"jurisdiction_id": "laval"}), 404)
    json_of(await client.get(f"{V2}/services.json", params={"jurisdiction_id": "quebec.qc.ca"}))


# ------------------------------------------------------------------ POST requests


async def test_post_urlencoded_enters_the_dispatch_queue(client: Any) -> None:
    key = await new_key(client)
    response = await client.post(f"{V2}/requests.xml", data=bulky(key))
    root = xml_of(response, 201)
    assert root.tag == "service_requests"
    (item,) = root.findall("request")
    request_id = item.findtext("service_request_id")
    assert request_id and request_id.isdigit()
    assert item.find("token") is None  # realtime service: the id alone
    assert item.find("service_notice") is not None
    token = await tracking_token(int(request_id))
    dispatcher = await login(client, "repartiteur1", "dispatcher")
    queued = (await client.get(f"/api/v1/requests/{request_id}", headers=dispatcher)).json()
    assert queued["channel"] == "open311"
    assert queued["service_code"] == "bulky-items"
    assert queued["reporter_name"] == "Josée Tremblay"
    assert queued["reporter_email"] == "josee@example.com"
    assert queued["borough_code"] is not None
    public = await client.get(f"{V2}/requests/{request_id}.json")
    text = public.text
    for secret in ("josee@example.com", "418-555-0101", "Josée", "Tremblay", token):
        assert secret not in text
    db = Database(get_settings())
    try:
        from server.open311.models import Open311RequestExtra

        async with db.transaction() as tx:
            extra = await tx.get(Open311RequestExtra, int(request_id))
        assert extra is not None
        assert extra.attributes == {"item-types": ["furniture", "mattress"], "item-count": 2}
    finally:
        await db.dispose()


async def test_api_key_in_query_string_and_json_answer(client: Any) -> None:
    key = await new_key(client)
    body = bulky(None)
    body.pop("attribute[item-types]")
    body["attribute[item-types][]"] = ["appliance", "carpet", "appliance"]
    response = await client.post(f"{V2}/requests.json", params={"api_key": key}, data=body)
    (item,) = json_of(response, 201)
    assert isinstance(item["service_request_id"], str)
    assert "token" not in item
    assert item["service_notice"] is None and item["account_id"] is None
    assert "access-control-allow-origin" not in response.headers  # POST is for servers


async def test_everything_in_the_query_string(client: Any) -> None:
    key = await new_key(client)
    params = {
        "api_key": key,
        "jurisdiction_id": "quebec.qc.ca",
        "service_code": "snow-driveway-blocked",
        "attribute[blocked-by]": "plow",
        "attribute[noticed-at]": "2026-01-15T06:30:00.123456789-05:00",
        **CITY,
    }
    (item,) = json_of(await client.post(f"{V2}/requests.json", params=params), 201)
    assert item["service_request_id"]


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_api_key_missing_wrong_or_revoked_is_403(client: Any, fmt: str) -> None:
    error = xml_error if fmt == "xml" else json_error
    url = f"{V2}/requests.{fmt}"
    assert "api_key" in error(await client.post(url, data=bulky()), 403)
    error(await client.post(url, data=bulky("not-a-key")), 403)
    key = await new_key(client)
    admin = await login(client, "admin", "admin")
    keys = (await client.get("/api/v1/open311-keys", headers=admin)).json()
    assert "key_hash" not in keys[0] and "api_key" not in keys[0]
    assert keys[0]["key_prefix"] == key[:8]
    revoked = await client.post(f"/api/v1/open311-keys/{keys[0]['id']}/revoke", headers=admin)
    assert revoked.json()["revoked_at"] is not None
    error(await client.post(url, data=bulky(key)), 403)


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"attribute[item-types]": []}, "item-types"),
        ({"attribute[item-types]": ["furniture", "piano"]}, "item-types"),
        ({"attribute[item-count]": "deux"}, "item-count"),
        ({"attribute[item-count]": "nan"}, "item-count"),
        ({"attribute[item-count]": ["1", "2"]}, "item-count"),
        ({"service_code": ""}, "service_code"),
        ({"service_code": "no-such-service"}, "no-such-service"),
        ({"lat": "91"}, "lat"),
        ({"long": "abc"}, "long"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
    ],
)
async def test_bad_input_is_400(client: Any, over: dict[str, Any], needle: str) -> None:
    key = await new_key(client)
    response = await client.post(
        f"{V2}/requests.json", data=bulky(key, **over), headers={"Accept-Language": "en"}
    )
    assert needle in json_error(response, 400)


async def test_single_value_list_and_datetime_attributes(client: Any) -> None:
    key = await new_key(client)
    base = {"api_key": key, "service_code": "snow-driveway-blocked", **CITY}
    url = f"{V2}/requests.xml"
    xml_error(await client.post(url, data=base), 400)  # blocked-by is required
    xml_error(await client.post(url, data={**base, "attribute[blocked-by]": "dragon"}), 400)
    xml_error(
        await client.post(url, data={**base, "attribute[blocked-by]": ["plow", "snow-blower"]}),
        400,
    )
    bad_time = {**base, "attribute[blocked-by]": "plow", "attribute[noticed-at]": "hier"}
    xml_error(await client.post(url, data=bad_time), 400)
    ok = {**base, "attribute[blocked-by]": "plow", "attribute[unknown-extra]": "ignored"}
    xml_of(await client.post(url, data=ok), 201)


async def test_outside_the_jurisdiction_is_refused(client: Any) -> None:
    key = await new_key(client)
    montreal = bulky(key, lat="45.5017", long="-73.5673")
    message = json_error(
        await client.post(f"{V2}/requests.json", data=montreal, headers={"Accept-Language": "en"}),
        400,
    )
    assert "outside" in message
    xml_error(await client.post(f"{V2}/requests.xml", data=bulky(key, jurisdiction_id="x")), 404)


async def test_location_by_address_only(client: Any) -> None:
    key = await new_key(client)
    no_location = bulky(key)
    del no_location["lat"], no_location["long"]
    json_error(
        await client.post(
            f"{V2}/requests.json",
            data={k: v for k, v in no_location.items() if k != "address_string"},
        ),
        400,
    )
    json_error(await client.post(f"{V2}/requests.json", data=no_location), 400)  # unknown address
    first = await file_request(client, key)
    again = json_of(
        await client.post(
            f"{V2}/requests.json", data={**no_location, "address_string": "100, RUE SAINT-JEAN"}
        ),
        201,
    )[0]["service_request_id"]
    both = json_of(
        await client.get(f"{V2}/requests.json", params={"service_request_id": f"{first},{again}"})
    )
    assert {(r["lat"], r["long"]) for r in both} == {(46.8139, -71.208)}


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


async def test_multipart_with_a_photo(client: Any) -> None:
    key = await new_key(client)
    data = bulky(key)
    response = await client.post(
        f"{V2}/requests.xml", data=data, files={"media": ("divan.jpg", _jpeg(), "image/jpeg")}
    )
    request_id = xml_of(response, 201).findtext("request/service_request_id")
    from server.photos.jobs import process_pending_photo_jobs
    from server.photos.models import RequestPhoto
    from server.photos.service import make_photo_store

    settings = get_settings()
    db = Database(settings)
    try:
        async with db.transaction() as tx:
            photos = list(
                (
                    await tx.execute(
                        select(RequestPhoto).where(
                            RequestPhoto.service_request_id == int(request_id or 0)
                        )
                    )
                ).scalars()
            )
        assert len(photos) == 1
        before = json_of(await client.get(f"{V2}/requests/{request_id}.json"))[0]
        assert before["media_url"] is None  # no public copy yet
        await process_pending_photo_jobs(db, make_photo_store(settings))
    finally:
        await db.dispose()
    after = json_of(await client.get(f"{V2}/requests/{request_id}.json"))[0]
    assert after["media_url"].endswith(f"/media/photos/{photos[0].sha256}/display.jpg")
    not_an_image = await client.post(
        f"{V2}/requests.json", data=data, files={"media": ("x.jpg", b"GIF89a....", "image/jpeg")}
    )
    json_error(not_an_image, 400)


# ------------------------------------------------------------------ GET requests


async def test_request_documents(client: Any) -> None:
    key = await new_key(client)
    request_id = await file_request(client, key, address_string="")
    body = json_of(await client.get(f"{V2}/requests/{request_id}.json"))
    assert isinstance(body, list) and len(body) == 1  # a single request is still an array
    item = body[0]
    assert list(item) == REQUEST_KEYS
    assert item["service_request_id"] == request_id
    assert item["status"] == "open"
    assert item["address"] == ""
    assert item["zipcode"] is None and item["media_url"] is None
    assert isinstance(item["lat"], float) and isinstance(item["long"], float)
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert ZULU.match(item[name]), item[name]
    root = xml_of(await client.get(f"{V2}/requests/{request_id}.xml"))
    assert root.tag == "service_requests"
    (xml_item,) = root.findall("request")
    assert [child.tag for child in xml_item] == REQUEST_KEYS
    assert xml_item.findtext("address") == ""
    xml_error(await client.get(f"{V2}/requests/999999.xml"), 404)
    json_error(await client.get(f"{V2}/requests/abc.json"), 404)
    json_error(await client.get(f"{V2}/requests/99999999999999999999.json"), 404)


async def test_filters_and_ignored_parameters(client: Any) -> None:
    key = await new_key(client)
    first = await file_request(client, key)
    second = await file_request(client, key, fmt="xml")
    plow = {"service_code": "snow-driveway-blocked", "attribute[blocked-by]": "plow"}
    third = await file_request(client, key, **plow)
    url = f"{V2}/requests.json"
    everything = json_of(await client.get(url, params={"extensions": "true"}))
    assert [r["service_request_id"] for r in everything] == [third, second, first]
    codes = json_of(await client.get(url, params={"service_code": "bulky-items,pothole"}))
    assert {r["service_request_id"] for r in codes} == {first, second}
    by_id = json_of(
        await client.get(
            url,
            params={
                "service_request_id": f"{first},{third},nope",
                "service_code": "pothole",
                "status": "closed",
            },
        )
    )
    assert {r["service_request_id"] for r in by_id} == {first, third}
    assert json_of(await client.get(url, params={"status": "closed"})) == []
    assert len(json_of(await client.get(url, params={"status": "open,closed"}))) == 3
    json_error(await client.get(url, params={"status": "pending"}), 400)
    xml_error(await client.get(f"{V2}/requests.xml", params={"start_date": "yesterday"}), 400)

    now = datetime.now(UTC)
    soon = (now + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
    start = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.123456789+00:00")
    window = {"start_date": start, "end_date": soon.isoformat()}
    assert len(json_of(await client.get(url, params=window))) == 3
    past = {"end_date": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert json_of(await client.get(url, params=past)) == []
    day_only = {"start_date": (now + timedelta(days=2)).strftime("%Y-%m-%d")}
    assert json_of(await client.get(url, params=day_only)) == []


async def _insert_requests(created: list[datetime]) -> None:
    from server.requests.models import ServiceRequest, ServiceType

    db = Database(get_settings())
    try:
        async with db.transaction() as tx:
            st = (
                await tx.execute(select(ServiceType).where(ServiceType.code == "pothole"))
            ).scalar_one()
            rows = [
                {
                    "service_type_id": st.id,
                    "description": "Nid-de-poule",
                    "lat": 46.81,
                    "lon": -71.21,
                    "address": "",
                    "language": "fr",
                    "channel": "phone",
                    "status": "received",
                    "tracking_token": f"bulk-{index}",
                    "created_at": moment,
                    "updated_at": moment,
                }
                for index, moment in enumerate(created)
            ]
            await tx.execute(insert(ServiceRequest), rows)
    finally:
        await db.dispose()


async def test_default_window_is_90_days(client: Any) -> None:
    now = datetime.now(UTC)
    await _insert_requests([now - timedelta(days=100), now - timedelta(days=10)])
    url = f"{V2}/requests.json"
    assert len(json_of(await client.get(url))) == 1
    old = {"start_date": (now - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert len(json_of(await client.get(url, params=old))) == 2


async def test_at_most_1000_results(client: Any) -> None:
    now = datetime.now(UTC)
    await _insert_requests([now - timedelta(minutes=i) for i in range(1005)])
    assert len(xml_of(await client.get(f"{V2}/requests.xml")).findall("request")) == 1000


async def test_token_lookup(client: Any) -> None:
    key = await new_key(client)
    (created,) = json_of(await client.post(f"{V2}/requests.json", data=bulky(key)), 201)
    token = await tracking_token(int(created["service_request_id"]))
    body = json_of(await client.get(f"{V2}/tokens/{token}.json"))
    assert body == [{"service_request_id": created["service_request_id"], "token": token}]
    root = xml_of(await client.get(f"{V2}/tokens/{token}.xml"))
    assert root.findtext("request/service_request_id") == created["service_request_id"]
    xml_error(await client.get(f"{V2}/tokens/unknown-token.xml"), 404)
    json_error(await client.get(f"{V2}/tokens/unknown-token.json"), 404)


# ------------------------------------------------------------------ status and updates


async def _crew_id(client: Any, headers: dict[str, str], code: str) -> int:
    crews = (await client.get("/api/v1/crews", headers=headers)).json()
    return int(next(c["id"] for c in crews if c["code"] == code))


async def test_status_follows_the_crew_and_updates_are_stable(client: Any) -> None:
    key = await new_key(client)
    plow = {"service_code": "snow-driveway-blocked", "attribute[blocked-by]": "plow"}
    request_id = await file_request(client, key, **plow)
    url = f"{V2}/requests/{request_id}.json"
    seen = [json_of(await client.get(url, params={"locale": "en"}))[0]]
    dispatcher = await login(client, "repartiteur1", "dispatcher")
    wo = (
        await client.post(
            "/api/v1/work-orders", json={"request_ids": [int(request_id)]}, headers=dispatcher
        )
    ).json()
    crew_id = await _crew_id(client, dispatcher, "snow-cite-limoilou-1")
    response = await client.post(
        f"/api/v1/work-orders/{wo['id']}/assign", json={"crew_id": crew_id}, headers=dispatcher
    )
    assert response.status_code == 200, response.text
    seen.append(json_of(await client.get(url, params={"locale": "en"}))[0])
    crew = await login(client, "mtremblay", "crew", device_label="Téléphone")
    for action in ("start_route", "arrive"):
        response = await client.post(
            f"/api/v1/crew/work-orders/{wo['id']}/transition", json={"action": action}, headers=crew
        )
        assert response.status_code == 200, response.text
        seen.append(json_of(await client.get(url, params={"locale": "en"}))[0])
    response = await client.post(
        f"/api/v1/crew/work-orders/{wo['id']}/transition",
        json={"action": "complete", "outcome": "fixed"},
        headers=crew,
    )
    assert response.status_code == 200, response.text
    seen.append(json_of(await client.get(url, params={"locale": "en"}))[0])
    assert [s["status"] for s in seen] == ["open", "open", "open", "open", "closed"]
    notes = [s["status_notes"] for s in seen]
    assert len(set(notes)) == 5, notes
    assert "fixed" in notes[-1].lower()
    stamps = [s["updated_datetime"] for s in seen]
    assert stamps == sorted(stamps)

    updates = json_of(await client.get(f"{V2}/servicerequestupdates.json"))
    mine = [u for u in updates if u["service_request_id"] == request_id]
    assert [u["status"] for u in mine] == [
        "ACTION_SCHEDULED",
        "IN_PROGRESS",
        "IN_PROGRESS",
        "FIXED",
    ]
    for update in mine:
        assert isinstance(update["update_id"], str)
        assert ZULU.match(update["updated_datetime"])
        assert update["media_url"] is None
        assert list(update) == [
            "update_id",
            "service_request_id",
            "status",
            "updated_datetime",
            "description",
            "media_url",
        ]
    root = xml_of(await client.get(f"{V2}/servicerequestupdates.xml"))
    assert root.tag == "service_request_updates"
    xml_ids = [u.findtext("update_id") for u in root.findall("request_update")]
    assert xml_ids == [u["update_id"] for u in updates]  # stable across calls and formats
    later = {"start_date": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()}
    assert json_of(await client.get(f"{V2}/servicerequestupdates.json", params=later)) == []
    json_error(await client.get(f"{V2}/servicerequestupdates.json", params={"end_date": "x"}), 400)
    closed = json_of(await client.get(f"{V2}/requests.json", params={"status": "closed"}))
    assert [r["service_request_id"] for r in closed] == [request_id]


# ------------------------------------------------------------------ admin: attribute definitions


async def test_admin_replaces_attribute_definitions(client: Any) -> None:
    admin = await login(client, "admin", "admin")
    definitions = [
        {
            "code": "depth",
            "datatype": "singlevaluelist",
            "required": True,
            "order": 1,
            "description_fr": "Profondeur",
            "description_en": "Depth",
            "values": [
                {"key": "shallow", "name_fr": "Peu profond", "name_en": "Shallow"},
                {"key": "deep", "name_fr": "Profond", "name_en": "Deep"},
            ],
        }
    ]
    response = await client.put(
        "/api/v1/open311-attributes/pothole", json=definitions, headers=admin
    )
    assert response.status_code == 200, response.text
    body = json_of(await client.get(f"{V2}/services/pothole.json"))
    assert [a["code"] for a in body["attributes"]] == ["depth"]
    bad = [{**definitions[0], "datatype": "string"}]
    response = await client.put("/api/v1/open311-attributes/pothole", json=bad, headers=admin)
    assert response.status_code == 422
    got = await client.get("/api/v1/open311-attributes/pothole", headers=admin)
    assert got.json()[0]["code"] == "depth"


async def test_control_characters_never_break_the_xml(client: Any) -> None:
    key = await new_key(client)
    request_id = await file_request(client, key, description="Divan\x01\x0b brisé\ufffe ✓")
    root = xml_of(await client.get(f"{V2}/requests/{request_id}.xml"))
    assert root.findtext("request/description") == "Divan brisé ✓"


# ------------------------------------------------------------------ as real clients read it


async def test_a_posted_media_url_is_kept_shown_to_dispatchers_and_answered(client: Any) -> None:
    key = await new_key(client)
    picture = "https://photos.example.org/u/42/divan.jpg?size=large"
    request_id = await file_request(client, key, media_url=picture)
    (item,) = json_of(await client.get(f"{V2}/requests/{request_id}.json"))
    assert item["media_url"] == picture
    root = xml_of(await client.get(f"{V2}/requests/{request_id}.xml"))
    assert root.findtext("request/media_url") == picture
    dispatcher = await login(client, "repartiteur1", "dispatcher")
    shown = (await client.get(f"/api/v1/requests/{request_id}", headers=dispatcher)).json()
    assert shown["media_url"] == picture
    queue = (await client.get("/api/v1/requests/", headers=dispatcher)).json()["items"]
    assert next(r for r in queue if r["id"] == int(request_id))["media_url"] == picture


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/a.jpg",
        "https://",
        "https:///nohost.jpg",
        "http://exa mple.org/a.jpg",
        "https://example.org/\x00.jpg",
        "https://example.org\\@evil.example/a.jpg",
        "data:image/png;base64,AAAA",
        "https://example.org/" + "a" * 500,
    ],
)
async def test_a_bad_media_url_is_400(client: Any, url: str) -> None:
    key = await new_key(client)
    response = await client.post(
        f"{V2}/requests.json", data=bulky(key, media_url=url), headers={"Accept-Language": "en"}
    )
    assert "media_url" in json_error(response, 400)


async def test_a_json_body_gets_an_honest_error(client: Any) -> None:
    key = await new_key(client)
    body = {k: v for k, v in bulky(key).items() if not k.startswith("attribute[")}
    response = await client.post(
        f"{V2}/requests.json", json=body, headers={"Accept-Language": "en"}
    )
    description = json_error(response, 400)
    assert "application/json" in description and "form" in description
    assert "service_code" not in description
    xml_error(
        await client.post(
            f"{V2}/requests.xml",
            content=b"<service_request/>",
            headers={"Content-Type": "text/xml"},
        ),
        400,
    )


async def test_page_and_page_size_walk_every_request_once(client: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    # ties on created_at: the id keeps the order stable
    await _insert_requests([now - timedelta(minutes=i // 3) for i in range(25)])
    url = f"{V2}/requests.json"
    everything = [r["service_request_id"] for r in json_of(await client.get(url))]
    assert len(everything) == 25
    walked: list[str] = []
    for page in range(1, 5):
        rows = json_of(await client.get(url, params={"page": str(page), "page_size": "7"}))
        walked += [r["service_request_id"] for r in rows]
    assert walked == everything
    assert json_of(await client.get(url, params={"page": "9", "page_size": "7"})) == []
    first = json_of(await client.get(url, params={"page_size": "10"}))
    assert [r["service_request_id"] for r in first] == everything[:10]
    for bad in ({"page": "0"}, {"page": "x"}, {"page_size": "1001"}, {"page_size": "-1"}):
        json_error(await client.get(url, params=bad), 400)


async def test_public_reads_carry_cors_headers(client: Any) -> None:
    origin = {"Origin": "https://carte.example.org"}
    for path in (
        "/discovery.json",
        "/services.xml",
        "/services/bulky-items.json",
        "/requests.json",
        "/servicerequestupdates.xml",
        "/requests/999999.json",  # errors too, so a page can read why
    ):
        response = await client.get(f"{V2}{path}", headers=origin)
        assert response.headers.get("access-control-allow-origin") == "*", path


async def test_a_reopened_request_is_not_told_assigned(client: Any) -> None:
    key = await new_key(client)
    request_id = await file_request(client, key)
    dispatcher = await login(client, "repartiteur1", "dispatcher")
    wo = (
        await client.post(
            "/api/v1/work-orders", json={"request_ids": [int(request_id)]}, headers=dispatcher
        )
    ).json()
    crew_id = await _crew_id(client, dispatcher, "waste-cite-limoilou-1")
    for path, body in (
        ("assign", {"crew_id": crew_id}),
        ("cancel", {"reason": "doublon"}),
        ("transition", {"action": "reopen", "reason": "pas un doublon"}),
    ):
        response = await client.post(
            f"/api/v1/work-orders/{wo['id']}/{path}", json=body, headers=dispatcher
        )
        assert response.status_code == 200, response.text
    updates = json_of(await client.get(f"{V2}/servicerequestupdates.json", params={"locale": "en"}))
    mine = [u for u in updates if u["service_request_id"] == request_id]
    assert [u["status"] for u in mine] == ["ACTION_SCHEDULED", "CLOSED", "OPEN"]
    assert "reopened" in mine[-1]["description"].lower()
    assert "assigned" not in mine[-1]["description"].lower()
