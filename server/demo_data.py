"""Deterministic demo data for Québec City: boroughs, service types, crews, users, requests.

Pure Python (no database code): the seeding code turns these frozen dataclasses into rows
(through server/city_import.py, like a city's own files). Long because it is data (six borough
outlines, fourteen service types, twenty-four crews, the request generator's tables), not logic;
only server/seed.py reads it. Everything is constant except :func:`generate_requests`, which is
a pure function of ``(seed, n, now)``.

Geography
---------
Each borough has two shapes, both as ``(lat, lon)`` tuples:

* ``polygon``: a simple 5–10-vertex polygon drawn *inside* the borough, at least ~200 m from
  its limits, away from the river and from the enclaves that are not part of the city
  (Wendake, L'Ancienne-Lorette). Demo requests are sampled inside it, so a generated point is
  really in that borough on a map.
* ``outline`` (and ``holes``): the borough's limits, simplified by hand (a few hundred metres of
  tolerance at most) from Ville de Québec open data, « Découpage administratif –
  arrondissements » (vdq-arrondissement, Données Québec, licence CC BY 4.0).
  :func:`borough_for` uses it so that any point of the city resolves, not only the demo
  polygons. Near a limit the answer is a good guess, not a cadastral fact.

Street names are real streets of each borough. A demo address is a civic number on one of
them; it is not geocoded to the request's point (the point is random inside the polygon).
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.geo import point_in_ring

LatLon = tuple[float, float]
Ring = tuple[LatLon, ...]
Category = Literal["snow", "waste", "other"]
CrewKind = Literal["snow", "waste"]
Channel = Literal["phone", "web", "app", "open311"]
Language = Literal["fr", "en"]
Role = Literal["admin", "dispatcher", "crew"]
Evidence = Literal["before", "after"]


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def point_in_polygon(lat: float, lon: float, polygon: Sequence[LatLon]) -> bool:
    """Even-odd ray casting on a simple polygon of ``(lat, lon)`` vertices (not closed)."""
    return point_in_ring(lat, lon, polygon)


# --------------------------------------------------------------------------------------------
# Boroughs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Borough:
    code: str
    name: str
    short_name: str  # for crew names: "Déneigement Sainte-Foy 1"
    polygon: Ring  # simple, inside the borough: demo points are sampled here
    streets: tuple[str, ...]  # real streets of the borough
    outline: Ring  # simplified real limits, for borough_for()
    holes: tuple[Ring, ...] = ()  # enclaves that are not part of the borough

    @property
    def center(self) -> LatLon:
        """Vertex average of ``polygon``: a point inside it, handy to centre a map."""
        lats = [p[0] for p in self.polygon]
        lons = [p[1] for p in self.polygon]
        return (round(sum(lats) / len(lats), 6), round(sum(lons) / len(lons), 6))

    def geometry(self) -> dict[str, object]:
        """The simplified limits as a GeoJSON Polygon (``[lon, lat]``, closed rings, holes)."""

        def ring(points: Ring) -> list[list[float]]:
            closed = [*points, points[0]]
            return [[lon, lat] for lat, lon in closed]

        return {"type": "Polygon", "coordinates": [ring(self.outline), *map(ring, self.holes)]}

    def contains(self, lat: float, lon: float) -> bool:
        """True when the point is inside the borough's simplified limits."""
        return point_in_polygon(lat, lon, self.outline) and not any(
            point_in_polygon(lat, lon, hole) for hole in self.holes
        )


