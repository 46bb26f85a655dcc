"""`ketaclinic ledger-verify` recomputes the hash chain, the running balances and each
container's contents, and names the first bad row."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_scopes import scope

from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container, LedgerRow
from ketaclinic.sessions.tests.builders import recorded_administration

pytestmark = pytest.mark.django_db


@pytest.fixture
def drawn(org_a, nurse, stock, patient):
    with scope(organization=org_a):
        vial = Container.objects.filter(lot=stock["lot"]).order_by("label").first()
        for mg in ("35", "40"):
            services.inventory_draw_for_administration(
                actor=nurse,
                container=vial,
                quantity_mg=mg,
                administration_public_id=recorded_administration(nurse, patient),
                patient=patient,
            )
        return list(LedgerRow.objects.order_by("sequence"))


def test_an_untouched_ledger_verifies(drawn, capsys):
    call_command("ledger_verify")
    assert "OK: 3 ledger rows in 1 chain(s)" in capsys.readouterr().out


def test_a_row_altered_with_raw_sql_is_caught_and_named(drawn, capsys):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE inventory_ledgerrow SET quantity_mg = 3.5 WHERE id = %s", [drawn[1].pk]
        )
    with pytest.raises(CommandError):
        call_command("ledger_verify")
    err = capsys.readouterr().err
    assert f"sequence 2 (id {drawn[1].public_id})" in err
    assert "does not match its hash" in err


def test_a_container_altered_behind_the_ledger_is_caught(drawn, capsys):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_container SET remaining_mg = 500")
    with pytest.raises(CommandError):
        call_command("ledger_verify")
    assert "shows 500" in capsys.readouterr().err
