"""The ledger's services against the database: every hard stop, through the services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django_scopes import scope

from conftest import PASSWORD, actor_for, audit_count, totp_code
from ketaclinic.core.errors import Forbidden, NotFound, SafetyStop, ValidationFailed
from ketaclinic.inventory import selectors, services
from ketaclinic.inventory.models import Container, DiscrepancyCase, LedgerRow
from ketaclinic.inventory.tests.conftest import receive
from ketaclinic.sessions.tests.builders import recorded_administration

pytestmark = pytest.mark.django_db


def first_vial(stock):
    return Container.objects.filter(lot=stock["lot"]).order_by("label").first()


def test_a_receipt_books_every_vial_and_the_running_balance(org_a, stock):
    with scope(organization=org_a):
        row = stock["receipt"]
        assert row.quantity_mg == Decimal("5000.0")
        assert row.quantity_containers == 10
        assert row.balance_after_mg == Decimal("5000.0")
        assert Container.objects.filter(lot=stock["lot"]).count() == 10
        assert row.receipt.supplier_dea_number == "RH0123456"
        assert row.sequence == 1


def test_a_receipt_of_an_already_expired_lot_is_refused(org_a, nurse, stock):
    with scope(organization=org_a), pytest.raises(SafetyStop) as stop:
        receive(
            nurse,
            stock["product"],
            stock["safe"],
            "OLD",
            1,
            expires_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
    assert stop.value.errors[0].field == "lot"


def test_a_receipt_needs_the_supplier_record(org_a, nurse, stock):
    with scope(organization=org_a), pytest.raises(ValidationFailed) as error:
        receive(nurse, stock["product"], stock["safe"], "K2", 1, supplier_dea_number="")
    assert [e.field for e in error.value.errors] == ["supplier_dea_number"]


def test_a_draw_takes_from_the_vial_and_the_lot(org_a, nurse, stock, patient):
    with scope(organization=org_a):
        vial = first_vial(stock)
        row = services.inventory_draw_for_administration(
            actor=nurse,
            container=vial,
            quantity_mg="35",
            administration_public_id=recorded_administration(nurse, patient),
            patient=patient,
        )
        vial.refresh_from_db()
        assert row.balance_after_mg == Decimal("4965.0")
        assert row.quantity_units == Decimal("0.700")
        assert vial.remaining_mg == Decimal("465.0")
        assert vial.status == Container.Status.OPENED
        assert row.patient == patient


def test_a_vial_never_gives_more_than_it_holds(org_a, nurse, stock, patient):
    with scope(organization=org_a):
        vial = first_vial(stock)
        with pytest.raises(SafetyStop) as stop:
            services.inventory_draw_for_administration(
                actor=nurse,
                container=vial,
                quantity_mg="500.1",
                administration_public_id=recorded_administration(nurse, patient),
                patient=patient,
            )
        assert stop.value.errors[0].field == "quantity_mg"
        assert LedgerRow.objects.count() == 1  # nothing written


def test_the_balance_never_goes_negative_after_a_loss(org_a, nurse, stock):
    with scope(organization=org_a), pytest.raises(SafetyStop) as stop:
        services.stock_loss_report(
            actor=nurse,
            kind="loss",
            lot=stock["lot"],
            location=stock["safe"],
            quantity_mg="5000.1",
            reason="count short",
            discovered_at=datetime.now(UTC),
            form_106={},
        )
    assert "never goes below zero" in stop.value.detail


def test_an_expired_lot_cannot_be_drawn(org_a, nurse, stock, patient):
    with scope(organization=org_a):
        row = receive(
            nurse,
            stock["product"],
            stock["safe"],
            "SOON",
            1,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        vial = Container.objects.get(lot=row.lot)
        with (
            time_machine.travel(datetime.now(UTC) + timedelta(days=2)),
            pytest.raises(SafetyStop) as stop,
        ):
            services.inventory_draw_for_administration(
                actor=nurse,
                container=vial,
                quantity_mg="10",
                administration_public_id=recorded_administration(nurse, patient),
                patient=patient,
            )
    assert stop.value.errors[0].field == "lot"
    assert "expired" in stop.value.detail


def test_another_organizations_patient_cannot_be_drawn_for(org_a, nurse, stock, outsider):
    from conftest import make_patient

    stranger = make_patient(actor_for(outsider))
    with scope(organization=org_a), pytest.raises(NotFound):
        services.inventory_draw_for_administration(
            actor=nurse,
            container=first_vial(stock),
            quantity_mg="10",
            administration_public_id=uuid.uuid4(),
            patient=stranger,
        )


def test_front_desk_may_not_draw(org_a, members, stock, patient):
    with scope(organization=org_a), pytest.raises(Forbidden):
        services.inventory_draw_for_administration(
            actor=actor_for(members["front_desk"]),
            container=first_vial(stock),
            quantity_mg="10",
            administration_public_id=uuid.uuid4(),
            patient=patient,
        )


def _drawn(nurse, stock, patient, mg="35"):
    administration = recorded_administration(nurse, patient)
    services.inventory_draw_for_administration(
        actor=nurse,
        container=first_vial(stock),
        quantity_mg=mg,
        administration_public_id=administration,
        patient=patient,
    )
    return administration


def test_waste_with_a_witness_closes_the_administrations_account(
    org_a, nurse, stock, patient, witness
):
    with scope(organization=org_a):
        administration = _drawn(nurse, stock, patient, "40")
        row = services.stock_waste(
            actor=nurse,
            source="drawn_dose",
            administration_public_id=administration,
            quantity_mg="5",
            method="expelled into drug-disposal pouch",
            **witness,
        )
        assert row.witness.username == witness["witness_username"]
        assert row.balance_after_mg == Decimal("4960.0")  # left stock with the draw
        result = selectors.administration_reconciliation(
            administration, administered_mg=Decimal("35")
        )
        assert result.balanced
        assert (result.drawn_mg, result.wasted_mg) == (Decimal("40"), Decimal("5"))


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("nurse", PASSWORD, "different staff member"),
        ("prescriber", "wrong-password", "not accepted"),
        ("front_desk", PASSWORD, "may not act as witness"),
        ("", "", "not accepted"),
    ],
)
def test_waste_without_a_distinct_authenticated_witness_is_refused(
    org_a, members, nurse, stock, patient, username, password, message
):
    with scope(organization=org_a):
        administration = _drawn(nurse, stock, patient)
        denied = audit_count(outcome="denied")
        with pytest.raises(SafetyStop) as stop:
            services.stock_waste(
                actor=nurse,
                source="drawn_dose",
                administration_public_id=administration,
                quantity_mg="5",
                method="pouch",
                witness_username=members[username].user.username if username else "",
                witness_code=totp_code(members[username].user)
                if password == PASSWORD
                else password,
            )
        assert message in stop.value.detail
        assert stop.value.errors[0].field == "witness_username"
        assert audit_count(outcome="denied") == denied + 1
        assert LedgerRow.objects.filter(kind="waste").count() == 0


def test_waste_of_a_drawn_dose_cannot_exceed_what_was_drawn(org_a, nurse, stock, patient, witness):
    with scope(organization=org_a):
        administration = _drawn(nurse, stock, patient, "35")
    with scope(organization=org_a), pytest.raises(SafetyStop) as stop:
        services.stock_waste(
            actor=nurse,
            source="drawn_dose",
            administration_public_id=administration,
            quantity_mg="35.1",
            method="pouch",
            **witness,
        )
    assert stop.value.errors[0].field == "quantity_mg"


def test_the_rest_of_a_vial_is_wasted_and_the_vial_is_empty(org_a, nurse, stock, patient, witness):
    with scope(organization=org_a):
        administration = _drawn(nurse, stock, patient, "35")
        row = services.stock_waste(
            actor=nurse,
            source="container_remainder",
            administration_public_id=administration,
            method="pouch",
            **witness,
        )
        vial = first_vial(stock)
        assert row.quantity_mg == Decimal("465.0")
        assert vial.remaining_mg == 0
        assert vial.status == Container.Status.EMPTY
        assert row.balance_after_mg == Decimal("4500.0")


def test_a_return_puts_the_undrawn_dose_back(org_a, nurse, stock, patient):
    with scope(organization=org_a):
        administration = _drawn(nurse, stock, patient, "50")
        row = services.stock_return(
            actor=nurse, administration_public_id=administration, quantity_mg="10"
        )
        assert row.balance_after_mg == Decimal("4960.0")
        with pytest.raises(SafetyStop):
            services.stock_return(
                actor=nurse, administration_public_id=administration, quantity_mg="40.1"
            )
        result = selectors.administration_reconciliation(administration, administered_mg=40)
        assert result.balanced


def test_a_transfer_moves_a_vial_and_both_balances(org_a, nurse, stock):
    with scope(organization=org_a):
        out_row, in_row = services.stock_transfer(
            actor=nurse, container=first_vial(stock), to_location=stock["cart"]
        )
        assert out_row.balance_after_mg == Decimal("4500.0")
        assert in_row.balance_after_mg == Decimal("500.0")
        assert first_vial(stock).location == stock["cart"]


def test_destruction_records_form_41(org_a, nurse, stock, witness):
    form = {
        "registrant_name": "Clinic A",
        "dea_registration_number": "FA1234563",
        "registered_address": "1 Main St",
        "telephone": "555-0100",
        "contact_name": "Cora",
        "destruction_method": "reverse distributor",
        "destruction_location": "on site",
        "first_witness_name": "Ana",
        "first_witness_signature": "Ana",
        "second_witness_name": "Ben",
        "second_witness_signature": "Ben",
    }
    with scope(organization=org_a):
        row = services.stock_destroy(
            actor=nurse,
            container=first_vial(stock),
            form_41=form,
            document_ref="F41-1",
            **witness,
        )
        assert row.dea_form.data["items"][0]["lot"] == "K1"
        assert row.balance_after_mg == Decimal("4500.0")
        with pytest.raises(ValidationFailed):
            services.stock_destroy(
                actor=nurse,
                container=Container.objects.filter(status="sealed").first(),
                form_41={},
                document_ref="F41-2",
                **witness,
            )


def test_a_loss_sets_the_form_106_deadline_and_shows_on_the_dashboard(org_a, nurse, stock):
    # Friday 15:00 in Chicago: due Monday 15:00.
    discovered = datetime(2026, 3, 6, 21, 0, tzinfo=UTC)
    with scope(organization=org_a):
        _, form = services.stock_loss_report(
            actor=nurse,
            kind="theft",
            lot=stock["lot"],
            location=stock["safe"],
            quantity_mg="500",
            reason="vial missing at count",
            discovered_at=discovered,
            form_106={"registrant_name": "Clinic A"},
        )
        assert form.due_by.astimezone(UTC) == datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
        assert list(selectors.form_106_pending()) == [form]


def test_an_adjustment_needs_a_reason_and_a_compliance_approver(org_a, members, nurse, stock):
    with scope(organization=org_a):
        with pytest.raises(SafetyStop):
            services.stock_adjust(
                actor=nurse,
                lot=stock["lot"],
                location=stock["safe"],
                quantity_mg="-10",
                reason="spill",
                approver_username=members["prescriber"].user.username,
                approver_code=totp_code(members["prescriber"].user),
            )
        row = services.stock_adjust(
            actor=nurse,
            lot=stock["lot"],
            location=stock["safe"],
            quantity_mg="-10",
            reason="keyed wrong",
            approver_username=members["compliance"].user.username,
            approver_code=totp_code(members["compliance"].user),
        )
        assert row.approver_role == "compliance"
        assert row.balance_after_mg == Decimal("4990.0")


def test_ledger_rows_cannot_be_changed_or_deleted(org_a, stock):
    with scope(organization=org_a):
        row = LedgerRow.objects.get()
        with pytest.raises(PermissionError):
            row.save()
        with pytest.raises(PermissionError):
            row.delete()
        with pytest.raises(PermissionError):
            LedgerRow.objects.all().update(quantity_mg=1)
        with pytest.raises(PermissionError):
            LedgerRow.objects.all().delete()


def test_a_count_that_differs_opens_a_case_that_compliance_resolves(
    org_a, nurse, compliance, stock, patient
):
    with scope(organization=org_a):
        _drawn(nurse, stock, patient, "35")
        good = services.count_record(
            actor=nurse,
            location=stock["safe"],
            kind="shift",
            lines=[
                {
                    "product": stock["product"].code,
                    "lot": "K1",
                    "sealed_containers": 9,
                    "opened": [{"remaining_mg": "465", "estimated": True}],
                }
            ],
        )
        assert good.balanced
        short = services.count_record(
            actor=nurse,
            location=stock["safe"],
            kind="daily",
            lines=[
                {
                    "product": stock["product"].code,
                    "lot": "K1",
                    "sealed_containers": 9,
                    "opened": [{"remaining_mg": "440", "estimated": True}],
                }
            ],
        )
        assert not short.balanced
        case = selectors.cases_open().get()
        assert case.counted_mg == Decimal("4940.0")
        with pytest.raises(Forbidden):
            services.case_resolve(actor=nurse, case=case, note="found it")
        services.case_resolve(actor=compliance, case=case, note="syringe count re-done: 465 mg")
        assert not selectors.cases_open().exists()
        assert DiscrepancyCase.objects.get().status == "resolved"
