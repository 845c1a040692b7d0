"""The certificate of a passed course: an A4 landscape PDF in Chinese and English, its Chinese in the
embedded font subset (`core.pdf`). It names the worker by the operator's id, not by name: the
certificate is checked against the operator's records, and carries no personal data."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from tripguard.core.pdf import RENDERING, font
from tripguard.workforce.models import Attempt, Course


def render_pdf(attempt: Attempt, course: Course, *, timezone: str) -> bytes:
    assert attempt.passed and attempt.certificate_no
    zone = ZoneInfo(timezone)
    day = attempt.at.astimezone(zone).date().isoformat()
    until = attempt.expires_at.astimezone(zone).date().isoformat() if attempt.expires_at else "—"
    face = font()
    width, height = landscape(A4)
    buffer = io.BytesIO()
    with RENDERING:
        page = canvas.Canvas(buffer, pagesize=(width, height), pageCompression=1)
        page.setTitle(f"{course.title_zh} / {course.title_en}")
        page.setLineWidth(2)
        page.rect(15 * mm, 15 * mm, width - 30 * mm, height - 30 * mm)
        page.setFont(face, 30)
        page.drawCentredString(width / 2, height - 50 * mm, "培训合格证书")
        page.setFont(face, 16)
        page.drawCentredString(width / 2, height - 62 * mm, "Certificate of training")
        page.setFont(face, 20)
        page.drawCentredString(width / 2, height - 88 * mm, course.title_zh)
        page.setFont(face, 14)
        page.drawCentredString(width / 2, height - 98 * mm, course.title_en)
        lines = [("人员编号 Worker", attempt.worker_id), ("成绩 Score", f"{attempt.score} / 100"),
                 ("合格日期 Passed on", day), ("有效期至 Valid until", until),
                 ("证书编号 Certificate no.", attempt.certificate_no),
                 ("课程版本 Course version", str(attempt.course_version))]
        y = height - 120 * mm
        page.setFont(face, 12)
        for label, value in lines:
            page.drawRightString(width / 2 - 4 * mm, y, label)
            page.drawString(width / 2 + 4 * mm, y, value)
            y -= 8 * mm
        page.showPage()
        page.save()
    return buffer.getvalue()
