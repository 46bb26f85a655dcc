"""The patient's progress report: the same body on screen and as a PDF, the trajectory picture
checked on the rendered PDF page (PDFium), doses as clinicians write them, and who may print it."""

from __future__ import annotations

import io
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

from conftest import audit_count, staff_client
from ketaclinic.outcomes.report import dose_text
from tests.pdf import first_page_png, pdf_text

pytestmark = pytest.mark.django_db
SESSION_BLUE = (0x0B, 0x5C, 0xAD)  # the trajectory's dashed session markers (measures/charts.py)


def url(patient, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/outcomes/patients/{patient.public_id}/progress-report/?{query}"


def near(pixels, colour, tolerance=40):
    """How many pixels are within `tolerance` of `colour` on every channel."""
    return int((np.abs(pixels - np.array(colour)) <= tolerance).all(axis=-1).sum())


def test_pdf_shows_the_trajectory_picture_and_the_status(members, treated_cohort) -> None:
    patient = treated_cohort[0]
    client = staff_client(members["prescriber"])
    before = audit_count(action="outcomes.progress_report.read")
    response = client.get(url(patient, audience="clinician", format="pdf"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    assert "Progress report for the referring clinician" in text
    assert "MADRS" in text
    assert "PHQ-9" in text
    assert "Response" in text
    assert "Treatment sessions" in text
    image = Image.open(io.BytesIO(first_page_png(response.content, dpi=100))).convert("RGB")
    pixels = np.asarray(image, dtype=int)
    markers = near(pixels, SESSION_BLUE)
    bands = near(pixels, (0xE6, 0xF4, 0xEA), tolerance=6)
    assert markers > 50, "no session markers drawn on the first page"
    assert bands > 500, "no severity band drawn on the first page"
    assert audit_count(action="outcomes.progress_report.read") == before + 1


def test_screen_and_patient_version_share_the_body(members, treated_cohort) -> None:
    page = staff_client(members["prescriber"]).get(url(treated_cohort[0])).content.decode()
    assert 'class="trajectory"' in page
    assert "Download as PDF" in page
    assert "Version for the referring clinician" in page
    assert "response needs" not in page  # the patient's version has no rule wording
    assert ".0 mg" not in page


@pytest.mark.parametrize("role", ["researcher", "front_desk", "clinic_admin", "nurse"])
def test_roles_without_the_report_are_refused(members, treated_cohort, role) -> None:
    assert staff_client(members[role]).get(url(treated_cohort[0])).status_code == 403


def test_another_clinic_cannot_print_it(outsider, treated_cohort) -> None:
    assert staff_client(outsider).get(url(treated_cohort[0])).status_code == 404


@pytest.mark.parametrize(
    ("dose", "text"),
    [(Decimal("35.0"), "35 mg"), (Decimal("0.5"), "0.5 mg"), (Decimal("100"), "100 mg"),
     (Decimal("56.00"), "56 mg"), (None, "-")],
)  # fmt: skip
def test_doses_read_as_clinicians_write_them(dose, text) -> None:
    assert dose_text(dose) == text


def test_the_chart_links_to_both_versions_for_those_who_may_print_it(
    members, treated_cohort
) -> None:
    patient = treated_cohort[0]
    chart = f"/patients/{patient.public_id}/"
    report = f"/outcomes/patients/{patient.public_id}/progress-report/"
    prescriber_page = staff_client(members["prescriber"]).get(chart).content.decode()
    assert f'href="{report}"' in prescriber_page
    assert f'href="{report}?audience=clinician"' in prescriber_page
    nurse_page = staff_client(members["nurse"]).get(chart).content.decode()
    assert "progress-report" not in nurse_page
