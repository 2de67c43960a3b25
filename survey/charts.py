"""Charts of a campaign report, drawn on the server with matplotlib: SVG for pages, PNG for the PDF.

Figures are built with the object API and the Agg canvas, never pyplot, so rendering keeps no
global state and is safe in several threads. Text is drawn with DejaVu Sans, which has every
Vietnamese diacritic; in SVG the glyphs are embedded as paths, so a viewer needs no font.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from flask_babel import gettext as _

import scoring

from .exports import number
from .services.reports import CampaignReport, finite

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# matplotlib is imported where a chart is drawn, not here: a worker that only serves surveys and
# logins never loads it (about 30 MB per worker).

#: Everything a chart draws its text with; set explicitly so no system font is ever substituted.
STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "svg.fonttype": "path",
    "svg.hashsalt": "evnnpc-report",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
FORMATS = ("svg", "png")
CONSULTANT_COLOUR = "#0b4ea2"
CROSS_COLOUR = "#d9730d"
FLAG_COLOUR = "#b3261e"
MUTED_COLOUR = "#5b6575"
STATUS_COLOURS = {"inconsistent": "#b3261e", "consistent": "#1e7b34", "inconclusive": "#a15c00"}
PREFIXES = ("Công ty Điện lực ", "Công ty điện lực ")
SUFFIXES = (" Power Company",)


def short_name(name: str) -> str:
    """A unit's name without "Công ty Điện lực" / "Power Company", to fit on an axis."""
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(figure)
    return figure


