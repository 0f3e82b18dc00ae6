"""Demo data: geography, reference data and the deterministic request generator."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import combinations
from zoneinfo import ZoneInfo

import pytest

from server import demo_data as dd

NOW = datetime(2026, 1, 15, 14, 30, tzinfo=UTC)  # 09:30 in Québec, the morning after a storm
QUEBEC = ZoneInfo("America/Toronto")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def segments_cross(a: dd.LatLon, b: dd.LatLon, c: dd.LatLon, d: dd.LatLon) -> bool:
    def orient(p: dd.LatLon, q: dd.LatLon, r: dd.LatLon) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    return (orient(a, b, c) > 0) != (orient(a, b, d) > 0) and (orient(c, d, a) > 0) != (
        orient(c, d, b) > 0
    )


def edges(polygon: dd.Ring) -> list[tuple[dd.LatLon, dd.LatLon]]:
    return [(polygon[i], polygon[(i + 1) % len(polygon)]) for i in range(len(polygon))]


def grid(polygon: dd.Ring, steps: int = 25) -> list[dd.LatLon]:
    """Points of a regular grid over the polygon's bounding box that fall inside it."""
    lats = [p[0] for p in polygon]
    lons = [p[1] for p in polygon]
    points = []
    for i in range(steps + 1):
        for j in range(steps + 1):
            lat = min(lats) + (max(lats) - min(lats)) * i / steps
            lon = min(lons) + (max(lons) - min(lons)) * j / steps
            if dd.point_in_polygon(lat, lon, polygon):
                points.append((lat, lon))
    return points


def in_city(lat: float, lon: float) -> bool:
    min_lat, min_lon, max_lat, max_lon = dd.CITY_BOUNDS
    return min_lat <= lat <= max_lat and min_lon <= lon <= max_lon


@pytest.fixture(scope="module")
def requests() -> list[dd.DemoRequest]:
    return dd.generate_requests(311, 2000, NOW)


# --- geometry -------------------------------------------------------------------------------

SQUARE = ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0))
L_SHAPE = ((0.0, 0.0), (0.0, 2.0), (1.0, 2.0), (1.0, 1.0), (2.0, 1.0), (2.0, 0.0))


@pytest.mark.parametrize(
    ("polygon", "point", "inside"),
    [
        (SQUARE, (0.5, 0.5), True),
        (SQUARE, (1.5, 0.5), False),
        (SQUARE, (-0.1, 0.5), False),
        (SQUARE, (0.5, 1.0001), False),
        (L_SHAPE, (0.5, 1.5), True),
        (L_SHAPE, (1.5, 0.5), True),
        (L_SHAPE, (1.5, 1.5), False),  # the notch of the L
    ],
)
def test_point_in_polygon(polygon: dd.Ring, point: dd.LatLon, inside: bool) -> None:
    assert dd.point_in_polygon(*point, polygon) is inside


# --- boroughs -------------------------------------------------------------------------------


def test_the_six_boroughs_of_quebec_city() -> None:
    assert {b.name for b in dd.BOROUGHS} == {
        "La Cité-Limoilou",
        "Les Rivières",
        "Sainte-Foy–Sillery–Cap-Rouge",
        "Charlesbourg",
        "Beauport",
        "La Haute-Saint-Charles",
    }
    codes = [b.code for b in dd.BOROUGHS]
    assert len(set(codes)) == 6
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", code) for code in codes)
    assert set(dd.BOROUGH_BY_CODE) == set(codes)


@pytest.mark.parametrize("borough", dd.BOROUGHS, ids=lambda b: b.code)
def test_polygon_is_simple_with_5_to_10_vertices(borough: dd.Borough) -> None:
    assert 5 <= len(borough.polygon) <= 10
    sides = edges(borough.polygon)
    for (i, (a, b)), (j, (c, d)) in combinations(enumerate(sides), 2):
        if j - i in (1, len(sides) - 1):
            continue  # neighbours share a vertex
        assert not segments_cross(a, b, c, d), (borough.code, i, j)