# Simplified limits (see the module docstring for the source and licence).
# fmt: off
_CITE_LIMOILOU_OUTLINE: Final[Ring] = (
    (46.8199, -71.2393), (46.8221, -71.2452), (46.8251, -71.2515), (46.8270, -71.2548),
    (46.8305, -71.2581), (46.8354, -71.2626), (46.8384, -71.2565), (46.8409, -71.2499),
    (46.8437, -71.2435), (46.8461, -71.2377), (46.8480, -71.2395), (46.8509, -71.2329),
    (46.8478, -71.2287), (46.8452, -71.2250), (46.8440, -71.2220), (46.8421, -71.2201),
    (46.8454, -71.2178), (46.8463, -71.2165), (46.8480, -71.2168), (46.8459, -71.2141),
    (46.8466, -71.2118), (46.8447, -71.2086), (46.8431, -71.2102), (46.8425, -71.2095),
    (46.8419, -71.2104), (46.8392, -71.2068), (46.8354, -71.2020), (46.8310, -71.1957),
    (46.8322, -71.1930), (46.8253, -71.1959), (46.8222, -71.1971), (46.8184, -71.1988),
    (46.8139, -71.2000), (46.8111, -71.2015), (46.8077, -71.2027), (46.8066, -71.2036),
    (46.8044, -71.2054), (46.8017, -71.2088), (46.7993, -71.2116), (46.7983, -71.2143),
    (46.7969, -71.2171), (46.7961, -71.2187), (46.7937, -71.2235), (46.7923, -71.2265),
    (46.7914, -71.2263), (46.7935, -71.2290), (46.7918, -71.2311), (46.7909, -71.2332),
    (46.7918, -71.2368), (46.7934, -71.2389), (46.7947, -71.2367), (46.7970, -71.2394),
    (46.7935, -71.2458), (46.7891, -71.2534), (46.7863, -71.2579), (46.7887, -71.2610),
    (46.7900, -71.2632), (46.7909, -71.2657), (46.7919, -71.2670), (46.7926, -71.2658),
    (46.7946, -71.2683), (46.7960, -71.2679), (46.7961, -71.2613), (46.7989, -71.2579),
    (46.8017, -71.2613), (46.8060, -71.2665), (46.8074, -71.2691), (46.8081, -71.2686),
    (46.8079, -71.2600), (46.8092, -71.2560), (46.8114, -71.2525), (46.8139, -71.2498),
    (46.8149, -71.2466), (46.8149, -71.2440), (46.8156, -71.2415), (46.8176, -71.2397),
    (46.8190, -71.2392),
)
_CITE_LIMOILOU_HOLES: Final[tuple[Ring, ...]] = (
    (
        (46.8134, -71.2347), (46.8142, -71.2313), (46.8152, -71.2319), (46.8151, -71.2351),
        (46.8143, -71.2354),
    ),
)
_LES_RIVIERES_OUTLINE: Final[Ring] = (
    (46.8700, -71.3074), (46.8688, -71.3046), (46.8690, -71.2996), (46.8698, -71.2971),
    (46.8657, -71.2931), (46.8644, -71.2919), (46.8647, -71.2912), (46.8622, -71.2893),
    (46.8592, -71.2870), (46.8566, -71.2848), (46.8538, -71.2822), (46.8511, -71.2796),
    (46.8489, -71.2770), (46.8464, -71.2735), (46.8445, -71.2714), (46.8413, -71.2681),
    (46.8386, -71.2655), (46.8354, -71.2626), (46.8305, -71.2581), (46.8270, -71.2548),
    (46.8251, -71.2515), (46.8221, -71.2452), (46.8199, -71.2393), (46.8172, -71.2392),
    (46.8156, -71.2415), (46.8149, -71.2440), (46.8149, -71.2466), (46.8139, -71.2498),
    (46.8114, -71.2525), (46.8092, -71.2560), (46.8079, -71.2600), (46.8081, -71.2686),
    (46.8074, -71.2691), (46.8060, -71.2665), (46.8017, -71.2613), (46.7989, -71.2579),
    (46.7960, -71.2679), (46.7950, -71.2789), (46.7942, -71.2883), (46.7933, -71.2982),
    (46.7916, -71.3050), (46.7893, -71.3136), (46.7945, -71.3166), (46.7935, -71.3186),
    (46.7913, -71.3215), (46.7900, -71.3236), (46.7946, -71.3299), (46.7934, -71.3316),
    (46.7982, -71.3381), (46.7990, -71.3370), (46.8010, -71.3375), (46.8037, -71.3414),
    (46.8044, -71.3404), (46.8078, -71.3450), (46.8116, -71.3391), (46.8157, -71.3448),
    (46.8193, -71.3545), (46.8225, -71.3640), (46.8252, -71.3599), (46.8284, -71.3545),
    (46.8319, -71.3500), (46.8350, -71.3430), (46.8362, -71.3418), (46.8382, -71.3422),
    (46.8394, -71.3425), (46.8409, -71.3415), (46.8423, -71.3421), (46.8435, -71.3437),
    (46.8448, -71.3437), (46.8448, -71.3455), (46.8470, -71.3470), (46.8485, -71.3475),
    (46.8500, -71.3483), (46.8516, -71.3479), (46.8517, -71.3469), (46.8528, -71.3473),
    (46.8557, -71.3410), (46.8565, -71.3417), (46.8584, -71.3371), (46.8603, -71.3300),
    (46.8651, -71.3222), (46.8675, -71.3169), (46.8689, -71.3139),
)
_SAINTE_FOY_SILLERY_CAP_ROUGE_OUTLINE: Final[Ring] = (
    (46.8274, -71.3746), (46.8214, -71.3660), (46.8186, -71.3621), (46.8145, -71.3682),
    (46.8153, -71.3700), (46.8073, -71.3816), (46.7951, -71.3636), (46.7888, -71.3546),
    (46.7853, -71.3497), (46.7953, -71.3341), (46.7934, -71.3316), (46.7946, -71.3299),
    (46.7900, -71.3236), (46.7913, -71.3215), (46.7935, -71.3186), (46.7945, -71.3166),
    (46.7893, -71.3136), (46.7916, -71.3050), (46.7933, -71.2982), (46.7942, -71.2883),
    (46.7950, -71.2789), (46.7960, -71.2679), (46.7946, -71.2683), (46.7926, -71.2658),
    (46.7919, -71.2670), (46.7909, -71.2657), (46.7900, -71.2632), (46.7887, -71.2610),
    (46.7863, -71.2579), (46.7891, -71.2534), (46.7935, -71.2458), (46.7970, -71.2394),
    (46.7947, -71.2367), (46.7934, -71.2389), (46.7918, -71.2368), (46.7909, -71.2332),
    (46.7918, -71.2311), (46.7935, -71.2290), (46.7914, -71.2263), (46.7892, -71.2255),
    (46.7886, -71.2280), (46.7877, -71.2323), (46.7856, -71.2340), (46.7840, -71.2339),
    (46.7826, -71.2343), (46.7808, -71.2372), (46.7794, -71.2390), (46.7760, -71.2400),
    (46.7753, -71.2394), (46.7738, -71.2403), (46.7729, -71.2418), (46.7714, -71.2450),
    (46.7702, -71.2482), (46.7684, -71.2519), (46.7661, -71.2567), (46.7640, -71.2603),
    (46.7605, -71.2645), (46.7575, -71.2681), (46.7552, -71.2716), (46.7521, -71.2790),
    (46.7503, -71.2837), (46.7485, -71.2901), (46.7480, -71.2950), (46.7489, -71.3000),
    (46.7493, -71.3060), (46.7492, -71.3120), (46.7497, -71.3170), (46.7490, -71.3217),
    (46.7485, -71.3267), (46.7457, -71.3283), (46.7464, -71.3333), (46.7441, -71.3381),
    (46.7432, -71.3431), (46.7402, -71.3492), (46.7387, -71.3520), (46.7350, -71.3588),
    (46.7335, -71.3639), (46.7355, -71.3683), (46.7461, -71.3831), (46.7479, -71.3786),
    (46.7483, -71.3752), (46.7543, -71.3671), (46.7589, -71.3775), (46.7543, -71.3845),
    (46.7557, -71.3897), (46.7636, -71.4011), (46.7546, -71.4226), (46.7663, -71.4395),
    (46.7846, -71.4660), (46.7918, -71.4780), (46.8033, -71.4947), (46.8096, -71.4600),
    (46.8132, -71.4407), (46.8150, -71.4379), (46.8210, -71.4299), (46.8285, -71.4195),
    (46.8264, -71.4165), (46.8277, -71.4150), (46.8261, -71.4128), (46.8268, -71.4104),
    (46.8200, -71.4005), (46.8180, -71.3976), (46.8212, -71.3930), (46.8270, -71.3850),
    (46.8307, -71.3792),
)
_CHARLESBOURG_OUTLINE: Final[Ring] = (
    (46.9431, -71.3241), (46.9424, -71.3215), (46.9363, -71.3152), (46.9327, -71.3134),
    (46.9356, -71.3111), (46.9347, -71.3102), (46.9358, -71.3077), (46.9307, -71.3025),
    (46.9330, -71.2977), (46.9336, -71.2983), (46.9367, -71.2922), (46.9401, -71.2849),
    (46.9364, -71.2812), (46.9261, -71.2710), (46.9153, -71.2609), (46.9104, -71.2564),
    (46.8990, -71.2462), (46.8921, -71.2394), (46.8870, -71.2350), (46.8836, -71.2317),
    (46.8797, -71.2280), (46.8758, -71.2245), (46.8735, -71.2223), (46.8731, -71.2232),
    (46.8717, -71.2219), (46.8707, -71.2245), (46.8694, -71.2275), (46.8674, -71.2323),
    (46.8702, -71.2368), (46.8710, -71.2384), (46.8740, -71.2412), (46.8724, -71.2447),
    (46.8710, -71.2481), (46.8695, -71.2515), (46.8679, -71.2483), (46.8654, -71.2463),
    (46.8629, -71.2438), (46.8576, -71.2390), (46.8535, -71.2352), (46.8509, -71.2329),
    (46.8480, -71.2395), (46.8461, -71.2377), (46.8437, -71.2435), (46.8409, -71.2499),
    (46.8384, -71.2565), (46.8354, -71.2626), (46.8413, -71.2681), (46.8464, -71.2735),
    (46.8511, -71.2796), (46.8566, -71.2848), (46.8622, -71.2893), (46.8647, -71.2912),
    (46.8644, -71.2919), (46.8657, -71.2931), (46.8698, -71.2971), (46.8720, -71.2992),
    (46.8755, -71.3025), (46.8819, -71.3087), (46.8867, -71.3133), (46.8901, -71.3165),
    (46.8882, -71.3207), (46.8845, -71.3285), (46.8868, -71.3307), (46.8963, -71.3397),
    (46.9004, -71.3429), (46.9053, -71.3477), (46.9028, -71.3534), (46.9075, -71.3575),
    (46.9135, -71.3619), (46.9156, -71.3576), (46.9206, -71.3624), (46.9326, -71.3740),
    (46.9388, -71.3606), (46.9411, -71.3629), (46.9459, -71.3517), (46.9470, -71.3505),
    (46.9485, -71.3517), (46.9536, -71.3405), (46.9563, -71.3367), (46.9521, -71.3327),
    (46.9457, -71.3265),
)
_BEAUPORT_OUTLINE: Final[Ring] = (
    (46.9501, -71.2039), (46.9463, -71.2004), (46.9420, -71.1964), (46.9384, -71.1932),
    (46.9365, -71.1910), (46.9325, -71.1872), (46.9306, -71.1853), (46.9279, -71.1827),
    (46.9239, -71.1792), (46.9195, -71.1753), (46.9150, -71.1712), (46.9122, -71.1686),
    (46.9098, -71.1710), (46.9054, -71.1724), (46.9044, -71.1712), (46.9040, -71.1698),
    (46.9030, -71.1703), (46.9010, -71.1691), (46.8990, -71.1675), (46.8972, -71.1660),
    (46.8955, -71.1643), (46.8942, -71.1619), (46.8940, -71.1591), (46.8960, -71.1557),
    (46.8956, -71.1520), (46.8940, -71.1501), (46.8925, -71.1480), (46.8903, -71.1474),
    (46.8866, -71.1438), (46.8835, -71.1383), (46.8795, -71.1409), (46.8760, -71.1431),
    (46.8713, -71.1452), (46.8672, -71.1506), (46.8624, -71.1597), (46.8590, -71.1662),
    (46.8556, -71.1728), (46.8522, -71.1793), (46.8475, -71.1882), (46.8439, -71.1950),
    (46.8407, -71.1921), (46.8383, -71.1954), (46.8375, -71.1956), (46.8374, -71.1938),
    (46.8364, -71.1927), (46.8351, -71.1923), (46.8348, -71.1930), (46.8320, -71.1931),
    (46.8310, -71.1957), (46.8346, -71.2007), (46.8392, -71.2068), (46.8419, -71.2104),
    (46.8425, -71.2095), (46.8431, -71.2102), (46.8447, -71.2086), (46.8466, -71.2118),
    (46.8459, -71.2141), (46.8480, -71.2168), (46.8463, -71.2165), (46.8454, -71.2178),
    (46.8421, -71.2201), (46.8435, -71.2226), (46.8452, -71.2250), (46.8478, -71.2287),
    (46.8509, -71.2329), (46.8535, -71.2352), (46.8576, -71.2390), (46.8629, -71.2438),
    (46.8679, -71.2483), (46.8695, -71.2515), (46.8710, -71.2481), (46.8724, -71.2447),
    (46.8740, -71.2412), (46.8710, -71.2384), (46.8702, -71.2368), (46.8674, -71.2323),
    (46.8694, -71.2275), (46.8707, -71.2245), (46.8717, -71.2219), (46.8731, -71.2232),
    (46.8735, -71.2223), (46.8758, -71.2245), (46.8797, -71.2280), (46.8836, -71.2317),
    (46.8870, -71.2350), (46.8921, -71.2394), (46.8990, -71.2462), (46.9104, -71.2564),
    (46.9153, -71.2609), (46.9261, -71.2710), (46.9364, -71.2812), (46.9403, -71.2851),
    (46.9434, -71.2797), (46.9474, -71.2699), (46.9525, -71.2584), (46.9570, -71.2513),
    (46.9598, -71.2425), (46.9638, -71.2347), (46.9695, -71.2229), (46.9642, -71.2178),
    (46.9588, -71.2125),
)
_HAUTE_SAINT_CHARLES_OUTLINE: Final[Ring] = (
    (46.9596, -71.4098), (46.9619, -71.4040), (46.9626, -71.4027), (46.9585, -71.3987),
    (46.9547, -71.3951), (46.9540, -71.3930), (46.9537, -71.3880), (46.9517, -71.3832),
    (46.9498, -71.3815), (46.9474, -71.3842), (46.9487, -71.3854), (46.9470, -71.3851),
    (46.9444, -71.3850), (46.9425, -71.3834), (46.9400, -71.3810), (46.9340, -71.3753),
    (46.9326, -71.3740), (46.9206, -71.3624), (46.9156, -71.3576), (46.9135, -71.3619),
    (46.9075, -71.3575), (46.9028, -71.3534), (46.9053, -71.3477), (46.9004, -71.3429),
    (46.8963, -71.3397), (46.8868, -71.3307), (46.8845, -71.3285), (46.8882, -71.3207),
    (46.8901, -71.3165), (46.8867, -71.3133), (46.8819, -71.3087), (46.8755, -71.3025),
    (46.8720, -71.2992), (46.8698, -71.2971), (46.8690, -71.2996), (46.8688, -71.3046),
    (46.8700, -71.3074), (46.8689, -71.3139), (46.8675, -71.3169), (46.8651, -71.3222),
    (46.8603, -71.3300), (46.8584, -71.3371), (46.8565, -71.3417), (46.8557, -71.3410),
    (46.8528, -71.3473), (46.8517, -71.3469), (46.8516, -71.3479), (46.8500, -71.3483),
    (46.8485, -71.3477), (46.8470, -71.3470), (46.8448, -71.3455), (46.8448, -71.3437),
    (46.8435, -71.3437), (46.8423, -71.3421), (46.8409, -71.3415), (46.8394, -71.3425),
    (46.8382, -71.3422), (46.8362, -71.3418), (46.8350, -71.3430), (46.8319, -71.3500),
    (46.8284, -71.3545), (46.8252, -71.3599), (46.8225, -71.3640), (46.8212, -71.3658),
    (46.8254, -71.3718), (46.8274, -71.3746), (46.8307, -71.3792), (46.8270, -71.3850),
    (46.8212, -71.3930), (46.8180, -71.3976), (46.8200, -71.4005), (46.8268, -71.4104),
    (46.8261, -71.4128), (46.8277, -71.4150), (46.8264, -71.4165), (46.8285, -71.4195),
    (46.8241, -71.4256), (46.8210, -71.4299), (46.8150, -71.4379), (46.8132, -71.4407),
    (46.8096, -71.4600), (46.8060, -71.4800), (46.8033, -71.4947), (46.8068, -71.5003),
    (46.8138, -71.5107), (46.8257, -71.5264), (46.8366, -71.5419), (46.8383, -71.5315),
    (46.8513, -71.5491), (46.8605, -71.5066), (46.8627, -71.5096), (46.8792, -71.4839),
    (46.8731, -71.4754), (46.8833, -71.4602), (46.8922, -71.4730), (46.9035, -71.4566),
    (46.9147, -71.4385), (46.9115, -71.4341), (46.9238, -71.4062), (46.9318, -71.4136),
    (46.9404, -71.4220), (46.9571, -71.4380), (46.9675, -71.4480), (46.9807, -71.4205),
    (46.9723, -71.4122), (46.9693, -71.4092), (46.9660, -71.4150), (46.9640, -71.4140),
    (46.9610, -71.4101),
)
_HAUTE_SAINT_CHARLES_HOLES: Final[tuple[Ring, ...]] = (
    (
        (46.8801, -71.3679), (46.8800, -71.3689), (46.8788, -71.3677), (46.8773, -71.3690),
        (46.8764, -71.3704), (46.8756, -71.3697), (46.8770, -71.3719), (46.8765, -71.3731),
        (46.8751, -71.3726), (46.8742, -71.3713), (46.8735, -71.3709), (46.8726, -71.3716),
        (46.8723, -71.3729), (46.8718, -71.3738), (46.8715, -71.3732), (46.8690, -71.3710),
        (46.8671, -71.3692), (46.8658, -71.3679), (46.8664, -71.3665), (46.8652, -71.3653),
        (46.8657, -71.3641), (46.8662, -71.3638), (46.8647, -71.3624), (46.8617, -71.3596),
        (46.8622, -71.3586), (46.8586, -71.3552), (46.8588, -71.3545), (46.8575, -71.3542),
        (46.8576, -71.3513), (46.8577, -71.3509), (46.8596, -71.3528), (46.8589, -71.3545),
        (46.8606, -71.3555), (46.8618, -71.3566), (46.8631, -71.3570), (46.8648, -71.3568),
        (46.8654, -71.3553), (46.8648, -71.3540), (46.8656, -71.3540), (46.8698, -71.3575),
        (46.8739, -71.3613), (46.8748, -71.3592), (46.8767, -71.3624), (46.8775, -71.3617),
        (46.8787, -71.3627), (46.8796, -71.3633), (46.8789, -71.3645), (46.8804, -71.3658),
        (46.8822, -71.3675),
    ),
    (
        (46.8749, -71.3559), (46.8740, -71.3581), (46.8733, -71.3575), (46.8689, -71.3534),
        (46.8697, -71.3516), (46.8680, -71.3501), (46.8663, -71.3484), (46.8668, -71.3475),
        (46.8680, -71.3486), (46.8700, -71.3505), (46.8704, -71.3494), (46.8675, -71.3468),
        (46.8677, -71.3460), (46.8685, -71.3444), (46.8693, -71.3451), (46.8734, -71.3489),
        (46.8747, -71.3501), (46.8770, -71.3522), (46.8762, -71.3539), (46.8754, -71.3557),
    ),
    (
        (46.8566, -71.3586), (46.8566, -71.3572), (46.8559, -71.3558), (46.8565, -71.3505),
        (46.8568, -71.3503), (46.8573, -71.3525), (46.8574, -71.3561), (46.8572, -71.3605),
    ),
    (
        (46.8560, -71.3551), (46.8558, -71.3557), (46.8550, -71.3552), (46.8553, -71.3540),
        (46.8550, -71.3520), (46.8557, -71.3495), (46.8561, -71.3500),
    ),
)
# fmt: on