def render(draw: Callable[[], Figure], fmt: str = "svg") -> bytes:
    """Draw a figure with the report style and serialise it as SVG or PNG."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown chart format {fmt!r}; use svg or png")
    import matplotlib

    with matplotlib.rc_context(STYLE):
        figure = draw()
        buffer = io.BytesIO()
        # No dates or software versions in the file, so the same report gives the same bytes.
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        figure.savefig(buffer, format=fmt, dpi=150, metadata=metadata)
    return buffer.getvalue()


def _empty(figure: Figure, message: str) -> Figure:
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, message, ha="center", va="center", color=MUTED_COLOUR, transform=axes.transAxes)
    return figure


def forest_plot(report: CampaignReport, lang: str = "vi") -> Figure:
    """Consultant score and leniency-adjusted cross score per unit, each with its 95% interval."""
    results = [u for u in report.reconciliation.units
               if u.consultant_score is not None or u.cross_score_adjusted is not None]
    figure = _figure(7.5, 1.6 + 0.34 * max(len(results), 3))
    if not results:
        return _empty(figure, _("No scores yet."))
    results.sort(key=lambda u: (u.consultant_score if u.consultant_score is not None else -1.0, u.unit_code))
    offset = finite(report.reconciliation.offset.estimate)
    axes = figure.add_subplot()
    y = np.arange(len(results), dtype=float)
    for i, unit in enumerate(results):
        if unit.consultant_score is not None:
            low, high = unit.consultant_ci_low, unit.consultant_ci_high
            xerr = None
            if low is not None and high is not None:
                xerr = [[unit.consultant_score - low], [high - unit.consultant_score]]
            axes.errorbar(unit.consultant_score, y[i] + 0.16, xerr=xerr, fmt="o", color=CONSULTANT_COLOUR,
                          markersize=4, capsize=2)
        # The cross score on the consultant's scale: leniency and the campaign-wide offset removed.
        if unit.difference is not None and unit.consultant_score is not None:
            x = unit.consultant_score + unit.difference
            xerr = [[unit.difference - unit.difference_ci_low], [unit.difference_ci_high - unit.difference]]
            axes.errorbar(x, y[i] - 0.16, xerr=xerr, fmt="s", color=CROSS_COLOUR, markersize=4, capsize=2)
        elif unit.cross_score_adjusted is not None:
            x = unit.cross_score_adjusted - (offset or 0.0)
            axes.plot(x, y[i] - 0.16, "s", markerfacecolor="none", color=CROSS_COLOUR, markersize=4)
    # One legend entry per series, whichever units have it.
    axes.errorbar([], [], xerr=[], fmt="o", color=CONSULTANT_COLOUR, markersize=4, label=_("Consultant"))
    axes.errorbar([], [], xerr=[], fmt="s", color=CROSS_COLOUR, markersize=4,
                  label=_("Cross-scoring, adjusted for leniency and offset"))
    axes.axvline(report.target, color=MUTED_COLOUR, linestyle="--", linewidth=1,
                 label=_("Target %(target)s", target=number(report.target, 2, lang)))
    axes.set_yticks(y, [short_name(report.unit(u.unit_code).name(lang)) for u in results])
    for label, unit in zip(axes.get_yticklabels(), results):
        label.set_color(STATUS_COLOURS.get(unit.status, "black") if unit.status == "inconsistent" else "black")
    axes.set_xlabel(_("Score (1–10) with confidence interval (95%)"))
    axes.set_title(_("Consultant and cross-scoring per unit"))
    axes.grid(axis="x", color="#dde3ea", linewidth=0.6)
    # Below the plot, so it never hides a unit.
    figure.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return figure


def bland_altman_plot(report: CampaignReport, lang: str = "vi") -> Figure:
    """Bland–Altman plot of adjusted cross score against consultant score, one point per unit."""
    pairs = [u for u in report.reconciliation.units
             if u.consultant_score is not None and u.cross_score_adjusted is not None]
    figure = _figure(7.0, 4.8)
    if len(pairs) < 2:
        return _empty(figure, _("At least two units need both scores for a Bland–Altman plot."))
    cross = np.array([u.cross_score_adjusted for u in pairs], dtype=float)
    consultant = np.array([u.consultant_score for u in pairs], dtype=float)
    agreement = scoring.bland_altman(cross, consultant)
    mean = (cross + consultant) / 2
    difference = cross - consultant
    axes = figure.add_subplot()
    axes.scatter(mean, difference, s=18, color=CONSULTANT_COLOUR, zorder=3)
    if agreement.bias is not None:
        axes.axhline(agreement.bias, color=CROSS_COLOUR, linewidth=1.2,
                     label=_("Mean difference %(value)s", value=number(agreement.bias, 2, lang, signed=True)))
    if agreement.loa_low is not None and agreement.loa_high is not None:
        for value in (agreement.loa_low, agreement.loa_high):
            axes.axhline(value, color=MUTED_COLOUR, linestyle="--", linewidth=1)
        axes.plot([], [], color=MUTED_COLOUR, linestyle="--", linewidth=1,
                  label=_("95%% limits of agreement %(low)s to %(high)s",
                          low=number(agreement.loa_low, 2, lang, signed=True),
                          high=number(agreement.loa_high, 2, lang, signed=True)))
        outside = (difference < agreement.loa_low) | (difference > agreement.loa_high)
        for unit, x, d, out in zip(pairs, mean, difference, outside):
            if out:
                axes.annotate(short_name(report.unit(unit.unit_code).name(lang)), (x, d), fontsize=7,
                              xytext=(4, 2), textcoords="offset points")
    axes.axhline(0, color="#999999", linewidth=0.6)
    axes.set_xlabel(_("Mean of the two scores"))
    axes.set_ylabel(_("Adjusted cross score − consultant score"))
    axes.set_title(_("Agreement between the programmes (Bland–Altman)"))
    axes.legend(loc="best", fontsize=8, frameon=False)
    return figure


def leniency_plot(report: CampaignReport, lang: str = "vi") -> Figure:
    """Each auditing unit's leniency with its 95% interval (normal approximation); flagged units in red."""
    raters = [r for r in report.reconciliation.raters if r.leniency is not None]
    figure = _figure(7.0, 1.6 + 0.3 * max(len(raters), 3))
    if not raters:
        return _empty(figure, _("Leniency cannot be estimated from these data."))
    raters.sort(key=lambda r: (r.leniency, r.rater_unit))
    axes = figure.add_subplot()
    y = np.arange(len(raters), dtype=float)
    for i, rater in enumerate(raters):
        colour = FLAG_COLOUR if rater.flagged else CONSULTANT_COLOUR
        xerr = None if rater.leniency_se is None else 1.96 * rater.leniency_se
        axes.errorbar(rater.leniency, y[i], xerr=xerr, fmt="o", color=colour, markersize=4, capsize=2)
    axes.axvline(0, color=MUTED_COLOUR, linewidth=1)
    names = []
    for rater in raters:
        try:
            names.append(short_name(report.unit(rater.rater_unit).name(lang)))
        except KeyError:
            names.append(rater.rater_unit)
    axes.set_yticks(y, names)
    for label, rater in zip(axes.get_yticklabels(), raters):
        label.set_color(FLAG_COLOUR if rater.flagged else "black")
    axes.set_xlabel(_("Leniency in points, with interval (95%)"))
    axes.set_title(_("Leniency of the auditing units (flagged in red)"))
    axes.grid(axis="x", color="#dde3ea", linewidth=0.6)
    return figure


