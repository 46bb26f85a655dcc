"""A full clinic day, end to end: receive 10 vials, three IV administrations drawn from one vial,
the remainders wasted with a witness, a count at close. Balance, administration log and
reconciliation agree to the milligram; a tampered row is caught; the PDFs carry the DEA fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_scopes import scope

from conftest import staff_client
from ketaclinic.inventory import records, selectors, services
from ketaclinic.inventory.models import Container, LedgerRow
from ketaclinic.sessions.tests.builders import recorded_administration
from tests.pdf import first_page_png, pdf_text

pytestmark = pytest.mark.django_db

# (drawn, wasted from the drawn dose, administered) for the three sessions.
SESSIONS = [("35", "0", "35"), ("40", "2", "38"), ("50", "0", "50")]


def pdf_text_and_png(content: bytes, tmp_path) -> str:
    png = first_page_png(content, dpi=50)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 1000
    text = pdf_text(content)
    (tmp_path / "text.txt").write_text(text)
    return " ".join(text.split())


def test_a_full_day(org_a, members, nurse, stock, patient, witness, tmp_path, capsys):
    with scope(organization=org_a):
        vial = Container.objects.filter(lot=stock["lot"]).order_by("label").first()
        administrations = []
        for drawn, wasted, _given in SESSIONS:
            administration = recorded_administration(nurse, patient)
            administrations.append(administration)
            services.inventory_draw_for_administration(
                actor=nurse,
                container=vial,
                quantity_mg=drawn,
                administration_public_id=administration,
                patient=patient,
            )
            if wasted != "0":
                services.stock_waste(
                    actor=nurse,
                    source="drawn_dose",
                    administration_public_id=administration,
                    quantity_mg=wasted,
                    method="expelled into disposal pouch",
                    **witness,
                )
        services.stock_waste(
            actor=nurse,
            source="container_remainder",
            administration_public_id=administrations[-1],
            method="emptied into disposal pouch",
            **witness,
        )
        vial.refresh_from_db()
        assert vial.remaining_mg == 0

        count = services.count_record(
            actor=nurse,
            location=stock["safe"],
            kind="daily",
            opening_or_close="close",
            lines=[{"product": stock["product"].code, "lot": "K1", "sealed_containers": 9}],
        )
        assert count.balanced

        # The balance: 5,000 received - 125 drawn - 375 remainder wasted = 4,500 = 9 sealed vials.
        balance = selectors.balances_at_location(stock["safe"])
        assert list(balance.values()) == [Decimal("4500.0")]

        # The administration log and the reconciliation agree with what was given.
        log = selectors.administration_log(
            datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
        )
        assert [line.administered_mg for line in log] == [Decimal(g) for _, _, g in SESSIONS]
        for administration, (drawn, wasted, given) in zip(administrations, SESSIONS, strict=True):
            result = selectors.administration_reconciliation(
                administration, administered_mg=Decimal(given)
            )
            assert result.balanced, result
            assert result.drawn_mg == Decimal(drawn)
            assert result.wasted_mg == Decimal(wasted)
        total_drawn = sum(Decimal(d) for d, _, _ in SESSIONS)
        total_given = sum(line.administered_mg for line in log)
        total_wasted = sum(Decimal(w) for _, w, _ in SESSIONS)
        assert total_drawn == total_given + total_wasted == Decimal("125")
        assert Decimal("5000") - total_drawn - Decimal("375") == Decimal("4500")

        biennial = services.count_record(
            actor=nurse,
            location=stock["safe"],
            kind="biennial",
            opening_or_close="close",
            lines=[{"product": stock["product"].code, "lot": "K1", "sealed_containers": 9}],
        )
        rows = list(LedgerRow.objects.order_by("sequence"))

    call_command("ledger_verify")
    assert "OK: 6 ledger rows" in capsys.readouterr().out

    # PDFs: the dispensing/administration log and the biennial inventory.
    client = staff_client(members["compliance"])
    today = datetime.now(UTC).date()
    period = f"start={today - timedelta(days=1)}&end={today + timedelta(days=1)}"
    response = client.get(f"/inventory/reports/administration-log/?{period}&format=pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text_and_png(response.content, tmp_path)
    for label in (
        "Substance",
        "Finished form",
        "Container size",
        "Lot",
        "Quantity administered",
        "Patient name",
        "Patient address",
        "Administered by",
        "Date",
    ):
        assert label in text, label
    assert "ketamine" in text
    assert "hydrochloride" in text
    assert "50 mg/mL" in text
    assert "10 mL vial" in text
    assert "0.76 mL" in text  # 38 mg of 50 mg/mL
    assert "Ada Lovelace" in text
    assert "12 Elm St" in text
    assert nurse.user.username in text

    response = client.get(f"/inventory/reports/inventories/{biennial.public_id}/?format=pdf")
    assert response.status_code == 200
    (tmp_path / "inv").mkdir()
    text = pdf_text_and_png(response.content, tmp_path / "inv")
    for label in (
        "Biennial inventory",
        "Registered location",
        "DEA registration number",
        "Date taken",
        "Close of business",
        "Taken by",
        "Previous inventory",
        "Sealed containers",
        "Opened contents",
        "Opened estimated",
        "Finished form",
        "Container size",
        "Lot",
        "K1",
        "4500",
    ):
        assert label in text, label
    assert set(records.required_field_names(records.ReportKind.BIENNIAL_INVENTORY)) >= {
        "taken_on",
        "taken_by",
        "previous_inventory_on",
    }

    # A tampered row is caught.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE inventory_ledgerrow SET quantity_mg = 30 WHERE id = %s", [rows[1].pk]
        )
    with pytest.raises(CommandError):
        call_command("ledger_verify")
    assert f"sequence 2 (id {rows[1].public_id})" in capsys.readouterr().err