# fmt: off
BOROUGHS: Final[tuple[Borough, ...]] = (
    Borough(
        code="cite-limoilou",
        name="La Cité-Limoilou",
        short_name="Cité-Limoilou",
        # Montcalm, Vieux-Québec, Saint-Roch, Limoilou, Maizerets, Lairet.
        polygon=(
            (46.8000, -71.2240), (46.8120, -71.2075), (46.8240, -71.2150), (46.8360, -71.2110),
            (46.8395, -71.2230), (46.8420, -71.2340), (46.8300, -71.2480), (46.8200, -71.2260),
            (46.8090, -71.2300), (46.8060, -71.2450),
        ),
        streets=(
            "rue Saint-Jean", "Grande Allée Est", "Grande Allée Ouest", "avenue Cartier",
            "rue Saint-Louis", "côte d'Abraham", "rue Saint-Paul", "boulevard René-Lévesque Est",
            "boulevard René-Lévesque Ouest", "chemin Sainte-Foy", "boulevard Charest Est",
            "rue Saint-Joseph Est", "rue de la Couronne", "rue du Prince-Édouard",
            "rue Saint-Vallier Ouest", "avenue des Oblats", "rue Raoul-Jobin",
            "avenue du Sacré-Cœur", "avenue Belvédère", "avenue Honoré-Mercier", "1re Avenue",
            "3e Avenue", "4e Avenue", "8e Avenue", "4e Rue", "18e Rue", "boulevard Benoît-XV",
            "boulevard des Capucins", "chemin de la Canardière", "rue des Ormes",
        ),
        outline=_CITE_LIMOILOU_OUTLINE,
        holes=_CITE_LIMOILOU_HOLES,
    ),
    Borough(
        code="les-rivieres",
        name="Les Rivières",
        short_name="Les Rivières",
        # Vanier, Duberger–Les Saules, Neufchâtel-Est–Lebourgneuf.
        polygon=(
            (46.8175, -71.2500), (46.8130, -71.2650), (46.8080, -71.2800), (46.8010, -71.3000),
            (46.8060, -71.3300), (46.8200, -71.3420), (46.8400, -71.3330), (46.8520, -71.3300),
            (46.8600, -71.2980), (46.8350, -71.2700),
        ),
        streets=(
            "boulevard Wilfrid-Hamel", "boulevard Pierre-Bertrand", "boulevard Père-Lelièvre",
            "avenue Chauveau", "boulevard Lebourgneuf", "boulevard des Galeries",
            "boulevard Central", "avenue du Chanoine-Côté", "avenue D'Alembert",
            "boulevard Robert-Bourassa", "rue Alice-Trépanier", "rue Claire-Bonenfant",
            "rue Colette-Samson", "boulevard Masson", "boulevard Bastien", "rue Desrochers",
            "rue Chabot", "rue des Saulois", "rue de la Rivière-du-Berger", "rue des Rocailles",
            "boulevard Neuvialle", "avenue Plante", "boulevard Saint-Jacques", "rue Beaucage",
        ),
        outline=_LES_RIVIERES_OUTLINE,
    ),
    Borough(
        code="sainte-foy-sillery-cap-rouge",
        name="Sainte-Foy–Sillery–Cap-Rouge",
        short_name="Sainte-Foy",
        # Sillery, Sainte-Foy, Cap-Rouge (east of the Cap-Rouge river), above the cliff.
        polygon=(
            (46.7880, -71.2420), (46.7835, -71.2575), (46.7905, -71.2700), (46.7885, -71.3050),
            (46.7860, -71.3240), (46.7800, -71.3420), (46.7600, -71.3450), (46.7560, -71.3000),
            (46.7680, -71.2650), (46.7790, -71.2450),
        ),
        streets=(
            "chemin Sainte-Foy", "boulevard Laurier", "route de l'Église", "chemin Saint-Louis",
            "avenue Maguire", "boulevard Hochelaga", "avenue De Rochebelle", "avenue Chapdelaine",
            "boulevard Pie-XII", "rue Michel-Hervé", "rue de Bar-le-Duc",
            "rue du Capitaine-Bernier", "avenue Jules-Verne", "rue de la Promenade-des-Sœurs",
            "rue Laberge", "avenue Roland-Beaudin", "boulevard de la Chaudière",
            "route Jean-Gauvin", "avenue Lavigerie", "avenue Myrand", "rue du Campanile",
            "boulevard du Versant-Nord",
        ),
        outline=_SAINTE_FOY_SILLERY_CAP_ROUGE_OUTLINE,
    ),
    Borough(
        code="charlesbourg",
        name="Charlesbourg",
        short_name="Charlesbourg",
        # Trait-Carré, Orsainville, Notre-Dame-des-Laurentides (south part).
        polygon=(
            (46.8480, -71.2480), (46.8460, -71.2600), (46.8620, -71.2820), (46.8800, -71.3000),
            (46.9000, -71.3150), (46.9250, -71.3000), (46.8950, -71.2480), (46.8750, -71.2560),
            (46.8600, -71.2560),
        ),
        streets=(
            "1re Avenue", "76e Rue Est", "80e Rue Est", "boulevard Louis-XIV",
            "boulevard Henri-Bourassa", "avenue du Bourg-Royal", "boulevard Cloutier",
            "rue de la Sorbonne", "rue Pompadour", "rue d'Orsainville", "chemin de Château-Bigot",
            "avenue des Sauges", "rue de la Polyvalente", "rue Cliche", "rue de Bigorre",
            "rue Amélia-Fillion", "rue Arthur-Langevin", "rue Astrid", "rue Albert-Ouellet",
        ),
        outline=_CHARLESBOURG_OUTLINE,
    ),
    Borough(
        code="beauport",
        name="Beauport",
        short_name="Beauport",
        # Giffard, Vieux-Beauport, Courville, Montmorency; inland of the shore highway.
        polygon=(
            (46.8530, -71.2000), (46.8530, -71.2150), (46.8600, -71.2300), (46.8640, -71.2250),
            (46.8760, -71.2150), (46.9000, -71.2300), (46.9100, -71.2000), (46.8950, -71.1750),
            (46.8850, -71.1600), (46.8650, -71.1850),
        ),
        streets=(
            "avenue Royale", "boulevard Sainte-Anne", "chemin Royal", "boulevard des Chutes",
            "rue Hugues-Pommier", "avenue Larue", "rue Clemenceau", "avenue du Cénacle",
            "avenue des Cascades", "rue Vachon", "rue d'Everell", "rue Alfred", "rue Beauchesne",
            "rue Cambert", "rue des Passerins", "rue Blanche-Lamontagne", "avenue Juchereau",
            "rue Perroteau", "avenue Saint-Clément", "rue du Méandre", "avenue Mallet",
            "rue de la Terrasse-Orléans", "rue Savio", "rue Bertrand", "avenue des Sablonnières",
            "boulevard Louis-XIV", "boulevard Raymond", "rue Seigneuriale",
        ),
        outline=_BEAUPORT_OUTLINE,
    ),
    Borough(
        code="haute-saint-charles",
        name="La Haute-Saint-Charles",
        short_name="Haute-Saint-Charles",
        # Loretteville, Val-Bélair, Lac-Saint-Charles; goes round Wendake by the west.
        polygon=(
            (46.8380, -71.3500), (46.8480, -71.3520), (46.8500, -71.3800), (46.8900, -71.3820),
            (46.9450, -71.4050), (46.9150, -71.4000), (46.8950, -71.4300), (46.8400, -71.4400),
            (46.8360, -71.3760),
        ),
        streets=(
            "boulevard des Étudiants", "rue Racine", "rue de l'Innovation", "avenue Industrielle",
            "avenue Lapierre", "avenue du Lac-Saint-Charles", "avenue de la Montagne Ouest",
            "rue Adrien-Sanfaçon", "rue des Achillées", "rue Apollon", "rue Frédéric-Légaré",
            "rue de Triton", "rue Céleste", "rue Corbier", "route de l'Aéroport",
            "boulevard de l'Ormière", "boulevard Pie-XI",
        ),
        outline=_HAUTE_SAINT_CHARLES_OUTLINE,
        holes=_HAUTE_SAINT_CHARLES_HOLES,
    ),
)
# fmt: on

