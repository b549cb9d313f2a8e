"""The report in a real browser: headless Chromium opens it from file://, with no network request.

Checks that the page loads without a script error, that the only request is
the file itself, that every chart has drawn marks inside its frame (not an
empty frame), that sorting a table column works, and saves a full-page
screenshot under the test's temporary folder (``report.png``). Skips, with
the reason, where Debian's ``chromium`` is not installed (``make test``
installs it when run as root).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.browser import Chromium, find_chromium
from tests.helpers.cli import run_report

CHARTS_JS = """JSON.stringify(Array.from(document.querySelectorAll('svg.chart')).map(function (s) {
  var f = s.getBoundingClientRect();
  var marks = Array.from(s.querySelectorAll('.mark')).filter(function (m) {
    var b = m.getBoundingClientRect();
    return (b.width > 0 || b.height > 0) && b.right >= f.left && b.left <= f.right && b.bottom >= f.top && b.top <= f.bottom;
  });
  return {name: s.getAttribute('data-chart'), width: f.width, height: f.height, marks: marks.length};
}))"""

SORT_JS = """(function () {
  var t = document.querySelector('table.results'), col = Array.from(t.querySelectorAll('th')).findIndex(function (h) {
    return h.textContent === 'p50 ms'; });
  t.querySelectorAll('th')[col].click();
  var asc = Array.from(t.tBodies[0].rows).map(function (r) { return +r.cells[col].getAttribute('data-v'); });
  t.querySelectorAll('th')[col].click();
  var desc = Array.from(t.tBodies[0].rows).map(function (r) { return +r.cells[col].getAttribute('data-v'); });
  return JSON.stringify({asc: asc, desc: desc});
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; make test installs it as root)")
    pytest.importorskip("websocket", reason="websocket-client (the dev extra) drives Chromium's DevTools protocol")
    return path


def test_report_renders_in_chromium(
    chromium: str, results_json: Path, quant_reports: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    res = run_report(results_json, quant_reports, out)
    assert res.exit_code == 0, res.output
    url = out.resolve().as_uri()

    with Chromium(chromium) as browser:
        load = browser.open(url)
        charts = json.loads(browser.evaluate(CHARTS_JS))
        sorted_p50 = json.loads(browser.evaluate(SORT_JS))
        shot = browser.screenshot(tmp_path / "report.png")

    assert load.requests == [url], f"the page asked for more than itself: {load.requests}"
    assert not load.failed and not load.exceptions, (load.failed, load.exceptions)
    names = [c["name"] for c in charts]
    for expected in ("pareto-top1-latency", "pareto-top1-energy", "pareto-size-latency", "latency-distribution"):
        assert expected in names
    assert any(n.startswith("sensitivity-") for n in names) and any(n.startswith("profile-") for n in names)
    assert sum(n.startswith("power-") for n in names) == 2
    empty = [c for c in charts if c["marks"] == 0 or c["width"] < 100 or c["height"] < 50]
    assert not empty, f"charts drawn as empty frames: {empty}"
    assert sorted_p50["asc"] == sorted(sorted_p50["asc"]) and sorted_p50["desc"] == sorted(
        sorted_p50["desc"], reverse=True
    )
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
