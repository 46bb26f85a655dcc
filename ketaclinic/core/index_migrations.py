"""A migration step that drops the index Django made for a field's `db_index`, in place.

Setting `db_index=False` with a plain AlterField makes Django's SQLite backend copy the whole
table (create, copy every row, drop, rename) once per field: for a clinic's years of vital signs,
minutes of a locked database on upgrade, for what is one `DROP INDEX`. So the migration changes
the field's state with AlterField and does the database part here: drop the index under the
name Django gave it (and PostgreSQL's `_like` twin of a text column's), and make it again on
reversal.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _names(schema_editor: Any, table: str, column: str) -> tuple[str, str]:
    # The name schema_editor gave the index when the field was created: the same function, the
    # same table and column, so the same name on every backend.
    name = schema_editor._create_index_name(table, [column], suffix="")
    return name, f"{name}_like"


def drop_field_indexes(app_label: str, fields: dict[str, tuple[str, ...]]) -> migrations.RunPython:
    """The database half of turning `db_index` off for `fields` ({model name: field names})."""

    def columns(apps: Any) -> list[tuple[str, str, bool]]:
        out = []
        for model_name, names in fields.items():
            model = apps.get_model(app_label, model_name)
            for name in names:
                field = model._meta.get_field(name)
                text = field.get_internal_type() in ("CharField", "TextField")
                out.append((model._meta.db_table, field.column, text))
        return out

    def forward(apps: Any, schema_editor: Any) -> None:
        quote = schema_editor.quote_name
        for table, column, text in columns(apps):
            name, like = _names(schema_editor, table, column)
            for each in (name, like) if text else (name,):
                schema_editor.execute(f"DROP INDEX IF EXISTS {quote(each)}")

    def backward(apps: Any, schema_editor: Any) -> None:
        quote = schema_editor.quote_name
        postgres = schema_editor.connection.vendor == "postgresql"
        for table, column, text in columns(apps):
            name, like = _names(schema_editor, table, column)
            schema_editor.execute(f"CREATE INDEX {quote(name)} ON {quote(table)} ({quote(column)})")
            if postgres and text:
                schema_editor.execute(
                    f"CREATE INDEX {quote(like)} ON {quote(table)}"
                    f" ({quote(column)} varchar_pattern_ops)"
                )

    return migrations.RunPython(forward, backward)
