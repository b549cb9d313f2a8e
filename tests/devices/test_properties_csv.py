"""Property-based (hypothesis) suite over the external power meter's CSV.

Any text parses without an exception, and what it yields is usable: finite times,
finite non-negative watts (NaN, infinite or negative readings are bad lines, never energy).
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mdnet_deploy.devices.csvmeter import parse_power_csv
from tests.helpers.fuzz import FUZZ

numbers = st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.sampled_from(
    ["nan", "-inf", "1e999", "-0", "", "x"]
)
rows = st.lists(st.tuples(numbers, numbers).map(",".join) | st.text(max_size=30), max_size=20)


@FUZZ
@given(rows)
def test_power_csv(lines):
    times, watts, bad = parse_power_csv("\n".join(["time,watts", *lines]))
    assert len(times) == len(watts) and bad >= 0
    assert all(math.isfinite(t) for t in times)
    assert all(math.isfinite(w) and w >= 0 for w in watts)
    assert times == sorted(times)


def test_nan_and_negative_watts_are_bad_lines():
    """`--power-meter csv:log.csv` with 'nan' or '-3' watts: status ok with NaN or negative mJ."""
    times, watts, bad = parse_power_csv("t,w\n1.0,2.0\n2.0,nan\n3.0,-3\n4.0,inf\n5.0,2.5\n")
    assert times == [1.0, 5.0] and watts == [2.0, 2.5] and bad == 3
