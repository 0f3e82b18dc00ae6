"""Exports through HTTP: CSV and GeoJSON of work orders and requests, and the SLA report."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from server.db import Database
from server.exports import service as export_service
from server.requests.models import ServiceRequest
from server.settings import get_settings
from server.workorders.models import WorkOrder

CITY = {"lat": 46.8139, "lon": -71.2080}
T0 = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
RANGE = {"since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"}


async def _request(client: Any, headers: dict[str, str], **over: Any) -> dict[str, Any]:
    body = {
        "service_code": "bulky-items",
        "description": "Vieux divan",
        "address": "100, rue Saint-Jean",
        "reporter_name": "Josée Tremblay",
        "reporter_phone": "418-555-0101",
        **CITY,
        **over,
    }
    response = await client.post("/api/v1/requests", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _work_order(client: Any, headers: dict[str, str], request_id: int) -> int:
    response = await client.post(
        "/api/v1/work-orders", json={"request_ids": [request_id]}, headers=headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _set(model: Any, row_id: int, **values: Any) -> None:
    db = Database(get_settings())
    try:
        async with db.transaction() as tx:
            await tx.execute(update(model).where(model.id == row_id).values(**values))
    finally:
        await db.dispose()


async def _dataset(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    """Five bulky-item requests on 10 January (four done after 10, 20, 30, 130 h; SLA 120 h),
    one garbage request elsewhere the same day (not done), one request in December (outside)."""
    done_hours = [10, 20, 30, 130]
    requests = []
    for hours in [*done_hours, None]:
        request = await _request(client, headers)
        await _set(ServiceRequest, request["id"], created_at=T0)
        if hours is not None:
            wo_id = await _work_order(client, headers, request["id"])
            await _set(
                WorkOrder,
                wo_id,
                status="completed",
                outcome="done",
                created_at=T0,
                completed_at=T0 + timedelta(hours=hours),
                closed_at=T0 + timedelta(hours=hours),
            )
            # what the app does to linked requests when their order completes
            await _set(
                ServiceRequest,
                request["id"],
                status="closed",
                closed_at=T0 + timedelta(hours=hours),
            )
        requests.append(request)
    other = await _request(
        client, headers, service_code="waste-missed-garbage", lat=46.86, lon=-71.27
    )
    await _set(ServiceRequest, other["id"], created_at=T0 + timedelta(days=1))
    before = await _request(client, headers, description='=HYPERLINK("x")')
    await _set(ServiceRequest, before["id"], created_at=datetime(2025, 12, 20, tzinfo=UTC))
    return {"bulky": requests, "other": other, "before": before}


def _csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


async def test_sla_report_numbers_json_and_csv(client: Any, dispatcher: dict[str, str]) -> None:
    data = await _dataset(client, dispatcher)
    response = await client.get("/api/v1/exports/sla", params=RANGE, headers=dispatcher)
    assert response.status_code == 200, response.text
    rows = {(r["service_code"], r["borough_code"]): r for r in response.json()}
    bulky = rows[("bulky-items", data["bulky"][0]["borough_code"])]
    assert bulky == {
        "service_code": "bulky-items",
        "borough_code": data["bulky"][0]["borough_code"],
        "sla_hours": 120,
        "received": 5,  # the December one is outside the range
        "done": 4,
        "median_hours": 25.0,
        "p90_hours": 130.0,
        "within_sla_pct": 75.0,
    }
    garbage = rows[("waste-missed-garbage", data["other"]["borough_code"])]
    assert (garbage["received"], garbage["done"], garbage["median_hours"]) == (1, 0, None)
    assert garbage["within_sla_pct"] is None
    assert len(rows) == 2

    as_csv = _csv(
        await client.get(
            "/api/v1/exports/sla", params={**RANGE, "format": "csv"}, headers=dispatcher
        )
    )
    line = next(r for r in as_csv if r["service_code"] == "bulky-items")
    assert (line["received"], line["done"], line["median_hours"], line["p90_hours"]) == (
        "5",
        "4",
        "25.0",
        "130.0",
    )
    assert line["within_sla_pct"] == "75.0"
    empty = next(r for r in as_csv if r["service_code"] == "waste-missed-garbage")
    assert empty["median_hours"] == "" and empty["within_sla_pct"] == ""


async def test_request_exports_csv_and_geojson(client: Any, dispatcher: dict[str, str]) -> None:
    data = await _dataset(client, dispatcher)
    rows = _csv(await client.get("/api/v1/exports/requests", headers=dispatcher))
    assert len(rows) == 7
    assert [int(r["id"]) for r in rows] == sorted(int(r["id"]) for r in rows)
    first = next(r for r in rows if int(r["id"]) == data["bulky"][0]["id"])
    assert first["reporter_name"] == "Josée Tremblay"  # dispatchers see the contact already
    assert first["reporter_phone"] == "418-555-0101"
    assert first["work_order_status"] == "completed"
    assert first["created_at"] == "2026-01-10T08:00:00Z"
    injected = next(r for r in rows if int(r["id"]) == data["before"]["id"])
    assert injected["description"] == '\'=HYPERLINK("x")'  # no spreadsheet formula

    in_range = _csv(
        await client.get(
            "/api/v1/exports/requests",
            params={**RANGE, "service_code": "bulky-items"},
            headers=dispatcher,
        )
    )
    assert sorted(int(r["id"]) for r in in_range) == sorted(r["id"] for r in data["bulky"])

    response = await client.get(
        "/api/v1/exports/requests",
        params={"format": "geojson", "status": "received"},
        headers=dispatcher,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = json.loads(response.content)
    assert collection["type"] == "FeatureCollection"
    ids = {f["id"] for f in collection["features"]}
    assert ids == {data["bulky"][4]["id"], data["other"]["id"], data["before"]["id"]}
    feature = next(f for f in collection["features"] if f["id"] == data["other"]["id"])
    assert feature["type"] == "Feature"
    assert feature["geometry"] == {"type": "Point", "coordinates": [-71.27, 46.86]}
    assert feature["properties"]["service_code"] == "waste-missed-garbage"
    assert "lat" not in feature["properties"]


async def test_work_order_exports_filters(client: Any, dispatcher: dict[str, str]) -> None:
    await _dataset(client, dispatcher)
    request = await _request(client, dispatcher, service_code="waste-missed-garbage")
    open_id = await _work_order(client, dispatcher, request["id"])
    await _set(WorkOrder, open_id, due_at=datetime(2026, 1, 1, tzinfo=UTC))

    rows = _csv(await client.get("/api/v1/exports/work-orders", headers=dispatcher))
    assert len(rows) == 5
    assert set(rows[0]) == set(export_service.WORK_ORDER_COLUMNS)
    overdue = _csv(
        await client.get(
            "/api/v1/exports/work-orders", params={"overdue": "true"}, headers=dispatcher
        )
    )
    assert [int(r["id"]) for r in overdue] == [open_id]
    assert overdue[0]["overdue"] == "True"
    done = _csv(
        await client.get(
            "/api/v1/exports/work-orders",
            params={"status": "completed", "service_code": "bulky-items", **RANGE},
            headers=dispatcher,
        )
    )
    assert len(done) == 4 and {r["completed_at"][:10] for r in done} <= {
        "2026-01-10",
        "2026-01-11",
        "2026-01-15",
    }
    response = await client.get(
        "/api/v1/exports/work-orders", params={"format": "geojson"}, headers=dispatcher
    )
    collection = json.loads(response.content)
    assert len(collection["features"]) == 5
    assert all(f["geometry"]["type"] == "Point" for f in collection["features"])


async def test_export_streams_in_batches(client: Any, dispatcher: dict[str, str]) -> None:
    """More rows than one batch: every row once, in id order, across batch boundaries."""
    made = [(await _request(client, dispatcher))["id"] for _ in range(7)]
    db = Database(get_settings())
    try:
        seen = []
        filters = export_service.ExportFilters()
        now = datetime.now(UTC)
        query = export_service.request_query(filters, now)
        async for rows in export_service._batches(db, query, ServiceRequest.id, batch=3):
            assert len(rows) <= 3
            seen.extend(row[0].id for row in rows)
    finally:
        await db.dispose()
    assert seen == made


async def test_bad_export_parameters_are_problems(client: Any, dispatcher: dict[str, str]) -> None:
    cases = [
        ("/api/v1/exports/work-orders", {"format": "xlsx"}),
        ("/api/v1/exports/work-orders", {"service_code": "no-such"}),
        (
            "/api/v1/exports/requests",
            {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        ),
        ("/api/v1/exports/requests", {"since": "yesterday"}),
        ("/api/v1/exports/sla", {"since": "2020-01-01", "until": "2026-01-01"}),
        ("/api/v1/exports/sla", {"format": "geojson"}),
    ]
    for path, params in cases:
        response = await client.get(
            path, params=params, headers={**dispatcher, "Accept-Language": "en"}
        )
        assert response.status_code in (400, 422), (path, params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    response = await client.get(
        "/api/v1/exports/requests",
        params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers={**dispatcher, "Accept-Language": "fr"},
    )
    problem = response.json()
    assert problem["code"] == "date_range_invalid"
    assert "précéder" in problem["title"] + problem.get("detail", ""), problem


async def test_nul_in_a_filter_is_a_400_before_the_download_starts(
    client: Any, dispatcher: dict[str, str]
) -> None:
    """Found by the API fuzz: a NUL in a text filter reached the database once the 200 and the
    CSV header were sent, and the download was cut short."""
    for kind in ("work-orders", "requests"):
        for name in ("borough", "status", "service_code"):
            response = await client.get(
                f"/api/v1/exports/{kind}", params={name: "a\x00b"}, headers=dispatcher
            )
            assert response.status_code == 400, (kind, name, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "text_nul_character"