BOROUGH_BY_CODE: Final[Mapping[str, Borough]] = MappingProxyType({b.code: b for b in BOROUGHS})

# (min_lat, min_lon, max_lat, max_lon): the whole city, every borough outline included.
CITY_BOUNDS: Final[tuple[float, float, float, float]] = (46.73, -71.56, 46.99, -71.13)


def borough_for(lat: float, lon: float) -> str | None:
    """Code of the borough containing the point, or None (outside the city, in an enclave).

    The demo polygons answer first (exact by construction); otherwise the simplified limits.
    """
    min_lat, min_lon, max_lat, max_lon = CITY_BOUNDS
    if not (min_lat <= lat <= max_lat and min_lon <= lon <= max_lon):
        return None
    for borough in BOROUGHS:
        if point_in_polygon(lat, lon, borough.polygon):
            return borough.code
    for borough in BOROUGHS:
        if borough.contains(lat, lon):
            return borough.code
    return None


# --------------------------------------------------------------------------------------------
# Service types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceType:
    code: str
    name_fr: str
    name_en: str
    description_fr: str
    description_en: str
    category: Category
    default_priority: int  # 1 = urgent … 4 = low
    sla_hours: int
    evidence_required: tuple[Evidence, ...]  # photos needed to complete, e.g. ("after",)
    crew_kind: CrewKind | None  # which crews do the work; None: another department


