"""Labels rendered in the process pool (`core.processes`): many at once, each a whole PDF (or PNG) saying the
same as the label rendered in this process; a killed worker answers the labels it held 503 at once, and
the next label renders in a new pool."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pypdfium2 as pdfium
import pytest

from tripguard.core.pdf import RENDERING
from tripguard.core.processes import ProcessPool, RendererRestarted
from tripguard.delivery import label_render

pytestmark = pytest.mark.no_database


def _text(n: int) -> label_render.LabelText:
    return label_render.LabelText(order_id=f"O{n}", pickup_code=f"{n:04d}", qr=f"TG1:O{n}:{n:04d}", name="王**",
                                  phone_tail=f"{n:04d}", address=f"北京市朝阳区建国路{n}号****",
                                  items=("宫保鸡丁 × 1", "米饭 × 2"))


def _words(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return str(document[0].get_textpage().get_text_range())
    finally:
        document.close()


def test_labels_rendered_in_parallel_in_the_pool_say_what_the_in_process_render_says() -> None:
    pool = ProcessPool(2, initializer=label_render.warm)

    async def many() -> list[bytes]:
        return list(await asyncio.gather(*(pool.run(label_render.render, _text(n), "pdf") for n in range(12)),
                                         pool.run(label_render.render, _text(99), "png")))

    try:
        rendered = asyncio.run(many())
    finally:
        pool.close()
    for n, pdf in enumerate(rendered[:12]):
        with RENDERING:
            here = label_render.render(_text(n), "pdf")
        assert pdf.startswith(b"%PDF") and _words(pdf) == _words(here)
        assert f"O{n}" in _words(pdf) and "王**" in _words(pdf) and f"建国路{n}号****" in _words(pdf)
    assert rendered[12].startswith(b"\x89PNG")


def test_a_killed_worker_answers_503_at_once_and_the_pool_starts_anew() -> None:
    pool = ProcessPool(1)

    async def crash() -> None:
        worker = await pool.run(os.getpid)
        held = asyncio.ensure_future(pool.run(time.sleep, 30))  # a render under way when its worker dies
        await asyncio.sleep(0.5)
        os.kill(worker, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(RendererRestarted):
            await held
        assert time.monotonic() - started < 10  # answered, not left hanging
        assert await pool.run(os.getpid) != worker  # a new worker renders the next one

    try:
        asyncio.run(crash())
    finally:
        pool.close()
    assert pool.restarts == 1
