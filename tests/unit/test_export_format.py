"""Export formatting: CSV lines parse back to the same cells; nearest-rank percentiles."""

from __future__ import annotations

import csv
import io
import math

from hypothesis import given
from hypothesis import strategies as st

from server.exports.service import _csv_line, nearest_rank

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@given(
    st.lists(st.one_of(st.text(max_size=40), st.integers(), st.floats(allow_nan=False)), max_size=8)
)
def test_csv_line_round_trips_and_defuses_formulas(cells: list[object]) -> None:
    (parsed,) = list(csv.reader(io.StringIO(_csv_line(cells), newline="")))
    assert len(parsed) == len(cells)
    for cell, text in zip(cells, parsed, strict=True):
        if isinstance(cell, str) and cell[:1] in FORMULA_START:
            assert text == "'" + cell
        else:
            assert text == str(cell)
        assert text[:1] not in ("=", "+", "@") or not isinstance(cell, str)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200))
def test_nearest_rank_is_an_observed_value_covering_the_fraction(values: list[float]) -> None:
    ordered = sorted(values)
    p90 = nearest_rank(ordered, 0.9)
    assert p90 in ordered
    assert sum(1 for v in ordered if v <= p90) >= math.ceil(0.9 * len(ordered))
    assert sum(1 for v in ordered if v < p90) < math.ceil(0.9 * len(ordered))


def test_nearest_rank_known_values() -> None:
    assert nearest_rank([10, 20, 30, 130], 0.9) == 130
    assert nearest_rank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert nearest_rank([5], 0.9) == 5