SERVICE_TYPES: Final[tuple[ServiceType, ...]] = (
    ServiceType(
        code="snow-driveway-blocked",
        name_fr="Entrée bloquée par le déneigement",
        name_en="Driveway blocked by snow clearing",
        description_fr="La charrue ou la souffleuse a laissé un cordon de neige qui bloque "
        "une entrée charretière.",
        description_en="The plow or snow blower left a ridge of snow blocking a driveway.",
        category="snow",
        default_priority=2,
        sla_hours=12,
        evidence_required=("after",),
        crew_kind="snow",
    ),
    ServiceType(
        code="snow-sidewalk",
        name_fr="Trottoir non déneigé",
        name_en="Sidewalk not cleared",
        description_fr="Trottoir enneigé ou impraticable après le passage des équipes de "
        "déneigement.",
        description_en="Sidewalk still snow-covered or impassable after snow clearing.",
        category="snow",
        default_priority=2,
        sla_hours=24,
        evidence_required=("after",),
        crew_kind="snow",
    ),
    ServiceType(
        code="snow-street-not-plowed",
        name_fr="Rue non déneigée",
        name_en="Street not plowed",
        description_fr="Rue où la charrue n'est pas encore passée depuis la fin des "
        "précipitations.",
        description_en="Street the plow has not cleared since the snowfall ended.",
        category="snow",
        default_priority=2,
        sla_hours=12,
        evidence_required=("after",),
        crew_kind="snow",
    ),
    ServiceType(
        code="snow-hauling",
        name_fr="Chargement de la neige",
        name_en="Snow hauling",
        description_fr="Bancs de neige trop hauts ou qui empiètent sur la chaussée : "
        "demande de chargement de la neige.",
        description_en="Snowbanks too high or encroaching on the roadway: snow removal by "
        "truck requested.",
        category="snow",
        default_priority=3,
        sla_hours=48,
        evidence_required=("before", "after"),
        crew_kind="snow",
    ),
    ServiceType(
        code="salting",
        name_fr="Épandage d'abrasifs",
        name_en="Salting and sanding",
        description_fr="Chaussée ou trottoir glacé : épandage de sel ou d'abrasifs demandé.",
        description_en="Icy street or sidewalk: salt or sand needed.",
        category="snow",
        default_priority=1,
        sla_hours=6,
        evidence_required=("after",),
        crew_kind="snow",
    ),
    ServiceType(
        code="snow-hydrant-buried",
        name_fr="Borne d'incendie enneigée",
        name_en="Fire hydrant buried in snow",
        description_fr="Borne d'incendie ensevelie ou cachée par un banc de neige.",
        description_en="Fire hydrant buried or hidden by a snowbank.",
        category="snow",
        default_priority=1,
        sla_hours=8,
        evidence_required=("after",),
        crew_kind="snow",
    ),
    ServiceType(
        code="waste-missed-garbage",
        name_fr="Collecte des ordures manquée",
        name_en="Missed garbage collection",
        description_fr="Le bac d'ordures était au chemin à temps mais n'a pas été vidé.",
        description_en="The garbage bin was out on time but was not emptied.",
        category="waste",
        default_priority=3,
        sla_hours=48,
        evidence_required=("after",),
        crew_kind="waste",
    ),
    ServiceType(
        code="waste-missed-recycling",
        name_fr="Collecte du recyclage manquée",
        name_en="Missed recycling collection",
        description_fr="Le bac bleu était au chemin à temps mais n'a pas été vidé.",
        description_en="The blue recycling bin was out on time but was not emptied.",
        category="waste",
        default_priority=3,
        sla_hours=48,
        evidence_required=("after",),
        crew_kind="waste",
    ),
    ServiceType(
        code="waste-missed-organics",
        name_fr="Collecte des matières organiques manquée",
        name_en="Missed organics collection",
        description_fr="Le bac brun de résidus alimentaires était au chemin mais n'a pas été vidé.",
        description_en="The brown food-waste bin was out but was not emptied.",
        category="waste",
        default_priority=3,
        sla_hours=48,
        evidence_required=("after",),
        crew_kind="waste",
    ),
    ServiceType(
        code="bulky-items",
        name_fr="Collecte des encombrants",
        name_en="Bulky item pickup",
        description_fr="Ramassage de gros objets (meubles, matelas, électroménagers) déposés "
        "en bordure de rue.",
        description_en="Pickup of large items (furniture, mattresses, appliances) left at the "
        "curb.",
        category="waste",
        default_priority=4,
        sla_hours=120,
        evidence_required=("after",),
        crew_kind="waste",
    ),
    ServiceType(
        code="illegal-dumping",
        name_fr="Dépôt sauvage",
        name_en="Illegal dumping",
        description_fr="Déchets ou objets abandonnés sur la voie publique, dans une ruelle ou "
        "un parc.",
        description_en="Waste or items abandoned on public property, in an alley or a park.",
        category="waste",
        default_priority=3,
        sla_hours=72,
        evidence_required=("before", "after"),
        crew_kind="waste",
    ),
    ServiceType(
        code="damaged-bin",
        name_fr="Bac roulant brisé ou manquant",
        name_en="Damaged or missing wheeled bin",
        description_fr="Bac roulant brisé pendant la collecte, volé ou jamais livré.",
        description_en="Wheeled bin broken during collection, stolen or never delivered.",
        category="waste",
        default_priority=4,
        sla_hours=168,
        evidence_required=(),
        crew_kind="waste",
    ),
    ServiceType(
        code="pothole",
        name_fr="Nid-de-poule",
        name_en="Pothole",
        description_fr="Trou dans la chaussée à colmater.",
        description_en="Hole in the roadway to be patched.",
        category="other",
        default_priority=3,
        sla_hours=72,
        evidence_required=("after",),
        crew_kind=None,
    ),
    ServiceType(
        code="streetlight",
        name_fr="Lampadaire défectueux",
        name_en="Streetlight out",
        description_fr="Lampadaire éteint, qui clignote ou qui reste allumé le jour.",
        description_en="Streetlight out, flickering or on during the day.",
        category="other",
        default_priority=4,
        sla_hours=168,
        evidence_required=(),
        crew_kind=None,
    ),
)