def dimension_heatmap(report: CampaignReport, lang: str = "vi") -> Figure:
    """Dimension scores per unit, consultant and cross side by side, as a heat map."""
    scores = report.dimension_scores
    dimensions = scores.dimensions
    units = list(report.units)
    height = 1.8 + 0.3 * max(len(units), 3)
    # Fixed margins: a layout engine would measure every one of the hundreds of cell labels several times.
    figure = _figure(11.0, height, layout=None)
    figure.subplots_adjust(left=0.14, right=0.9, top=1 - 0.55 / height, bottom=1.45 / height, wspace=0.05)
    if not dimensions or not scores.values:
        return _empty(figure, _("No dimension scores yet."))
    titles = {"consultant": _("Consultant"), "cross": _("Cross-scoring")}
    matrices = {}
    for source in titles:
        matrices[source] = np.array(
            [[np.nan if (v := scores.of(u.code, source)[d.code]) is None else v for d in dimensions] for u in units],
            dtype=float,
        )
    finite_values = np.concatenate([m[np.isfinite(m)] for m in matrices.values()])
    low = float(np.floor(finite_values.min() * 2) / 2) if finite_values.size else 1.0
    high = float(np.ceil(finite_values.max() * 2) / 2) if finite_values.size else 10.0
    if high <= low:
        high = low + 0.5
    import matplotlib

    colormap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#e6e6e6")
    axes_list = figure.subplots(1, 2, sharey=True)
    image = None
    for axes, (source, title) in zip(axes_list, titles.items()):
        matrix = np.ma.masked_invalid(matrices[source])
        image = axes.imshow(matrix, cmap=colormap, vmin=low, vmax=high, aspect="auto")
        for (row, column), value in np.ndenumerate(matrices[source]):
            if np.isfinite(value):
                axes.text(column, row, f"{value:.1f}", ha="center", va="center", fontsize=6.5)
        axes.set_xticks(np.arange(len(dimensions)), [d.title(lang) for d in dimensions], rotation=35,
                        ha="right", fontsize=7.5)
        axes.set_title(title)
        axes.spines[:].set_visible(False)
    axes_list[0].set_yticks(np.arange(len(units)), [short_name(u.name(lang)) for u in units], fontsize=7.5)
    if image is not None:
        colorbar_axes = figure.add_axes((0.92, 0.3, 0.015, 0.4))
        figure.colorbar(image, cax=colorbar_axes, label=_("Mean dimension score"))
    figure.suptitle(_("Dimension scores per unit"))
    return figure


#: The report's charts by URL name, in the order pages and the PDF show them.
CHARTS: dict[str, Callable[[CampaignReport, str], Figure]] = {
    "forest": forest_plot,
    "bland-altman": bland_altman_plot,
    "leniency": leniency_plot,
    "dimensions": dimension_heatmap,
}


def chart(report: CampaignReport, name: str, lang: str = "vi", fmt: str = "svg") -> bytes:
    """One of the report's charts, as SVG or PNG bytes (KeyError for an unknown name)."""
    draw = CHARTS[name]
    return render(lambda: draw(report, lang), fmt)
