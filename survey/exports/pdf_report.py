"""The printable report (fpdf2): title page, per-unit table, raters, one chart per page, the method.

Text is set in DejaVu Sans, taken from matplotlib's bundled fonts, so Vietnamese prints with
every diacritic on any machine. Each section starts on a new page.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import matplotlib
from flask_babel import force_locale
from flask_babel import gettext as _
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from .. import charts
from ..services.reports import CampaignReport, finite
from . import STATUS_LABELS, number, p_value

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT = "DejaVu"
STATUS_FILLS = {"inconsistent": (248, 215, 212), "consistent": (213, 237, 218), "inconclusive": (252, 232, 200)}
HEADER_FILL = (238, 242, 247)
#: Usable page area of A4 with 12 mm margins below the heading, in mm: landscape, then portrait.
PAGE_WIDTH = 273.0
PAGE_HEIGHT = 160.0
PORTRAIT_WIDTH = 186.0
PORTRAIT_HEIGHT = 245.0


class ReportPDF(FPDF):
    """A4 landscape pages with the campaign in the footer."""

    def __init__(self, footer_text: str):
        super().__init__(orientation="L", unit="mm", format="A4")
        self.footer_text = footer_text
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_margins(12, 12, 12)
        self.set_auto_page_break(auto=True, margin=14)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(FONT, "", 7)
        self.set_text_color(91, 101, 117)
        self.cell(0, 5, f"{self.footer_text} · {self.page_no()}", align="R")
        self.set_text_color(0, 0, 0)

    def section(self, title: str, orientation: str = "L") -> None:
        """Start a section on a new page (landscape unless told) with its heading."""
        self.add_page(orientation=orientation)
        self.set_font(FONT, "B", 15)
        self.multi_cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)
        self.set_font(FONT, "", 9)

    def paragraph(self, text: str, size: float = 9, bold: bool = False) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels, from the PNG header."""
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _title_page(pdf: ReportPDF, report: CampaignReport, lang: str) -> None:
    overall = report.overall
    pdf.section(_("Customer satisfaction: reconciled report"))
    pdf.paragraph(report.campaign_name(lang), size=13, bold=True)
    pdf.paragraph(_("Campaign %(code)s, generated %(when)s UTC", code=report.campaign_code,
                    when=report.generated_at.strftime("%Y-%m-%d %H:%M")))
    pdf.ln(4)
    if overall.score is None:
        pdf.paragraph(_("There are no complete consultant responses yet, so there is no overall score."))
    else:
        pdf.paragraph(
            _("Overall consultant score: %(score)s (95%% CI %(low)s to %(high)s, %(n)s respondents).",
              score=number(overall.score, 2, lang), low=number(overall.ci_low, 2, lang),
              high=number(overall.ci_high, 2, lang), n=overall.n),
            size=12, bold=True,
        )
        if overall.meets_target:
            text = _("The target of %(target)s is met (%(diff)s points).", target=number(report.target, 2, lang),
                     diff=number(overall.versus_target, 2, lang, signed=True))
        else:
            text = _("The target of %(target)s is not met (%(diff)s points).", target=number(report.target, 2, lang),
                     diff=number(overall.versus_target, 2, lang, signed=True))
        pdf.paragraph(text, size=11)
        if overall.change is not None:
            pdf.paragraph(_("Change from campaign %(code)s (%(previous)s): %(change)s points.",
                            code=overall.previous_code, previous=number(overall.previous_score, 2, lang),
                            change=number(overall.change, 2, lang, signed=True)), size=11)
    offset = report.reconciliation.offset
    if finite(offset.estimate) is not None:
        pdf.paragraph(_("Campaign-wide offset (all auditing units together minus the consultant): %(value)s points "
                        "(95%% CI %(low)s to %(high)s).", value=number(offset.estimate, 2, lang, signed=True),
                        low=number(offset.ci_low, 2, lang, signed=True),
                        high=number(offset.ci_high, 2, lang, signed=True)), size=11)
    counts = {s: 0 for s in STATUS_LABELS}
    for unit in report.reconciliation.units:
        counts[unit.status] = counts.get(unit.status, 0) + 1
    pdf.paragraph(", ".join(f"{STATUS_LABELS[s]}: {counts[s]}" for s in STATUS_LABELS), size=11)


