"""The HTML model report: what it contains, that it fetches nothing, and how a browser shows it.

The browser test opens the written file in a real headless Chromium (Debian's, driven by
Playwright's Python API) with every non-file request aborted and counted, because "opens
offline" is a promise of the report that only a browser can check.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from leadready.features.exclusions import Exclusions, LeftOut
from leadready.training.report import SECTIONS, ReportData, render_report, write_report

SECTION_IDS = [sid for sid, _ in SECTIONS]
CHARTS = ["calibration", "gains", "drivers"]
# SVG namespace declarations: names, never fetched by a browser.
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def _report_data(comparison: dict[str, object] | None = None, **changes) -> ReportData:
    """A run on 2,000 seeded synthetic hold-out rows: a good model and a weaker scorecard."""
    rng = np.random.default_rng(11)
    n = 2_000
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.6 * signal - 2.2)))).astype(int)
    model = 1 / (1 + np.exp(-(1.5 * signal + rng.normal(0, 0.4, n) - 2.1)))
    scorecard = np.clip(0.5 * model + 0.12 * rng.random(n), 0, 1)
    features = [f"feature_{i}" for i in range(20)]
    data = ReportData(
        title="Sales readiness — training report",
        model_name="sales-readiness",
        version="18",
        trained_at="2025-06-01 09:30 UTC",
        data_summary={
            "rows": 48_210,
            "leads": 20_000,
            "date_range": ("2023-01-02", "2025-05-30"),
            "base_rate": 0.143,
            "test_rows": n,
            "missing_shares": {f: 0.02 * i for i, f in enumerate(features)},
        },
        leaderboard=[
            {"candidate": "lightgbm", "val_roc_auc": 0.842, "val_ece": 0.011, "chosen": True},
            {"candidate": "logistic", "val_roc_auc": 0.815, "val_ece": 0.014, "chosen": False},
        ],
        metrics={
            "readiness model": {"roc_auc": (0.8312, 0.8221, 0.8403), "ece": (0.012, 0.008, 0.02)},
            "BANT scorecard": {"roc_auc": (0.7012, 0.6851, 0.7174), "ece": (0.09, 0.08, 0.1)},
        },
        y_test=y,
        scores={"readiness model": model, "BANT scorecard": scorecard},
        drivers={f: 1.0 / (i + 1) for i, f in enumerate(features)},
        labels={f: f"Plain words for {f} <{i}>" for i, f in enumerate(features)},
        thresholds={"sales": 0.41, "disqualify": 0.03},
        routes={
            "sales": {"share": 0.12, "win_rate": 0.46, "eventual_win_rate": 0.61, "rows": 240},
            "nurture": {"share": 0.7, "win_rate": 0.1, "eventual_win_rate": 0.2, "rows": 1400},
            "disqualify": {"share": 0.18, "win_rate": 0.01, "eventual_win_rate": 0.02, "rows": 360},
        },
        comparison=comparison,
    )
    return replace(data, **changes)


COMPARISON = {
    "champion_version": "17",
    "challenger_version": "18",
    "champion_auc": 0.8204,
    "challenger_auc": 0.8312,
    "difference": 0.0108,
    "ci_low": 0.0031,
    "ci_high": 0.0185,
    "p_value": 0.004,
    "champion_ece": 0.014,
    "challenger_ece": 0.012,
    "decision": "promoted",
    "rule": "Promote when the AUC gain's interval is above 0 and ECE does not worsen by > 0.01.",
}


@pytest.mark.unit
def test_report_references_nothing_outside_the_file():
    page = render_report(_report_data(COMPARISON))
    urls = set(re.findall(r"https?://[^\s\"'<>)]*", page))
    assert urls <= NAMESPACES, urls - NAMESPACES
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#)""", page)


@pytest.mark.unit
def test_report_escapes_text_and_states_when_there_is_no_champion():
    page = render_report(_report_data(None, title="<script>alert(1)</script> & co"))
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "no champion to compare with" in page
    assert "Trained on a CRM export" in page  # no exclusions: nothing is left out
    for sid in SECTION_IDS:
        assert page.count(f'<section id="{sid}">') == 1


@pytest.mark.unit
def test_report_says_which_columns_a_flat_model_left_out_and_why():
    left_out = Exclusions(
        [LeftOut("Lead Number", "looks like an id", "an id (9,237 distinct values, a sequence)")],
        [LeftOut("Tags", "suspected leakage: <alone>", "alone it ranks the outcome with ROC AUC")],
        "Too good to be true: ...",
    )
    page = render_report(_report_data(None, exclusions=left_out))
    section = page.split('<section id="left-out">', 1)[1].split("</section>", 1)[0]
    assert "<h2>Columns left out</h2>" in section
    assert (
        "<tr><td>Lead Number</td><td>looks like an id</td>"
        "<td>an id (9,237 distinct values, a sequence)</td></tr>" in section
    )
    assert "Read although suspected of leakage" in section
    assert "<td>Tags</td><td>suspected leakage: &lt;alone&gt;</td>" in section
    assert '<p class="verdict warning">Warning: Too good to be true: ...</p>' in section


@pytest.mark.unit
def test_report_without_routing_or_wins_still_renders(tmp_path):
    data = _report_data(None, thresholds={}, routes={}, y_test=np.zeros(2_000, dtype=int))
    path = write_report(data, tmp_path / "nested" / "report.html")
    page = path.read_text(encoding="utf-8")
    assert "no routing thresholds" in page
    assert "no scores or no wins" in page


@pytest.mark.unit
def test_report_rejects_scores_not_aligned_with_labels():
    data = _report_data(None, scores={"short": np.full(10, 0.5)})
    with pytest.raises(ValueError, match="short"):
        render_report(data)


@pytest.mark.browser
def test_report_opens_offline_in_headless_chromium(browser, tmp_path):
    from playwright.sync_api import expect

    path = write_report(_report_data(COMPARISON), tmp_path / "report.html")
    blocked: list[str] = []
    requested: list[str] = []

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.route("**/*", only_files)
    page.on(
        "request",
        lambda r: None if r.url.startswith(("file:", "data:")) else requested.append(r.url),
    )
    try:
        page.goto(path.as_uri(), wait_until="load")
        for sid in SECTION_IDS:
            section = page.locator(f"section#{sid}")
            expect(section).to_have_count(1)
            expect(section).to_be_visible()
            expect(section.locator("h2")).to_be_visible()
        for sid in CHARTS:
            svg = page.locator(f"section#{sid} svg")
            expect(svg.first).to_be_visible()
            assert page.locator(f"section#{sid} svg :is(path, rect)").count() > 10, sid
            box = svg.first.bounding_box()
            assert box and box["width"] > 200 and box["height"] > 150, (sid, box)
        expect(page.locator("section#metrics table")).to_contain_text("0.831 [0.822, 0.840]")
        expect(page.locator("section#drivers svg")).to_contain_text("Plain words for feature_0 <0>")
        comparison = page.locator("section#comparison")
        expect(comparison).to_contain_text("champion version 17")
        expect(comparison).to_contain_text("Challenger version 18")
        expect(comparison).to_contain_text("promoted")
        expect(page.locator("section#routing")).to_contain_text("46.0%")
        assert blocked == [] and requested == [], (blocked, requested)
    except Exception:
        shot = tmp_path / "report-failure.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing report: {shot}")
        raise
    finally:
        page.close()