@pytest.mark.parametrize("borough", dd.BOROUGHS, ids=lambda b: b.code)
def test_polygon_lies_inside_the_borough_limits(borough: dd.Borough) -> None:
    points = list(borough.polygon) + grid(borough.polygon)
    assert len(points) > 100
    for lat, lon in points:
        assert in_city(lat, lon)
        assert borough.contains(lat, lon), (lat, lon)
    assert dd.point_in_polygon(*borough.center, borough.polygon)


def test_polygons_do_not_overlap() -> None:
    for one, other in combinations(dd.BOROUGHS, 2):
        for a, b in edges(one.polygon):
            for c, d in edges(other.polygon):
                assert not segments_cross(a, b, c, d), (one.code, other.code)
        assert not any(dd.point_in_polygon(*p, other.polygon) for p in one.polygon)
        assert not any(dd.point_in_polygon(*p, one.polygon) for p in other.polygon)


def test_outlines_fit_in_city_bounds() -> None:
    for borough in dd.BOROUGHS:
        for ring in (borough.outline, *borough.holes):
            assert all(in_city(lat, lon) for lat, lon in ring), borough.code


@pytest.mark.parametrize("borough", dd.BOROUGHS, ids=lambda b: b.code)
def test_streets_are_a_clean_list(borough: dd.Borough) -> None:
    assert 15 <= len(borough.streets) <= 30
    assert len(set(borough.streets)) == len(borough.streets)
    assert all(street and street == street.strip() for street in borough.streets)


@pytest.mark.parametrize(
    ("place", "lat", "lon", "expected"),
    [
        ("Château Frontenac", 46.8122, -71.2046, "cite-limoilou"),
        ("Hôtel du Parlement", 46.8088, -71.2143, "cite-limoilou"),
        ("3e Avenue, Limoilou", 46.8240, -71.2200, "cite-limoilou"),
        ("Vanier", 46.8156, -71.2555, "les-rivieres"),
        ("Lebourgneuf", 46.8356, -71.2788, "les-rivieres"),
        ("Université Laval", 46.7800, -71.2750, "sainte-foy-sillery-cap-rouge"),
        ("Cap-Rouge", 46.7530, -71.3460, "sainte-foy-sillery-cap-rouge"),
        ("Trait-Carré", 46.8591, -71.2661, "charlesbourg"),
        ("Vieux-Beauport", 46.8594, -71.1933, "beauport"),
        ("Chute Montmorency", 46.8905, -71.1490, "beauport"),
        ("Val-Bélair", 46.8590, -71.4179, "haute-saint-charles"),
        ("Lac-Saint-Charles", 46.9050, -71.3800, "haute-saint-charles"),
        ("Wendake (not the city)", 46.8700, -71.3600, None),
        ("L'Ancienne-Lorette (not the city)", 46.8050, -71.3600, None),
        ("Lévis", 46.8030, -71.1780, None),
        ("Île d'Orléans", 46.8700, -71.1000, None),
        ("Montréal", 45.5017, -73.5673, None),
    ],
)
def test_borough_for(place: str, lat: float, lon: float, expected: str | None) -> None:
    assert dd.borough_for(lat, lon) == expected, place


# --- service types --------------------------------------------------------------------------


def test_service_types() -> None:
    codes = [st.code for st in dd.SERVICE_TYPES]
    assert 12 <= len(codes) <= 16
    assert len(set(codes)) == len(codes)
    assert set(dd.SERVICE_TYPE_BY_CODE) == set(codes)
    for expected in (
        "snow-driveway-blocked",
        "snow-sidewalk",
        "snow-hauling",
        "salting",
        "waste-missed-garbage",
        "waste-missed-recycling",
        "waste-missed-organics",
        "bulky-items",
        "illegal-dumping",
        "damaged-bin",
        "pothole",
        "streetlight",
    ):
        assert expected in codes
    for st in dd.SERVICE_TYPES:
        assert st.name_fr.strip() and st.name_en.strip(), st.code
        assert st.description_fr.strip() and st.description_en.strip(), st.code
        assert st.name_fr != st.name_en, st.code
        assert st.category in ("snow", "waste", "other")
        assert 1 <= st.default_priority <= 4
        assert st.sla_hours > 0
        assert set(st.evidence_required) <= {"before", "after"}
        expected_crew = st.category if st.category in ("snow", "waste") else None
        assert st.crew_kind == expected_crew, st.code


