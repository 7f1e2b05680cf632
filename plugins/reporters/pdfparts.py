"""Building blocks shared by the PDF reports: text, tables, charts, the header, the file.

ReportLab's Paragraph reads its text as markup, so a model called ``<b>`` or ``a&b`` would
break (or restyle) the document: every piece of text from a config, a store or a user goes
through :func:`esc` here, and callers only ever hand plain text to these helpers. A document
is built in memory and written with :func:`tsweep.files.write_atomic`, so a reader never
sees half a PDF.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import List, Optional, Sequence
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from tsweep import machine
from tsweep.files import write_atomic
from tsweep.reportcontext import ReportContext
from tsweep.verdict import describe_constraints, plus_minus

_STYLES = getSampleStyleSheet()
TITLE = _STYLES["Title"]
HEADING = _STYLES["Heading2"]
BODY = _STYLES["BodyText"]
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10, textColor=colors.HexColor("#444444"))
CELL = ParagraphStyle("cell", parent=BODY, fontSize=7, leading=8.5)
HEAD_CELL = ParagraphStyle("headcell", parent=CELL, fontName="Helvetica-Bold")
MARGIN = 1.5 * cm
MIN_COLUMN = 20.0  # points: room for the padding and a short number
PORTRAIT, LANDSCAPE = A4, landscape(A4)
NBSP = "\u00a0"
_BREAKS = re.compile(r"[^\S\u00a0]+")  # whitespace a line may break at


def esc(text: object) -> str:
    """Plain text made safe for a Paragraph (markup characters become entities)."""
    return escape(str(text))


def para(text: object, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(esc(text), style)


def labelled(label: str, text: object, style: ParagraphStyle = BODY) -> Paragraph:
    """'<b>label:</b> text' with only our own label bold."""
    return Paragraph(f"<b>{esc(label)}:</b> {esc(text)}", style)


def num(value: Optional[float], digits: int = 2) -> str:
    """A number for a table or sentence; '-' when it was not measured."""
    return "-" if value is None else f"{value:.{digits}f}"


def num_ci(value: Optional[float], half_width: Optional[float], digits: int = 2) -> str:
    """A measured figure with its 95% interval, '12.3 ±0.4' ('±?' when one window left
    none), as the CLI and the verdict write it; '-' when it was not measured. The space is a
    non-breaking one: a narrow column keeps the figure and its ± on one line."""
    return "-" if value is None else num(value, digits) + plus_minus(half_width, digits).replace(" ", NBSP)


def table(header: Sequence[str], rows: Sequence[Sequence[object]], width: float, highlight: Sequence[int] = ()) -> Table:
    """A grid with a bold header row; columns sized by their longest text to fill ``width``.
    Rows whose index is in ``highlight`` get a tint (e.g. the recommended config)."""
    cells = [[Paragraph(esc(h), HEAD_CELL) for h in header]]
    cells += [[Paragraph(esc(c), CELL) for c in row] for row in rows]
    widths = _column_widths([header, *rows], width)
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    style += [("BACKGROUND", (0, i + 1), (-1, i + 1), colors.HexColor("#eef7ee")) for i in highlight]
    return Table(cells, colWidths=widths, repeatRows=1, style=TableStyle(style))


def _column_widths(rows: Sequence[Sequence[object]], width: float) -> List[float]:
    """Each column wide enough for its longest word (words do not break well), the rest of
    ``width`` shared by the length of each column's longest text; scaled down if too wide."""
    columns = list(zip(*[[str(c) for c in row] for row in rows]))
    least = [max(MIN_COLUMN, max(stringWidth(w, HEAD_CELL.fontName, HEAD_CELL.fontSize) for c in col for w in _words(c)) + 8)
             for col in columns]  # fmt: skip
    longest = [max(min(len(c), 28) for c in col) for col in columns]
    spare = max(width - sum(least), 0.0)
    widths = [a + spare * n / max(sum(longest), 1) for a, n in zip(least, longest)]
    return [w * min(1.0, width / sum(widths)) for w in widths]


def _words(text: str) -> List[str]:
    """Where a cell may wrap: at spaces, not at non-breaking ones (str.split() breaks both)."""
    return [w for w in _BREAKS.split(text) if w] or [""]


def chart(png: bytes, width: float) -> Image:
    """A PNG chart scaled to ``width``, keeping its aspect ratio."""
    img = Image(io.BytesIO(png))
    img.drawHeight = width * img.imageHeight / img.imageWidth
    img.drawWidth = width
    return img


def side_by_side(pngs: Sequence[bytes], width: float, columns: int = 2) -> Table:
    """Up to ``columns`` charts in a row, each ``width / columns`` wide (a lone one stays that
    size), to fit more on a landscape page."""
    each = width / columns
    row = [chart(png, each - 6) for png in pngs] + [""] * (columns - len(pngs))
    return Table([row], colWidths=[each] * columns, style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))


def section(title: str, *flowables) -> KeepTogether:
    """A heading kept on the same page as what follows it."""
    return KeepTogether([Paragraph(esc(title), HEADING), *flowables])


def run_facts(context: ReportContext, include_goals: bool = True, model: str = "") -> List[Paragraph]:
    """Where the numbers were measured and what was asked: the header of every report."""
    facts = [
        labelled("Machine", machine.summary(context.machine), SMALL),
        labelled("Server", context.server or "not recorded", SMALL),
        labelled("Client", ", ".join(context.clients) or "not recorded", SMALL),
        labelled("Mode", context.mode, SMALL),
    ]
    if include_goals:
        objectives, constraints = context.goals_of(model)  # a model's own, else the run's
        facts.append(labelled("Objectives", ", ".join(f"{k} (weight {v:g})" for k, v in objectives.items()) or "none", SMALL))
        facts.append(labelled("Constraints", describe_constraints(constraints), SMALL))
    return facts


def write_pdf(path: Path, title: str, story: Sequence[object], pagesize=PORTRAIT) -> Path:
    """Lay out ``story`` into a PDF in memory, then write it atomically to ``path``."""
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=pagesize, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
        title=title, author="tsweep", creator="tsweep",
    )  # fmt: skip
    doc.build(list(story), onFirstPage=_footer, onLaterPages=_footer)
    return write_atomic(path, buf.getvalue())


def text_width(pagesize=PORTRAIT) -> float:
    return pagesize[0] - 2 * MARGIN


def _footer(canvas, doc) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 7)
    canvas.setFillColor(colors.HexColor("#777777"))
    canvas.drawRightString(doc.pagesize[0] - MARGIN, MARGIN / 2, f"tsweep - page {doc.page}")
    canvas.restoreState()


def spacer(height: float = 0.3 * cm) -> Spacer:
    return Spacer(1, height)
