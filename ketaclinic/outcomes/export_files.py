"""The files of a data export: where they are kept, and the one way a file is handed out.

Research exports and FHIR bulk exports are served from four routes (the staff screens, the JSON
API and the FHIR API). Each opens its file here, so none of them can hand out a file from an
export that has not finished or does not list it, and every download is in the audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from ketaclinic.accounts.actor import Actor
from ketaclinic.accounts.audit import audit_record
from ketaclinic.core.errors import NotFound
from ketaclinic.outcomes.models import DataExport


def files_deleted_message(what: str) -> str:
    """Why a finished export's or report's file is not there any more, and what to do."""
    hours = settings.GENERATED_FILES_KEEP_HOURS
    files = "PDF was" if what == "report" else "files were"
    return (
        f"This {what}'s {files} deleted {hours} hours after it finished (the clinic's keep"
        f" period for generated files); request a new {what}."
    )


def exports_root() -> Path:
    """Where every export keeps its files, one folder per export named by its public id."""
    return Path(settings.VAR_DIR) / "exports"


def export_directory(export: DataExport) -> Path:
    return exports_root() / str(export.public_id)


def open_export_file(actor: Actor, export: DataExport, name: str, *, action: str) -> BinaryIO:
    """`name` of a finished export, opened for reading, with the download audited as `action`.
    The export must already be one the actor may see (the selectors check that)."""
    if name not in {f["name"] for f in export.files}:
        raise NotFound("No such file in this export.")
    if export.status == DataExport.Status.EXPIRED:
        raise NotFound(files_deleted_message("export"))
    if export.status != DataExport.Status.DONE:
        raise NotFound("No such file in this export.")
    audit_record(actor=actor, action=action, obj=export, detail={"file": name})
    return (export_directory(export) / name).open("rb")