# --- people ---------------------------------------------------------------------------------


def test_two_snow_and_two_waste_crews_per_borough() -> None:
    per_borough = Counter((crew.borough_code, crew.kind) for crew in dd.CREWS)
    assert per_borough == {(b.code, kind): 2 for b in dd.BOROUGHS for kind in ("snow", "waste")}
    assert len({crew.code for crew in dd.CREWS}) == len(dd.CREWS)
    kinds_in_use = {st.crew_kind for st in dd.SERVICE_TYPES if st.crew_kind}
    for crew in dd.CREWS:
        assert crew.borough_code in dd.BOROUGH_BY_CODE
        assert crew.kind in kinds_in_use
        label = "Déneigement" if crew.kind == "snow" else "Collecte"
        assert re.fullmatch(rf"{label} .+ [12]", crew.name), crew.name
        assert 2 <= len(crew.members) <= 3
        assert crew.device_label == f"Téléphone équipe {crew.name}"
        assert all(m.display_name.count(" ") >= 1 for m in crew.members)


def test_usernames_are_unique_ascii_slugs() -> None:
    staff = dd.DISPATCHERS + dd.ADMINS
    usernames = [m.username for crew in dd.CREWS for m in crew.members] + [
        u.username for u in staff
    ]
    assert len(set(usernames)) == len(usernames)
    assert all(re.fullmatch(r"[a-z][a-z0-9]*", name) for name in usernames), usernames
    assert len(dd.DISPATCHERS) == 2 and {u.role for u in dd.DISPATCHERS} == {"dispatcher"}
    assert dd.ADMINS == (dd.ADMIN,) and dd.ADMIN.username == "admin" and dd.ADMIN.role == "admin"
    display_names = [m.display_name for crew in dd.CREWS for m in crew.members]
    assert len(set(display_names)) == len(display_names)


@pytest.mark.parametrize(
    ("display_name", "taken", "expected"),
    [
        ("Marie-Ève Côté", (), "mcote"),
        ("Frédéric St-Pierre", (), "fstpierre"),
        ("Marc Tremblay", ("mtremblay",), "mtremblay2"),
        ("Marc Tremblay", ("mtremblay", "mtremblay2"), "mtremblay3"),
    ],
)
def test_username_for(display_name: str, taken: tuple[str, ...], expected: str) -> None:
    assert dd.username_for(display_name, taken) == expected


# --- generated requests ---------------------------------------------------------------------


def test_generation_is_deterministic() -> None:
    first = dd.generate_requests(42, 300, NOW)
    assert first == dd.generate_requests(42, 300, NOW)
    assert first != dd.generate_requests(43, 300, NOW)
    assert len(first) == 300
    assert dd.generate_requests(42, 0, NOW) == []
    # a naive "now" is UTC
    assert dd.generate_requests(42, 50, NOW.replace(tzinfo=None)) == dd.generate_requests(
        42, 50, NOW
    )
    with pytest.raises(ValueError):
        dd.generate_requests(42, -1, NOW)


def test_points_fall_in_their_borough(requests: list[dd.DemoRequest]) -> None:
    for r in requests:
        borough = dd.BOROUGH_BY_CODE[r.borough_code]
        assert dd.point_in_polygon(r.lat, r.lon, borough.polygon), r
        assert in_city(r.lat, r.lon)
        assert dd.borough_for(r.lat, r.lon) == r.borough_code
    assert {r.borough_code for r in requests} == set(dd.BOROUGH_BY_CODE)


