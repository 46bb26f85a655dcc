"""The business-day calendar that the DEA Form 106 deadline counts in.

`records.form_106_deadline` is pure and takes the holidays as an argument; this module supplies
them. DEA is a federal agency, so a business day is read as a weekday that is not a US federal
holiday, on its observed date (a holiday falling on a Saturday is observed the Friday before, one
on a Sunday the Monday after, as federal offices close). A clinic's state holidays do not move a
federal deadline. The day of discovery itself is read in the clinic's own time zone by the caller.

The dates come from the `holidays` package (pinned in pyproject.toml), not from a table kept here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import holidays as holiday_data

# clinical-reference §6 [S] #134, #135: Form 106 within one business day of discovery; the
# federal calendar is the one the DEA keeps.
FORM_106_CALENDAR = "US federal holidays (observed), holidays package"


def us_federal_holidays(years: Iterable[int]) -> frozenset[date]:
    """Every US federal holiday, actual and observed dates, in `years`."""
    calendar = holiday_data.country_holidays("US", years=sorted(set(years)), observed=True)
    return frozenset(calendar.keys())


def form_106_holidays(discovered_on: date) -> frozenset[date]:
    """The holidays a Form 106 deadline counted from `discovered_on` can meet (this year and the
    next, for a discovery in late December)."""
    return us_federal_holidays((discovered_on.year, discovered_on.year + 1))