SERVICE_TYPE_BY_CODE: Final[Mapping[str, ServiceType]] = MappingProxyType(
    {st.code: st for st in SERVICE_TYPES}
)


# --------------------------------------------------------------------------------------------
# People: crews, dispatchers, admin
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrewMember:
    username: str  # ascii slug, e.g. "mtremblay"
    display_name: str


@dataclass(frozen=True, slots=True)
class Crew:
    code: str  # e.g. "snow-beauport-1"
    name: str  # e.g. "Déneigement Beauport 1"
    borough_code: str
    kind: CrewKind
    members: tuple[CrewMember, ...]
    device_label: str  # the crew's shared phone, e.g. "Téléphone équipe Déneigement Beauport 1"


@dataclass(frozen=True, slots=True)
class StaffUser:
    username: str
    display_name: str
    role: Role


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def username_for(display_name: str, taken: Sequence[str] = ()) -> str:
    """First initial + last name, ascii ("Marie-Ève Côté" -> "mcote"); a digit if taken."""
    first, _, last = display_name.partition(" ")
    base = _ascii_slug(first)[:1] + _ascii_slug(last)
    candidate, suffix = base, 2
    while candidate in taken:
        candidate, suffix = f"{base}{suffix}", suffix + 1
    return candidate


# 60 crew members: three in even-numbered crews, two in the others (24 crews).
# fmt: off
_CREW_MEMBER_NAMES: Final[tuple[str, ...]] = (
    "Marc-André Tremblay", "Sylvie Gagnon", "Stéphane Roy", "Isabelle Côté",
    "Patrick Bouchard", "Nathalie Gauthier", "Julie Morin", "Sébastien Lavoie",
    "Mélanie Fortin", "Éric Gagné", "Geneviève Ouellet", "François Pelletier",
    "Karine Bélanger", "Guillaume Lévesque", "Valérie Bergeron", "Mathieu Leblanc",
    "Caroline Paquette", "Maxime Girard", "Annie Simard", "Simon Boucher",
    "Josée Caron", "Alexandre Beaulieu", "Chantal Cloutier", "Pierre-Luc Dubé",
    "Marie-Ève Poirier", "Jonathan Fournier", "Véronique Lapointe", "Dominic Leclerc",
    "Émilie Lefebvre", "Yannick Poulin", "Catherine Thibault", "Frédéric St-Pierre",
    "Audrey Nadeau", "Louis Martin", "Mylène Landry", "Olivier Martel",
    "Sophie Bédard", "Benoît Grenier", "Roxanne Lessard", "Francis Bernier",
    "Marie-Claude Richard", "Jérôme Michaud", "Amélie Hébert", "Steve Desjardins",
    "Nancy Couture", "Kevin Turcotte", "Lucie Lachance", "Réjean Parent",
    "Gaétan Blais", "Manon Savard", "Denis Proulx", "Hélène Beaudoin",
    "Luc Demers", "Johanne Perreault", "Sylvain Boivin", "Lyne Drolet",
    "Danny Labrecque", "Carole Vachon", "Martin Giguère", "Marie-Josée Lemieux",
)
# fmt: on


def _build_crews() -> tuple[Crew, ...]:
    crews: list[Crew] = []
    taken: list[str] = []
    names = iter(_CREW_MEMBER_NAMES)
    for borough in BOROUGHS:
        for kind, label in (("snow", "Déneigement"), ("waste", "Collecte")):
            for number in (1, 2):
                size = 3 if len(crews) % 2 == 0 else 2
                members: list[CrewMember] = []
                for _ in range(size):
                    display_name = next(names)
                    username = username_for(display_name, taken)
                    taken.append(username)
                    members.append(CrewMember(username=username, display_name=display_name))
                name = f"{label} {borough.short_name} {number}"
                crews.append(
                    Crew(
                        code=f"{kind}-{borough.code}-{number}",
                        name=name,
                        borough_code=borough.code,
                        kind="snow" if kind == "snow" else "waste",
                        members=tuple(members),
                        device_label=f"Téléphone équipe {name}",
                    )
                )
    return tuple(crews)


CREWS: Final[tuple[Crew, ...]] = _build_crews()

DISPATCHERS: Final[tuple[StaffUser, ...]] = (
    StaffUser(username="repartiteur1", display_name="Josiane Marcoux", role="dispatcher"),
    StaffUser(username="repartiteur2", display_name="Daniel Bérubé", role="dispatcher"),
)
ADMIN: Final[StaffUser] = StaffUser(
    username="admin", display_name="Administration Tournée", role="admin"
)
ADMINS: Final[tuple[StaffUser, ...]] = (ADMIN,)


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoRequest:
    service_code: str
    borough_code: str
    lat: float
    lon: float
    address: str  # "1234, 1re Avenue"
    description: str
    reporter_name: str
    reporter_phone: str
    reporter_email: str | None
    channel: Channel
    language: Language
    created_at: datetime  # timezone-aware, UTC


HISTORY_HOURS: Final = 72  # every request is younger than this
STORM_HOURS: Final = 24  # the storm ended this long ago: most snow requests are this recent
PHONE_HOURS: Final = (8, 19)  # 311 answers the phone 08:00–19:00, local time
LOCAL_TIMEZONE: Final = "America/Toronto"  # Québec City's time zone
NEAR_DUPLICATE_SHARE: Final = 0.05
NEAR_DUPLICATE_MAX_M: Final = 30.0

# Relative volumes after a storm: bulky items and missed collections lead, then snow.
_SERVICE_WEIGHTS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "bulky-items": 18,
        "waste-missed-garbage": 11,
        "waste-missed-recycling": 9,
        "waste-missed-organics": 7,
        "snow-driveway-blocked": 9,
        "snow-sidewalk": 8,
        "snow-street-not-plowed": 7,
        "salting": 6,
        "snow-hauling": 5,
        "snow-hydrant-buried": 2,
        "damaged-bin": 6,
        "illegal-dumping": 5,
        "pothole": 5,
        "streetlight": 2,
    }
)
# Roughly the boroughs' shares of the population.
_BOROUGH_WEIGHTS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "cite-limoilou": 22,
        "les-rivieres": 14,
        "sainte-foy-sillery-cap-rouge": 20,
        "charlesbourg": 15,
        "beauport": 15,
        "haute-saint-charles": 14,
    }
)
_CHANNEL_WEIGHTS: Final[Mapping[Channel, int]] = MappingProxyType(
    {"phone": 60, "web": 25, "app": 10, "open311": 5}
)
_ENGLISH_SHARE: Final = 0.15

_HOUR_FR: Final = ("vers 2 h", "vers 4 h 30", "vers 6 h", "cette nuit", "tôt ce matin", "hier soir")
_HOUR_EN: Final = ("around 2 a.m.", "around 4:30 a.m.", "overnight", "early this morning")

