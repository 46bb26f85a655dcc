"""String search the way FHIR clients expect it: case- and accent-insensitive ("Jose" finds
"José"), starts-with by default, `:contains` anywhere, `:exact` as stored.

The database folds the column with `Fold`: a registered function on SQLite (the same Python
`fold` as the value), `translate(lower(...))` over the Latin letters on PostgreSQL.
"""

from __future__ import annotations

import unicodedata
from typing import Any, TypeVar

from django.db.models import CharField, Func, Q, QuerySet

QS = TypeVar("QS", bound=QuerySet[Any])

_ACCENTED = (
    "àáâãäåāăąçćĉċčďđèéêëēĕėęěĝğġģĥħìíîïĩīĭįıĵķĺļľŀłñńņňòóôõöøōŏőŕŗřśŝşšţťŧùúûüũūŭůűųŵýÿŷźżž"
)
_NO_DECOMPOSITION = {"đ": "d", "ħ": "h", "ı": "i", "ŀ": "l", "ł": "l", "ø": "o", "ŧ": "t"}
_PLAIN = "".join(_NO_DECOMPOSITION.get(c) or unicodedata.normalize("NFKD", c)[0] for c in _ACCENTED)
_TABLE = str.maketrans(_ACCENTED, _PLAIN)
# PostgreSQL's lower() leaves non-ASCII letters alone under the C locale: translate both cases.
_UPPER = [(c.upper(), p) for c, p in zip(_ACCENTED, _PLAIN, strict=True) if len(c.upper()) == 1]
_PG_FROM = _ACCENTED + "".join(u for u, _ in _UPPER if u not in _ACCENTED)
_PG_TO = _PLAIN + "".join(p for u, p in _UPPER if u not in _ACCENTED)


def fold(text: str) -> str:
    """Lower case without accents: 'Ŝkłodowska' -> 'skłodowska' -> 'sklodowska'."""
    return unicodedata.normalize("NFC", text or "").lower().translate(_TABLE)


def _fold_sqlite(text: Any) -> Any:
    return fold(text) if isinstance(text, str) else text


class Fold(Func):
    function = "kc_fold"
    output_field = CharField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = f"translate(lower(%(expressions)s), '{_PG_FROM}', '{_PG_TO}')"
        return self.as_sql(compiler, connection, template=template, **extra)


def register_sqlite(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created: give SQLite the fold function (deterministic, so indexes may use it)."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("kc_fold", 1, _fold_sqlite, deterministic=True)


def string_filter(queryset: QS, fields: tuple[str, ...], values: list[str], modifier: str) -> QS:
    """Rows where any of `fields` matches any value (OR), by the FHIR string modifier."""
    if modifier == "exact":
        q = Q(pk__in=[])
        for value in values:
            for name in fields:
                q |= Q(**{name: value})
        return queryset.filter(q)
    lookup = "contains" if modifier == "contains" else "startswith"
    annotations = {f"_fold_{name}": Fold(name) for name in fields}
    q = Q(pk__in=[])
    for value in values:
        for name in fields:
            q |= Q(**{f"_fold_{name}__{lookup}": fold(value)})
    return queryset.annotate(**annotations).filter(q)
