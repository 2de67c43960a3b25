"""Printable QR codes for survey links: one SVG file per link, or A4 PDF sheets with captions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segno
from fpdf import FPDF
from PIL import Image

#: A4 portrait, in millimetres: 4 columns × 5 rows of codes with room for a caption under each.
COLUMNS, ROWS = 4, 5
PER_PAGE = COLUMNS * ROWS
PAGE_MARGIN = 10.0
CODE_SIZE = 36.0
CAPTION_SIZE = 7.0
CAPTION_LINE = 3.2
#: Error correction "M" survives a crease or a smudge on a printed bill (15 % of the code).
ERROR_LEVEL = "m"
#: The quiet zone around a code, in modules (the standard asks for 4).
BORDER = 4
#: Pixels per module in the embedded image: sharp at 36 mm, small in the file.
PIXELS_PER_MODULE = 6


@dataclass(frozen=True)
class QrCard:
    """One link to print, with its caption lines (Vietnamese first)."""

    link: str
    lines: tuple[str, ...]
    #: The code, when the caller made it already (for the SVG files).
    code: segno.QRCode | None = None


def caption_font() -> Path:
    """A TrueType font with every Vietnamese glyph (DejaVu Sans, shipped inside matplotlib)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def make_code(link: str) -> segno.QRCode:
    """The link's QR code (segno picks the smallest version and the most legible mask)."""
    return segno.make(link, error=ERROR_LEVEL, micro=False)


def write_svg(link: str, path: Path, code: segno.QRCode | None = None) -> None:
    """Write the link's QR code as an SVG file."""
    (code or make_code(link)).save(str(path), kind="svg", scale=4, border=BORDER)


def code_image(code: segno.QRCode) -> Image.Image:
    """The code as a black-and-white image with its quiet zone, straight from segno's module matrix."""
    modules = np.pad(np.array(code.matrix, dtype=np.uint8), BORDER)
    pixels = np.where(modules.astype(bool), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L")
    return image.resize((image.width * PIXELS_PER_MODULE, image.height * PIXELS_PER_MODULE), Image.Resampling.NEAREST)


def write_pdf(
    cards: Sequence[QrCard], path: Path, title: str, progress: Callable[[int], None] | None = None
) -> int:
    """Lay the cards out on A4 sheets, PER_PAGE to a page, each code above its caption; return the page count."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(title)
    pdf.set_creator("EVNNPC survey platform")
    pdf.add_font("DejaVu", "", str(caption_font()))
    pdf.set_font("DejaVu", size=CAPTION_SIZE)
    cell_width = (pdf.w - 2 * PAGE_MARGIN) / COLUMNS
    cell_height = (pdf.h - 2 * PAGE_MARGIN) / ROWS
    text_width = cell_width - 2
    wrapped: dict[str, list[str]] = {}

    def lines_of(text: str) -> list[str]:
        # Most caption lines repeat on every card: break each distinct one only once.
        if text not in wrapped:
            if pdf.get_string_width(text) <= text_width:
                wrapped[text] = [text]
            else:
                wrapped[text] = pdf.multi_cell(text_width, CAPTION_LINE, text, dry_run=True, output="LINES")
        return wrapped[text]

    for position, card in enumerate(cards):
        slot = position % PER_PAGE
        if slot == 0:
            pdf.add_page()
            _cut_lines(pdf, cell_width, cell_height)
        column, row = slot % COLUMNS, slot // COLUMNS
        left = PAGE_MARGIN + column * cell_width
        top = PAGE_MARGIN + row * cell_height
        code = card.code or make_code(card.link)
        pdf.image(code_image(code), x=left + (cell_width - CODE_SIZE) / 2, y=top + 2, w=CODE_SIZE, h=CODE_SIZE)
        y = top + 2 + CODE_SIZE + 1
        for text in card.lines:
            for line in lines_of(text):
                pdf.set_xy(left + 1, y)
                pdf.cell(text_width, CAPTION_LINE, line, align="C")
                y += CAPTION_LINE
        if progress is not None:
            progress(1)
    pdf.output(str(path))
    return pdf.pages_count


def _cut_lines(pdf: FPDF, cell_width: float, cell_height: float) -> None:
    """Light dotted lines between the cards, to cut them apart."""
    pdf.set_draw_color(200, 200, 200)
    pdf.set_line_width(0.1)
    pdf.set_dash_pattern(dash=1, gap=1)
    for column in range(1, COLUMNS):
        x = PAGE_MARGIN + column * cell_width
        pdf.line(x, PAGE_MARGIN, x, pdf.h - PAGE_MARGIN)
    for row in range(1, ROWS):
        y = PAGE_MARGIN + row * cell_height
        pdf.line(PAGE_MARGIN, y, pdf.w - PAGE_MARGIN, y)
    pdf.set_dash_pattern()
