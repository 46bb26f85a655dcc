"""Reading PDFs in tests with PDFium (pypdfium2): the text a reader sees and a rendered first page,
without any system package."""

from __future__ import annotations

import io

import pypdfium2


def pdf_text(content: bytes) -> str:
    """The text of every page, pages separated by a form feed, line ends as newlines."""
    document = pypdfium2.PdfDocument(content)
    try:
        pages = [page.get_textpage().get_text_bounded() for page in document]
    finally:
        document.close()
    return "\f".join(pages).replace("\r\n", "\n")


def first_page_png(content: bytes, dpi: int = 80) -> bytes:
    """The first page rendered as a PNG, so a test can tell a real page from an empty document."""
    document = pypdfium2.PdfDocument(content)
    try:
        image = document[0].render(scale=dpi / 72).to_pil()
    finally:
        document.close()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
