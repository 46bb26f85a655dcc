"""The patient's progress report: the same body on screen and as a PDF (drawn by the worker, its
trajectory picture checked on the rendered page in test_report_jobs), doses as clinicians write
them, and who may print it."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from conftest import staff_client
from ketaclinic.outcomes.report import dose_text

pytestmark = pytest.mark.django_db
SESSION_BLUE = (0x0B, 0x5C, 0xAD)  # the trajectory's dashed session markers (measures/charts.py)


def url(patient, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/outcomes/patients/{patient.public_id}/progress-report/?{query}"


def near(pixels, colour, tolerance=40):
    """How many pixels are within `tolerance` of `colour` on every channel."""
    return int((np.abs(pixels - np.array(colour)) <= tolerance).all(axis=-1).sum())


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