# Templates: {numero} (civic number), {rue} (street), {heure} (a time of day).
_DESCRIPTIONS_FR: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "snow-driveway-blocked": (
            "La charrue est passée {heure} et a laissé un gros cordon de neige devant mon "
            "entrée. Je ne peux pas sortir mon auto pour aller travailler.",
            "Le déneigeur a bloqué notre entrée de garage au complet, le banc fait au moins un "
            "mètre. Personne âgée à la maison.",
            "Entrée bloquée par la souffleuse encore une fois. Le cordon est glacé, impossible "
            "à pelleter.",
            "Après le passage de la déneigeuse {heure}, notre entrée au {numero} est bouchée. "
            "On a un rendez-vous médical ce matin.",
        ),
        "snow-sidewalk": (
            "Le trottoir n'a pas été déneigé depuis la tempête. Les piétons marchent dans la "
            "rue, c'est dangereux.",
            "Trottoir impraticable près de l'école, les enfants doivent marcher dans la rue.",
            "Le trottoir sur {rue} est encore enseveli, impossible de passer avec une poussette.",
            "Aucune chenillette sur le trottoir depuis hier. Personnes à mobilité réduite "
            "coincées chez elles.",
        ),
        "snow-street-not-plowed": (
            "La rue n'a pas encore été déneigée, il y a plus de 30 cm et les autos restent prises.",
            "Aucune charrue n'est passée sur {rue} depuis le début de la tempête.",
            "Notre bout de rue a été oublié par la déneigeuse, l'autobus scolaire ne peut pas "
            "passer.",
        ),
        "snow-hauling": (
            "Les bancs de neige sont rendus trop hauts au coin de la rue, on ne voit plus les "
            "autos qui arrivent. Chargement de la neige svp.",
            "Demande de chargement : les bancs de neige empiètent sur la moitié de {rue}.",
            "Les bancs à l'intersection bloquent la visibilité pour sortir de la ruelle.",
        ),
        "salting": (
            "Le trottoir est une vraie patinoire, une dame est tombée ce matin. Il faudrait "
            "des abrasifs.",
            "Chaussée glacée dans la côte, les autos glissent. Épandage de sel ou de sable "
            "demandé.",
            "Plaque de glace vive devant l'arrêt d'autobus, très dangereux.",
            "Pluie verglaçante {heure} et la rue n'a pas été sablée.",
        ),
        "snow-hydrant-buried": (
            "La borne d'incendie est complètement ensevelie par le banc de neige, on ne la "
            "voit plus.",
            "Borne-fontaine enterrée sous la neige devant le {numero}.",
        ),
        "waste-missed-garbage": (
            "Les ordures n'ont pas été ramassées cette semaine alors que le bac était au "
            "chemin à 7 h.",
            "Collecte des ordures oubliée dans notre section de rue, tous les voisins ont "
            "encore leur bac plein.",
            "Le camion est passé mais n'a pas vidé notre bac noir au {numero}.",
            "Collecte manquée : les sacs commencent à sentir et les animaux fouillent dedans.",
        ),
        "waste-missed-recycling": (
            "Le bac bleu n'a pas été vidé, collecte du recyclage manquée.",
            "Collecte des matières recyclables oubliée sur toute la rue.",
            "Le camion du recyclage n'est pas passé sur {rue}, le bac déborde de cartons.",
        ),
        "waste-missed-organics": (
            "Le bac brun n'a pas été ramassé, collecte des résidus alimentaires manquée.",
            "Collecte des matières organiques oubliée, notre bac brun est resté plein.",
            "Bac brun pas vidé depuis deux semaines, ça commence à sentir.",
        ),
        "bulky-items": (
            "Je voudrais faire ramasser un vieux divan et un matelas. Ils seront au chemin.",
            "Demande de collecte des encombrants : une laveuse, une sécheuse et un sommier.",
            "Collecte d'encombrants svp : meubles de patio et une vieille table de cuisine.",
            "Déménagement terminé, il reste un matelas, une commode et des chaises à faire "
            "ramasser.",
            "Réfrigérateur à faire ramasser devant le {numero} (les portes ont été enlevées).",
        ),
        "illegal-dumping": (
            "Dépôt sauvage dans la ruelle : des sacs de débris de construction et un vieux BBQ.",
            "Quelqu'un a laissé des pneus et des meubles brisés au bout de {rue}, près du parc.",
            "Des matelas et des sacs de vêtements abandonnés à côté des bacs de l'immeuble.",
        ),
        "damaged-bin": (
            "Notre bac roulant a été brisé par le camion, le couvercle est arraché.",
            "Bac de recyclage fendu et une roue cassée, il faudrait le remplacer.",
            "Notre bac a disparu après la collecte, il n'est jamais revenu.",
        ),
        "pothole": (
            "Gros nid-de-poule dans la voie de droite, j'ai crevé un pneu.",
            "Nid-de-poule profond près de la bouche d'égout, dangereux pour les cyclistes.",
            "Plusieurs nids-de-poule devant le {numero}, ça empire avec le gel et le dégel.",
        ),
        "streetlight": (
            "Le lampadaire devant chez nous est éteint depuis trois soirs, la rue est très noire.",
            "Lampadaire qui clignote toute la nuit sur {rue}.",
            "Deux lampadaires brûlés près de l'arrêt d'autobus.",
        ),
    }
)
_DESCRIPTIONS_EN: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "snow-driveway-blocked": (
            "The plow came by {heure} and left a huge ridge of snow across my driveway. I can't "
            "get my car out.",
            "Driveway completely blocked after the snow clearing crew went by. Elderly "
            "resident, please help.",
        ),
        "snow-sidewalk": (
            "The sidewalk still hasn't been cleared since the storm, people are walking in "
            "the street.",
            "Sidewalk on {rue} impassable with a stroller or a wheelchair.",
        ),
        "snow-street-not-plowed": (
            "Our street hasn't been plowed at all since the storm started.",
            "Cars keep getting stuck on {rue}, no plow has come by.",
        ),
        "snow-hauling": (
            "Snowbanks at the corner are so high you can't see oncoming traffic.",
            "Please haul the snow, the banks take up half of {rue}.",
        ),
        "salting": (
            "The sidewalk is a sheet of ice, someone fell this morning.",
            "Icy hill, cars are sliding. Please salt or sand.",
        ),
        "snow-hydrant-buried": (
            "The fire hydrant in front of {numero} is buried under the snowbank.",
        ),
        "waste-missed-garbage": (
            "Garbage wasn't picked up this week, the bin was out by 7 a.m.",
            "The garbage truck skipped our side of {rue}.",
        ),
        "waste-missed-recycling": (
            "Our blue recycling bin was not emptied.",
            "The recycling truck never came to our street this week.",
        ),
        "waste-missed-organics": (
            "The brown food-waste bin wasn't emptied this week.",
            "Organics collection missed on {rue}, the bin is still full.",
        ),
        "bulky-items": (
            "I'd like a bulky item pickup for an old couch and a mattress.",
            "Please pick up a washer and a dryer left at the curb in front of {numero}.",
            "Moving out: a dresser, a bed frame and two chairs to pick up.",
        ),
        "illegal-dumping": (
            "Someone dumped construction debris and tires in the alley.",
            "Old furniture and garbage bags dumped next to the park on {rue}.",
        ),
        "damaged-bin": (
            "The truck broke our wheeled bin, the lid is torn off.",
            "Our bin went missing after collection day.",
        ),
        "pothole": (
            "Deep pothole in the right lane, I blew a tire.",
            "Several potholes in front of {numero}, getting worse every day.",
        ),
        "streetlight": (
            "The streetlight in front of my house has been out for three nights.",
            "Streetlight flickering all night on {rue}.",
        ),
    }
)
_SUFFIX_FR: Final = ("", "", " Merci!", " Merci de votre aide.", " C'est la deuxième fois.")
_SUFFIX_EN: Final = ("", "", " Thanks!", " Thank you.")

# fmt: off
_FIRST_FR: Final = (
    "Louise", "Gilles", "Ginette", "Claude", "Diane", "Michel", "Francine", "Raymond", "Lise",
    "André", "Monique", "Jacques", "Nicole", "Robert", "Suzanne", "Alain", "Linda", "Richard",
    "Martine", "Yves", "Chloé", "Félix", "Léa", "William", "Rosalie", "Samuel", "Florence",
    "Thomas", "Justine", "Antoine", "Laurence", "Gabriel", "Noémie", "Raphaël", "Sarah-Maude",
)
_LAST_FR: Final = (
    "Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin",
    "Gagné", "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc", "Paquette",
    "Girard", "Simard", "Boucher", "Caron", "Beaulieu", "Cloutier", "Dubé", "Poirier",
    "Fournier", "Lapointe", "Bédard", "Jobin", "Lemelin", "Marcotte", "Moisan", "Verret",
)
_FIRST_EN: Final = (
    "John", "Sarah", "Michael", "Jennifer", "David", "Emily", "Patrick", "Megan", "Daniel",
    "Laura", "Kevin", "Rachel", "Brian", "Heather",
)
_LAST_EN: Final = (
    "Smith", "O'Brien", "Murphy", "Walsh", "Campbell", "MacDonald", "Stewart", "Kelly",
    "Johnson", "Wilson", "Brown", "Taylor", "Ryan", "Fraser",
)
# fmt: on
_EMAIL_DOMAINS: Final = ("example.com", "example.org", "example.net")


