"""Charts: SVG without scripts, PNG for the PDF, Vietnamese glyphs drawn from DejaVu Sans, empty data handled."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
from flask_babel import force_locale
from matplotlib.ft2font import FT2Font

from survey import charts
from survey.services import reports


def glyph_id(character: str) -> str:
    """The id matplotlib gives a DejaVu Sans glyph in an SVG (font name and glyph index)."""
    font = FT2Font(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"))
    index = font.get_char_index(ord(character))
    assert index, f"DejaVu Sans has no glyph for {character!r}"
    return f"DejaVuSans-{index:x}"


@pytest.mark.parametrize("name", list(charts.CHARTS))
def test_every_chart_renders_svg_and_png(seeded, name):
    report = reports.build_report(seeded.campaign)
    with force_locale("vi"):
        svg = charts.chart(report, name, "vi", "svg").decode("utf-8")
        png = charts.chart(report, name, "vi", "png")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    lowered = svg.lower()
    assert "<script" not in lowered and "javascript:" not in lowered and " on" + "load=" not in lowered
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Text is drawn as DejaVu Sans glyph paths, Vietnamese letters included (every chart has "ể", "ố" or "ị").
    assert "DejaVuSans-" in svg
    assert any(glyph_id(c) in svg for c in "ểốị"), "no Vietnamese glyph in the chart"


def test_forest_plot_labels_units_in_vietnamese(seeded):
    report = reports.build_report(seeded.campaign)
    with force_locale("vi"):
        svg = charts.chart(report, "forest", "vi", "svg").decode("utf-8")
    # "Bắc Giang" and "Bắc Kạn": the glyphs of ắ and ạ are drawn.
    assert glyph_id("ắ") in svg and glyph_id("ạ") in svg


def test_the_same_report_gives_the_same_svg(seeded):
    report = reports.build_report(seeded.campaign)
    with force_locale("en"):
        assert charts.chart(report, "leniency", "en") == charts.chart(report, "leniency", "en")


@pytest.mark.parametrize("name", list(charts.CHARTS))
def test_charts_of_an_empty_campaign(app, make_campaign, name):
    report = reports.build_report(make_campaign(code="empty", units=3))
    with force_locale("en"):
        svg = charts.chart(report, name, "en", "svg")
    assert b"<svg" in svg


def test_unknown_format_is_refused(seeded):
    report = reports.build_report(seeded.campaign)
    with pytest.raises(ValueError, match="svg or png"):
        charts.chart(report, "forest", "vi", "gif")


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("Công ty Điện lực Bắc Giang", "Bắc Giang"),
        ("Bac Giang Power Company", "Bac Giang"),
        ("Tổng công ty", "Tổng công ty"),
    ],
)
def test_short_name(name, short):
    assert charts.short_name(name) == short
