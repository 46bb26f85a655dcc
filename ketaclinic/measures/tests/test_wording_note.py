"""Issue 15: where a scale's wording is not reproduced (its licence is unconfirmed), the form tells
the rater why in plain words, and keeps the licence note for audit in a disclosure."""

from __future__ import annotations

import re

import pytest

from conftest import make_patient, staff_client
from ketaclinic.measures.definitions import get_instrument

DETAILS = re.compile(r"<details.*?</details>", re.S)


def test_which_instruments_withhold_their_wording() -> None:
    assert get_instrument("cadss").wording_withheld == "numbers"
    assert get_instrument("madrs").wording_withheld == "labels"
    assert get_instrument("phq9").wording_withheld == ""
    assert get_instrument("pcl5").wording_withheld == ""
    assert "[U]" not in get_instrument("cadss").recall_period_plain


@pytest.mark.django_db
def test_the_cadss_form_says_plainly_why_its_items_are_numbered(members, prescriber) -> None:
    patient = make_patient(prescriber)
    client = staff_client(members["prescriber"])
    html = client.get(f"/measures/patients/{patient.public_id}/new/?instrument=cadss").content
    page = html.decode()
    shown = DETAILS.sub("", page)
    assert "Why the items are numbered:" in shown
    assert "licence terms are not known" in shown
    assert "CADSS item 23" in shown  # the numbers, and no invented wording
    for code in ("[U]", "§", "clinical-reference"):
        assert code not in shown, code
    assert "Licensing unconfirmed" in page  # kept for audit, inside the disclosure
    madrs = client.get(f"/measures/patients/{patient.public_id}/new/?instrument=madrs")
    assert "Why only short labels:" in madrs.content.decode()
    phq9 = client.get(f"/measures/patients/{patient.public_id}/new/?instrument=phq9")
    assert 'id="wording-note"' not in phq9.content.decode()