def test_references_and_fields(requests: list[dd.DemoRequest]) -> None:
    for r in requests:
        assert r.service_code in dd.SERVICE_TYPE_BY_CODE
        number, _, street = r.address.partition(", ")
        assert number.isdigit() and int(number) > 0, r.address
        assert street in dd.BOROUGH_BY_CODE[r.borough_code].streets, r.address
        assert r.description.strip() and "{" not in r.description and "}" not in r.description
        assert r.reporter_name.strip()
        assert re.fullmatch(r"(418|581) 555-01\d\d", r.reporter_phone), r.reporter_phone
        assert r.reporter_email is None or re.fullmatch(
            r"[a-z]+\.[a-z]+\d+@example\.(com|org|net)", r.reporter_email
        )
        assert r.channel in ("phone", "web", "app", "open311")
        assert r.language in ("fr", "en")
    assert any(r.reporter_email is None for r in requests)
    assert any(r.reporter_email is not None for r in requests)


def test_bulky_items_and_missed_collections_lead_then_snow(
    requests: list[dd.DemoRequest],
) -> None:
    counts = Counter(r.service_code for r in requests)
    collections = sum(
        counts[c]
        for c in (
            "bulky-items",
            "waste-missed-garbage",
            "waste-missed-recycling",
            "waste-missed-organics",
        )
    )
    snow = sum(n for code, n in counts.items() if dd.SERVICE_TYPE_BY_CODE[code].category == "snow")
    rest = len(requests) - collections - snow
    assert collections > snow > rest
    assert collections / len(requests) > 0.35
    assert counts.most_common(1)[0][0] == "bulky-items"
    assert set(counts) == set(dd.SERVICE_TYPE_BY_CODE)


def test_channels_and_languages(requests: list[dd.DemoRequest]) -> None:
    n = len(requests)
    channels = Counter(r.channel for r in requests)
    assert 0.52 < channels["phone"] / n < 0.68
    assert 0.18 < channels["web"] / n < 0.32
    assert 0.05 < channels["app"] / n < 0.15
    assert 0.02 < channels["open311"] / n < 0.08
    french = sum(r.language == "fr" for r in requests) / n
    assert 0.80 < french < 0.90
    # English requests are described in English, French ones in French.
    english_texts = {r.description for r in requests if r.language == "en"}
    french_texts = {r.description for r in requests if r.language == "fr"}
    assert english_texts and not english_texts & french_texts


def test_times(requests: list[dd.DemoRequest]) -> None:
    assert [r.created_at for r in requests] == sorted(r.created_at for r in requests)
    for r in requests:
        assert r.created_at.utcoffset() == timedelta(0)
        assert NOW - timedelta(hours=72) < r.created_at <= NOW
        if r.channel == "phone":  # 311 answers 08:00–19:00, Québec time
            assert 8 <= r.created_at.astimezone(QUEBEC).hour < 19, r.created_at
    snow = [r for r in requests if dd.SERVICE_TYPE_BY_CODE[r.service_code].category == "snow"]
    recent = sum(NOW - r.created_at <= timedelta(hours=24) for r in snow)
    assert recent / len(snow) > 0.8  # a storm just happened
    others = [r for r in requests if r not in snow]
    assert sum(NOW - r.created_at > timedelta(hours=24) for r in others) / len(others) > 0.5


def test_near_duplicates_exist() -> None:
    requests = dd.generate_requests(7, 400, NOW)
    duplicates = 0
    for i, later in enumerate(requests):
        if any(
            earlier.service_code == later.service_code
            and earlier.created_at < later.created_at
            and distance_m(earlier.lat, earlier.lon, later.lat, later.lon) <= 30
            for earlier in requests[:i]
        ):
            duplicates += 1
    assert 0.04 * len(requests) <= duplicates <= 0.08 * len(requests)