def _local_tz() -> tzinfo:
    try:
        return ZoneInfo(LOCAL_TIMEZONE)
    except ZoneInfoNotFoundError:  # no tz database: Eastern Standard Time (storms are in winter)
        return timezone(timedelta(hours=-5), "EST")


def _weighted(rng: random.Random, weights: Mapping[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _pick_channel(rng: random.Random) -> Channel:
    return rng.choices(list(_CHANNEL_WEIGHTS), weights=list(_CHANNEL_WEIGHTS.values()))[0]


def _sample_point(rng: random.Random, borough: Borough) -> LatLon:
    lats = [p[0] for p in borough.polygon]
    lons = [p[1] for p in borough.polygon]
    while True:
        lat = round(rng.uniform(min(lats), max(lats)), 6)
        lon = round(rng.uniform(min(lons), max(lons)), 6)
        if point_in_polygon(lat, lon, borough.polygon):
            return (lat, lon)


def _in_phone_hours(moment: datetime, local: tzinfo) -> bool:
    return PHONE_HOURS[0] <= moment.astimezone(local).hour < PHONE_HOURS[1]


def _sample_time(
    rng: random.Random, now: datetime, service: ServiceType, channel: Channel, local: tzinfo
) -> tuple[datetime, Channel]:
    """A creation time in the last HISTORY_HOURS (snow: mostly the last STORM_HOURS).

    Phone calls only come in during 311 hours; if none fits, the request arrives by web.
    """
    for _ in range(200):
        if service.category == "snow" and rng.random() < 0.85:
            age = rng.uniform(60, STORM_HOURS * 3600)
        else:
            age = rng.uniform(60, HISTORY_HOURS * 3600 - 60)
        moment = (now - timedelta(seconds=age)).replace(microsecond=0)
        if channel != "phone" or _in_phone_hours(moment, local):
            return moment, channel
    return moment, "web"


def _reporter(
    rng: random.Random, language: Language, channel: Channel
) -> tuple[str, str, str | None]:
    if language == "en" and rng.random() < 0.7:
        first, last = rng.choice(_FIRST_EN), rng.choice(_LAST_EN)
    else:
        first, last = rng.choice(_FIRST_FR), rng.choice(_LAST_FR)
    phone = f"{rng.choice(('418', '418', '581'))} 555-{rng.randint(100, 199):04d}"
    wants_email = rng.random() < (0.3 if channel == "phone" else 0.9)
    email = None
    if wants_email:
        local_part = f"{_ascii_slug(first)}.{_ascii_slug(last)}{rng.randint(1, 99)}"
        email = f"{local_part}@{rng.choice(_EMAIL_DOMAINS)}"
    return f"{first} {last}", phone, email


def _describe(
    rng: random.Random, service_code: str, language: Language, numero: int, rue: str
) -> str:
    if language == "fr":
        template = rng.choice(_DESCRIPTIONS_FR[service_code])
        suffix, hour = rng.choice(_SUFFIX_FR), rng.choice(_HOUR_FR)
    else:
        template = rng.choice(_DESCRIPTIONS_EN[service_code])
        suffix, hour = rng.choice(_SUFFIX_EN), rng.choice(_HOUR_EN)
    return template.format(numero=numero, rue=rue, heure=hour) + suffix


def _civic_number(rng: random.Random) -> int:
    return rng.choice((rng.randint(2, 999), rng.randint(100, 2999), rng.randint(1000, 9999)))


def _new_request(rng: random.Random, now: datetime, local: tzinfo) -> tuple[DemoRequest, int, str]:
    service = SERVICE_TYPE_BY_CODE[_weighted(rng, _SERVICE_WEIGHTS)]
    borough = BOROUGH_BY_CODE[_weighted(rng, _BOROUGH_WEIGHTS)]
    lat, lon = _sample_point(rng, borough)
    channel = _pick_channel(rng)
    language: Language = "en" if rng.random() < _ENGLISH_SHARE else "fr"
    created_at, channel = _sample_time(rng, now, service, channel, local)
    numero, rue = _civic_number(rng), rng.choice(borough.streets)
    name, phone, email = _reporter(rng, language, channel)
    request = DemoRequest(
        service_code=service.code,
        borough_code=borough.code,
        lat=lat,
        lon=lon,
        address=f"{numero}, {rue}",
        description=_describe(rng, service.code, language, numero, rue),
        reporter_name=name,
        reporter_phone=phone,
        reporter_email=email,
        channel=channel,
        language=language,
        created_at=created_at,
    )
    return request, numero, rue


def _near_duplicate(
    rng: random.Random, now: datetime, local: tzinfo, original: DemoRequest, numero: int, rue: str
) -> DemoRequest | None:
    """Another report of the same problem: same service, within 30 m, later, another person."""
    polygon = BOROUGH_BY_CODE[original.borough_code].polygon
    for _ in range(20):
        distance = rng.uniform(2.0, NEAR_DUPLICATE_MAX_M - 6.0)
        bearing = rng.uniform(0.0, 2 * math.pi)
        lat = round(original.lat + distance * math.cos(bearing) / 111_195.0, 6)
        lon = round(
            original.lon
            + distance * math.sin(bearing) / (111_195.0 * math.cos(math.radians(original.lat))),
            6,
        )
        if point_in_polygon(lat, lon, polygon):
            break
    else:
        return None
    latest = (now - original.created_at).total_seconds()
    if latest < 10 * 60:
        return None
    delay = rng.uniform(5 * 60, min(latest, 8 * 3600))
    created_at = (original.created_at + timedelta(seconds=delay)).replace(microsecond=0)
    channel = _pick_channel(rng)
    if channel == "phone" and not _in_phone_hours(created_at, local):
        channel = "web"
    language: Language = "en" if rng.random() < _ENGLISH_SHARE else "fr"
    neighbour = max(1, numero + rng.choice((-4, -2, 0, 2, 4)))
    name, phone, email = _reporter(rng, language, channel)
    return DemoRequest(
        service_code=original.service_code,
        borough_code=original.borough_code,
        lat=lat,
        lon=lon,
        address=f"{neighbour}, {rue}",
        description=_describe(rng, original.service_code, language, neighbour, rue),
        reporter_name=name,
        reporter_phone=phone,
        reporter_email=email,
        channel=channel,
        language=language,
        created_at=created_at,
    )


def generate_requests(seed: int, n: int, now: datetime) -> list[DemoRequest]:
    """``n`` citizen requests from the last 72 hours, oldest first; deterministic in (seed, n, now).

    A snow storm just ended: snow requests are concentrated in the last 24 hours; bulky items
    and missed collections are the largest share overall. Phone requests fall within 311 hours
    (08:00–19:00, Québec time). About 5 % are near-duplicates of another request (same service,
    within 30 m, reported later by someone else); nothing marks them, the server must find them.
    A naive ``now`` is taken as UTC; ``created_at`` values are timezone-aware UTC.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    rng = random.Random(seed)
    local = _local_tz()
    duplicates = int(n * NEAR_DUPLICATE_SHARE) if n >= 10 else 0
    base: list[tuple[DemoRequest, int, str]] = [
        _new_request(rng, now, local) for _ in range(n - duplicates)
    ]
    requests = [request for request, _, _ in base]
    while len(requests) < n:
        original, numero, rue = rng.choice(base)
        duplicate = _near_duplicate(rng, now, local, original, numero, rue)
        requests.append(duplicate if duplicate is not None else _new_request(rng, now, local)[0])
    order = sorted(range(len(requests)), key=lambda i: (requests[i].created_at, i))
    return [requests[i] for i in order]
