"""`tournee city import`: a city's own borough limits replace the demo's, and new requests are
placed with them (the borough of a point is a query on the borough table)."""

from __future__ import annotations

import copy
import json
import sqlite3
import subprocess
from pathlib import Path

from server.city.service import contains, parse_feature_collection
from tests.support.cli import tournee

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
    return tournee(tmp_path, *args, database="city.sqlite3", keep_secret=True)


def test_cli_imports_then_updates_the_boroughs(tmp_path: Path) -> None:
    assert _tournee(tmp_path, "migrate").returncode == 0
    source = tmp_path / "boroughs.geojson"
    source.write_text(json.dumps(CITY), "utf-8")
    first = _tournee(tmp_path, "city", "import", "--boroughs", str(source))
    assert first.returncode == 0, first.stderr
    assert "boroughs: 2 created, 0 updated" in first.stdout
    renamed = copy.deepcopy(CITY)
    renamed["features"][0]["properties"]["nom"] = "Ouest renommé"  # type: ignore[index]
    source.write_text(json.dumps(renamed), "utf-8")
    again = _tournee(tmp_path, "city", "import", "--boroughs", str(source))
    assert again.returncode == 0 and "boroughs: 0 created, 2 updated" in again.stdout
    with sqlite3.connect(tmp_path / "city.sqlite3") as conn:
        rows = conn.execute(
            "SELECT code, name, min_lat, max_lon FROM borough ORDER BY code"
        ).fetchall()
    assert rows == [("est", "Est", 46.8, -71.1), ("ouest", "Ouest renommé", 46.8, -71.2)]

    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [{}]}', "utf-8")
    refused = _tournee(tmp_path, "city", "import", "--boroughs", str(broken))
    assert refused.returncode == 1 and "feature 0" in refused.stderr
    with sqlite3.connect(tmp_path / "city.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM borough").fetchone() == (2,)


def _counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("borough", "service_type", "open311_service_attribute", "crew")
        }


def test_the_demo_city_exported_imports_into_an_empty_database(tmp_path: Path) -> None:
    """docs/city.md: the Québec demo's files are the example a city copies."""
    demo = tmp_path / "demo"
    demo.mkdir()
    assert _tournee(demo, "demo", "--requests", "0").returncode == 0
    exported = _tournee(demo, "city", "export", str(tmp_path / "files"))
    assert exported.returncode == 0, exported.stderr
    files = tmp_path / "files"
    assert sorted(p.name for p in files.iterdir()) == [
        "boroughs.geojson",
        "crews.csv",
        "service-types.yaml",
    ]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert _tournee(fresh, "migrate").returncode == 0
    args = ["--boroughs", str(files / "boroughs.geojson")]
    args += ["--service-types", str(files / "service-types.yaml")]
    args += ["--crews", str(files / "crews.csv")]
    imported = _tournee(fresh, "city", "import", *args)
    assert imported.returncode == 0, imported.stderr
    assert "boroughs: 6 created" in imported.stdout and "crews: 24 created" in imported.stdout
    assert _counts(fresh / "city.sqlite3") == _counts(demo / "city.sqlite3")
    again = _tournee(fresh, "city", "export", str(tmp_path / "again"))
    assert again.returncode == 0
    for name in ("boroughs.geojson", "crews.csv", "service-types.yaml"):
        assert (tmp_path / "again" / name).read_text("utf-8") == (files / name).read_text("utf-8")


def test_a_bad_line_anywhere_imports_nothing(tmp_path: Path) -> None:
    assert _tournee(tmp_path, "migrate").returncode == 0
    boroughs = tmp_path / "boroughs.geojson"
    boroughs.write_text(json.dumps(CITY), "utf-8")
    crews = tmp_path / "crews.csv"
    crews.write_text("code,name,borough_code,kind\nsnow-1,Déneigement 1,nowhere,snow\n", "utf-8")
    refused = _tournee(
        tmp_path, "city", "import", "--boroughs", str(boroughs), "--crews", str(crews)
    )
    assert refused.returncode == 1 and "borough_unknown" in refused.stderr
    types = tmp_path / "types.yaml"
    types.write_text("- code: x\n  name_fr: X\n", "utf-8")
    bad_type = _tournee(tmp_path, "city", "import", "--service-types", str(types))
    assert bad_type.returncode == 1 and "service type 1" in bad_type.stderr
    header = tmp_path / "header.csv"
    header.write_text("code,name\nx,y\n", "utf-8")
    bad_header = _tournee(tmp_path, "city", "import", "--crews", str(header))
    assert bad_header.returncode == 1 and "header" in bad_header.stderr
    assert _counts(tmp_path / "city.sqlite3") == {
        "borough": 0,
        "service_type": 0,
        "open311_service_attribute": 0,
        "crew": 0,
    }
