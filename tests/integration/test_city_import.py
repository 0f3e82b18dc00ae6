"""`tournee city import`: a city's own borough limits replace the demo's, and new requests are
placed with them (the borough of a point is a query on the borough table)."""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from server.city.service import contains, parse_feature_collection

SQUARE = [[-71.30, 46.80], [-71.20, 46.80], [-71.20, 46.90], [-71.30, 46.90], [-71.30, 46.80]]
HOLE = [[-71.26, 46.84], [-71.24, 46.84], [-71.24, 46.86], [-71.26, 46.86], [-71.26, 46.84]]
EAST = [[-71.20, 46.80], [-71.10, 46.80], [-71.10, 46.90], [-71.20, 46.90], [-71.20, 46.80]]


def _collection(*features: tuple[str, str, dict[str, object]]) -> dict[str, object]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": code, "nom": name}, "geometry": geometry}
            for code, name, geometry in features
        ],
    }


CITY = _collection(
    ("ouest", "Ouest", {"type": "Polygon", "coordinates": [SQUARE, HOLE]}),
    ("est", "Est", {"type": "MultiPolygon", "coordinates": [[EAST]]}),
)


def test_limits_with_holes_and_multipolygons() -> None:
    west, east = parse_feature_collection(CITY)
    assert (west.code, west.name, east.code) == ("ouest", "Ouest", "est")
    assert contains(west.geometry, 46.82, -71.28)
    assert not contains(west.geometry, 46.85, -71.25)  # in the hole
    assert not contains(west.geometry, 46.85, -71.15)
    assert contains(east.geometry, 46.85, -71.15)


def test_invalid_collections_are_refused() -> None:
    bad = [
        {"type": "Feature"},
        _collection(("", "Sans code", {"type": "Polygon", "coordinates": [SQUARE]})),
        _collection(("x", "Point", {"type": "Point", "coordinates": [-71.2, 46.8]})),
        _collection(("x", "Ouvert", {"type": "Polygon", "coordinates": [SQUARE[:2]]})),
        _collection(("x", "Hors", {"type": "Polygon", "coordinates": [[[500, 1]] * 4]})),
        _collection(
            ("x", "A", {"type": "Polygon", "coordinates": [SQUARE]}),
            ("x", "B", {"type": "Polygon", "coordinates": [EAST]}),
        ),
    ]
    for data in bad:
        try:
            parse_feature_collection(data)
        except ValueError:
            continue
        raise AssertionError(f"accepted: {data}")


def _tournee(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TOURNEE_VAR_DIR": str(tmp_path / "var"),
        "TOURNEE_DATABASE_URL": f"sqlite:///{tmp_path / 'city.sqlite3'}",
    }
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_imports_then_updates_the_boroughs(tmp_path: Path) -> None:
    assert _tournee(tmp_path, "migrate").returncode == 0
    source = tmp_path / "boroughs.geojson"
    source.write_text(json.dumps(CITY), "utf-8")
    first = _tournee(tmp_path, "city", "import", str(source))
    assert first.returncode == 0, first.stderr
    assert "2 created, 0 updated" in first.stdout
    renamed = copy.deepcopy(CITY)
    renamed["features"][0]["properties"]["nom"] = "Ouest renommé"  # type: ignore[index]
    source.write_text(json.dumps(renamed), "utf-8")
    again = _tournee(tmp_path, "city", "import", str(source))
    assert again.returncode == 0 and "0 created, 2 updated" in again.stdout
    with sqlite3.connect(tmp_path / "city.sqlite3") as conn:
        rows = conn.execute(
            "SELECT code, name, min_lat, max_lon FROM borough ORDER BY code"
        ).fetchall()
    assert rows == [("est", "Est", 46.8, -71.1), ("ouest", "Ouest renommé", 46.8, -71.2)]

    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [{}]}', "utf-8")
    refused = _tournee(tmp_path, "city", "import", str(broken))
    assert refused.returncode == 1 and "feature 0" in refused.stderr
    with sqlite3.connect(tmp_path / "city.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM borough").fetchone() == (2,)