def _unit_table(pdf: ReportPDF, report: CampaignReport, lang: str) -> None:
    pdf.section(_("Results per unit"))
    headings = [_("Unit"), _("Consultant n"), _("Consultant score (95% CI)"), _("Cross n"), _("Auditing units"),
                _("Cross score"), _("Adjusted cross score"), _("Difference (95% CI)"), _("Adjusted p"), _("Status"),
                _("Reconciled score (95% CI)"), _("Rank")]
    widths = (40, 17, 34, 14, 16, 18, 20, 36, 16, 22, 30, 10)
    pdf.set_font(FONT, "", 7)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=3.6, width=PAGE_WIDTH,
                   headings_style=FontFace(emphasis="BOLD", fill_color=HEADER_FILL)) as table:
        row = table.row()
        for heading in headings:
            row.cell(heading)
        for unit in sorted(report.reconciliation.units, key=lambda u: (u.rank is None, u.rank or 0, u.unit_code)):
            row = table.row()
            row.cell(charts.short_name(report.unit(unit.unit_code).name(lang)))
            row.cell(str(unit.consultant_n), align="RIGHT")
            row.cell(f"{number(unit.consultant_score, 2, lang)} ({number(unit.consultant_ci_low, 2, lang)}–"
                     f"{number(unit.consultant_ci_high, 2, lang)})")
            row.cell(str(unit.cross_n), align="RIGHT")
            row.cell(str(unit.cross_raters), align="RIGHT")
            row.cell(number(unit.cross_score, 2, lang), align="RIGHT")
            row.cell(number(unit.cross_score_adjusted, 2, lang), align="RIGHT")
            row.cell(f"{number(unit.difference, 2, lang, True)} ({number(unit.difference_ci_low, 2, lang, True)}; "
                     f"{number(unit.difference_ci_high, 2, lang, True)})")
            row.cell(p_value(unit.p_adjusted, lang), align="RIGHT")
            row.cell(str(STATUS_LABELS.get(unit.status, unit.status)),
                     style=FontFace(fill_color=STATUS_FILLS.get(unit.status)))
            row.cell(f"{number(unit.reconciled_score, 2, lang)} ({number(unit.reconciled_ci_low, 2, lang)}–"
                     f"{number(unit.reconciled_ci_high, 2, lang)})")
            row.cell("" if unit.rank is None else str(unit.rank), align="RIGHT")
    pdf.ln(4)
    pdf.paragraph(_("Reasons"), size=11, bold=True)
    for unit in report.reconciliation.units:
        name = report.unit(unit.unit_code).name(lang)
        pdf.paragraph(f"{name}: {unit.reason if lang == 'en' else unit.reason_vi}", size=7.5)


def _rater_table(pdf: ReportPDF, report: CampaignReport, lang: str) -> None:
    pdf.section(_("Leniency of the auditing units"))
    pdf.paragraph(_("Leniency is how many points an auditing unit scores above (+) or below (−) the average auditing "
                    "unit for the same units. Flagged units differ significantly after Benjamini–Hochberg "
                    "adjustment."))
    if not report.reconciliation.raters:
        pdf.paragraph(_("No cross-scoring data yet."))
        return
    pdf.set_font(FONT, "", 8)
    headings = [_("Auditing unit"), _("Leniency"), _("Standard error"), _("p-value"), _("Adjusted p"), _("Flagged"),
                _("Respondents"), _("Units scored")]
    with pdf.table(col_widths=(60, 24, 24, 22, 22, 20, 24, 24), text_align="LEFT", line_height=4.2,
                   width=220, align="LEFT", headings_style=FontFace(emphasis="BOLD", fill_color=HEADER_FILL)) as table:
        row = table.row()
        for heading in headings:
            row.cell(heading)
        for rater in report.reconciliation.raters:
            try:
                name = report.unit(rater.rater_unit).name(lang)
            except KeyError:
                name = rater.rater_unit
            row = table.row()
            row.cell(charts.short_name(name))
            row.cell(number(rater.leniency, 2, lang, True), align="RIGHT")
            row.cell(number(rater.leniency_se, 3, lang), align="RIGHT")
            row.cell(p_value(rater.p_value, lang), align="RIGHT")
            row.cell(p_value(rater.p_adjusted, lang), align="RIGHT")
            row.cell(_("yes") if rater.flagged else _("no"),
                     style=FontFace(fill_color=STATUS_FILLS["inconsistent"]) if rater.flagged else None)
            row.cell(str(rater.n), align="RIGHT")
            row.cell(str(rater.units_scored), align="RIGHT")


