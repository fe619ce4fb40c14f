"""A PDF page as pixels: rendered by PDFium (pypdfium2, not the library that wrote it), and where its ink lies.

Text extraction can miss what a reader sees (a glyph drawn past the edge is still extracted; an
image has no characters at all), so the one-pager is also checked as an image: every pixel that is
not white is ink, and the ink's bounding box must lie inside the page's margins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium

DPI = 100
"""Modest on purpose: a US Letter page is 850 × 1100 pixels, rendered in a fraction of a second."""
WHITE = 245
"""A pixel with every channel above this is paper (anti-aliasing leaves faint greys at glyph edges)."""


@dataclass(frozen=True)
class Ink:
    """Where a rendered page is not white, in points from the page's top-left corner."""

    left: float
    top: float
    right: float
    bottom: float
    share: float
    """The share of the page's pixels that are ink."""
    width: float
    height: float
    """The page's size in points."""

    def outside(self, margins: tuple[float, float, float, float], *, tolerance: float = 72 / DPI) -> list[str]:
        """The sides (left, top, right, bottom) on which ink reaches into the margin; ``tolerance`` allows a pixel."""
        left, top, right, bottom = margins
        sides = {"left": self.left < left - tolerance, "top": self.top < top - tolerance,
                 "right": self.right > self.width - right + tolerance,
                 "bottom": self.bottom > self.height - bottom + tolerance}
        return [side for side, out in sides.items() if out]


def ink(path: Path, *, page: int = 0, dpi: int = DPI) -> Ink:
    """Render one page of the PDF at ``path`` and measure its ink; a blank page has an empty box at its centre."""
    pdf = pdfium.PdfDocument(path)
    try:
        sheet = pdf[page]
        width, height = sheet.get_size()
        scale = dpi / 72
        pixels = sheet.render(scale=scale).to_numpy()
    finally:
        pdf.close()
    dark = (pixels[..., :3] < WHITE).any(axis=-1)
    rows, columns = np.nonzero(dark)
    if not rows.size:
        return Ink(width / 2, height / 2, width / 2, height / 2, 0.0, width, height)
    return Ink(float(columns.min() / scale), float(rows.min() / scale), float((columns.max() + 1) / scale),
               float((rows.max() + 1) / scale), float(dark.mean()), width, height)
