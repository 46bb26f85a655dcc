"""FHIR Bulk Data exports on the staff exports log: each has a page with who asked, when, which
_type, _since and level, a progress bar that polls every 2 s, and its files with row counts and
sizes. Who keeps the accounting of disclosures sees them; only a role that may read identified
records in bulk may download the NDJSON."""

from __future__ import annotations

import re

import orjson
import pytest
from django_scopes import scopes_disabled

from conftest import audit_count, staff_client
from ketaclinic.outcomes import services
from ketaclinic.outcomes.models import DataExport

pytestmark = pytest.mark.django_db
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _visible(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S))


def test_compliance_follows_a_bulk_export_to_its_files_and_downloads_one(
    members, bulk, django_assert_max_num_queries
) -> None:
    client = staff_client(members["compliance"])
    page_url = f"/outcomes/exports/fhir/{bulk.public_id}/"
    with django_assert_max_num_queries(8):
        queued = client.get(page_url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in queued
    assert 'hx-trigger="every 2s"' in queued
    assert 'value="0"' in queued
    with scopes_disabled():
        export = DataExport.objects.select_related("organization", "requested_by").get()
    services.data_export_run(export=export)
    with django_assert_max_num_queries(9):
        page = client.get(page_url).content.decode()
    text = _visible(page)
    assert "every 2s" not in page  # done: the bar stops polling
    assert "Patient, Condition" in text
    assert "system" in text
    assert re.search(r"Requested \s*\d{4}-\d{2}-\d{2} \d{2}:\d{2} (CST|CDT)", text), text
    assert re.search(r"2019-12-31 18:00 CST", text), text  # _since, in the clinic's time
    assert not UUID.search(text)
    assert re.search(r"Patient\.ndjson\s*</a>\s*</td>\s*<td>2</td>", page), page
    assert "bytes" in text or "KB" in text
    link = re.search(r'href="(/outcomes/exports/fhir/[^"]+/files/Patient\.ndjson)"', page)
    assert link
    before = audit_count(action="fhir.bulk_export.downloaded")
    download = client.get(link.group(1))
    assert download.status_code == 200
    lines = download.getvalue().splitlines()
    assert [orjson.loads(line)["resourceType"] for line in lines] == ["Patient", "Patient"]
    assert audit_count(action="fhir.bulk_export.downloaded") == before + 1
    with django_assert_max_num_queries(8):
        log = client.get("/outcomes/exports/").content.decode()
    assert f'href="{page_url}"' in log
    assert "New research export" not in log  # compliance does not make research exports


def test_a_clinic_admin_sees_the_export_but_cannot_download_identified_files(members, bulk) -> None:
    with scopes_disabled():
        export = DataExport.objects.select_related("organization", "requested_by").get()
    services.data_export_run(export=export)
    client = staff_client(members["clinic_admin"])
    page = client.get(f"/outcomes/exports/fhir/{bulk.public_id}/").content.decode()
    assert "Patient.ndjson" in page
    assert "/files/" not in page
    assert "only a role that may export them" in page
    response = client.get(f"/outcomes/exports/fhir/{bulk.public_id}/files/Patient.ndjson")
    assert response.status_code == 403
    log = client.get("/outcomes/exports/").content.decode()
    assert f"/outcomes/exports/fhir/{bulk.public_id}/" in log


@pytest.mark.parametrize("role", ["researcher", "prescriber", "nurse"])
def test_roles_outside_the_accounting_do_not_see_identified_exports(members, bulk, role) -> None:
    client = staff_client(members[role])
    assert client.get(f"/outcomes/exports/fhir/{bulk.public_id}/").status_code == 403
    log = client.get("/outcomes/exports/")
    if role == "researcher":  # the researcher's own log lists research exports only
        assert log.status_code == 200
        assert str(bulk.public_id) not in log.content.decode()
    else:
        assert log.status_code == 403


def test_another_clinics_bulk_export_is_not_found(org_b, bulk) -> None:
    from conftest import make_member

    other = make_member(org_b, "compliance", username="compliance-b")
    response = staff_client(other).get(f"/outcomes/exports/fhir/{bulk.public_id}/")
    assert response.status_code == 404