def _chart_pages(pdf: ReportPDF, report: CampaignReport, lang: str) -> None:
    titles = {
        "forest": _("Chart: consultant and cross-scoring per unit"),
        "bland-altman": _("Chart: agreement between the programmes"),
        "leniency": _("Chart: leniency of the auditing units"),
        "dimensions": _("Chart: dimension scores per unit"),
    }
    for name in charts.CHARTS:
        png = charts.chart(report, name, lang, "png")
        width_px, height_px = _png_size(png)
        # A chart taller than wide (one row per unit) gets a portrait page, so it prints large enough to read.
        if height_px > width_px:
            pdf.section(titles[name], orientation="P")
            page_width, page_height = PORTRAIT_WIDTH, PORTRAIT_HEIGHT
        else:
            pdf.section(titles[name])
            page_width, page_height = PAGE_WIDTH, PAGE_HEIGHT
        width = min(page_width, page_height * width_px / height_px)
        pdf.image(io.BytesIO(png), x=12 + (page_width - width) / 2, w=width)


def _method_page(pdf: ReportPDF, report: CampaignReport, lang: str) -> None:
    rec = report.reconciliation
    pdf.section(_("Method"))
    pdf.paragraph(_(
        "Cross-scoring is compared with the consultant's survey unit by unit. A statistical model separates three "
        "things: a campaign-wide offset (all auditing units together scoring above or below the consultant), each "
        "auditing unit's leniency (how far it scores above or below the other auditing units for the same units), "
        "and each unit's own difference. A unit is inconsistent when its difference, after removing leniency and "
        "the offset, is statistically significant (Benjamini–Hochberg adjusted p below %(alpha)s) and at least "
        "%(margin)s points; consistent when it lies within ±%(margin)s points (two one-sided tests); otherwise "
        "inconclusive. The reconciled score combines both programmes weighted by their precision, except for "
        "inconsistent units, which keep the consultant score.",
        alpha=number(rec.alpha, 2, lang), margin=number(rec.margin, 2, lang)), size=10)
    if lang != "en":
        pdf.paragraph(_("Technical description (English):"), size=9, bold=True)
    pdf.paragraph(rec.method, size=8.5)
    pdf.paragraph(_("Scores: a respondent's dimension score is the mean of the answered items; the respondent index "
                    "is the weighted mean of the dimension scores; respondents who answered fewer than half of the "
                    "dimensions are excluded. Rejected cross responses never count."), size=8.5)
    if rec.warnings:
        pdf.paragraph(_("Notes from the analysis"), size=9, bold=True)
        for warning in rec.warnings:
            pdf.paragraph(f"• {warning}", size=8.5)


def report_pdf(report: CampaignReport, lang: str = "vi") -> bytes:
    """The printable report as PDF bytes."""
    with force_locale(lang):
        pdf = ReportPDF(f"EVNNPC · {report.campaign_code}")
        pdf.set_title(f"{_('Customer satisfaction: reconciled report')} {report.campaign_code}")
        pdf.set_author("EVNNPC")
        pdf.set_lang(lang)
        _title_page(pdf, report, lang)
        _unit_table(pdf, report, lang)
        _rater_table(pdf, report, lang)
        _chart_pages(pdf, report, lang)
        _method_page(pdf, report, lang)
        return bytes(pdf.output())
