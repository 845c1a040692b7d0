"""The label's drawing, from its already-masked text alone (`labels.label_text`): importable by a worker
process of the render pool without the database, the vault or the app."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pypdfium2 as pdfium
import segno
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from tripguard.core.pdf import font

SIZE = (100 * mm, 150 * mm)


@dataclass(frozen=True)
class LabelText:
    """Everything a label shows, masked already: sent to a render process."""

    order_id: str
    pickup_code: str
    qr: str
    name: str
    phone_tail: str
    address: str
    items: tuple[str, ...]


def render_pdf(text: LabelText) -> bytes:
    face = font()
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=SIZE, pageCompression=1)
    page.setTitle(f"TripGuard {text.order_id}")
    width, height = SIZE
    left, top = 7 * mm, height - 10 * mm
    page.setFont(face, 9)
    page.drawString(left, top, f"TripGuard · {text.order_id}")
    page.setFont(face, 11)
    page.drawString(left, top - 9 * mm, "取餐码 Pickup code")
    page.setFont(face, 34)
    page.drawString(left, top - 22 * mm, text.pickup_code)
    _draw_qr(page, text.qr, x=width - 41 * mm, y=top - 30 * mm, size=34 * mm)
    y = top - 44 * mm
    page.line(left, y + 4 * mm, width - left, y + 4 * mm)
    for caption, value in (("收件人 Recipient", text.name), ("电话尾号 Phone ends", text.phone_tail or "—"),
                           ("地址 Address", text.address)):
        page.setFont(face, 8)
        page.drawString(left, y, caption)
        page.setFont(face, 13)
        for line in _wrap(value, 22):
            y -= 6 * mm
            page.drawString(left, y, line)
        y -= 7 * mm
    page.line(left, y + 4 * mm, width - left, y + 4 * mm)
    page.setFont(face, 8)
    page.drawString(left, y, "内件 Items")
    page.setFont(face, 11)
    for line in text.items:
        y -= 5.5 * mm
        page.drawString(left, y, line)
    page.showPage()
    page.save()
    return buffer.getvalue()


def _draw_qr(page: canvas.Canvas, payload: str, *, x: float, y: float, size: float) -> None:
    """The QR code as one filled path of its dark modules (a shape per module is ten times slower)."""
    modules = segno.make(payload, error="m").matrix
    cell = size / len(modules)
    path = page.beginPath()
    for row, line in enumerate(modules):
        for column, dark in enumerate(line):
            if dark:
                path.rect(x + column * cell, y + (len(modules) - 1 - row) * cell, cell, cell)
    page.drawPath(path, stroke=0, fill=1)


def _wrap(text: str, width: int) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]


def pdf_to_png(pdf: bytes, *, scale: float = 2.0) -> bytes:
    document = pdfium.PdfDocument(pdf)
    try:
        # Grey: the label is black on white, and a grey image rasterises and encodes in half the time of RGB.
        image = document[0].render(scale=scale, grayscale=True).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=3)
    return out.getvalue()


def render(text: LabelText, fmt: str) -> bytes:
    """The label as a PDF or a PNG. Not thread-safe (PDFium, ReportLab's font subsetting): one at a time in
    a process, under `core.pdf.RENDERING` or alone in a pool's worker process (`core.processes`)."""
    pdf = render_pdf(text)
    return pdf if fmt == "pdf" else pdf_to_png(pdf)


def warm() -> None:
    """A pool worker's start: the font parsed once (half a second), before its first label."""
    font()
