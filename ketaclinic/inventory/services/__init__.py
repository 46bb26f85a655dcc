"""Writes to the controlled-substance ledger, one module per workflow. Each service is one transaction that

1. locks the organization's ledger chain head (`_locked_head`): on PostgreSQL a
   SELECT ... FOR UPDATE, on SQLite the IMMEDIATE transaction's write lock. Two nurses drawing
   from one vial therefore run one after the other, and the second sees the first's row;
2. loads the `BalanceState` of just the stock key (and dose tally) the entry touches, from the
   stored running balances;
3. lets the pure ledger (`ledger.record_entry`) check every hard stop and build the chained row;
4. stores the row, advances the chain head and writes one audit event.

A `LedgerRuleViolation` becomes a SafetyStop (422) or a Conflict (409) naming the field.
"""

from ketaclinic.inventory.services._common import (
    dose_tally,
    location_create,
    location_set_active,
    product_register,
    require_active_location,
)
from ketaclinic.inventory.services.administration import (
    inventory_draw_for_administration,
    stock_return,
    stock_waste,
)
from ketaclinic.inventory.services.catalog import (
    PRODUCT_FORMS,
    product_define,
    product_set_active,
)
from ketaclinic.inventory.services.counts import (
    case_resolve,
    count_record,
)
from ketaclinic.inventory.services.disposal import (
    DISPOSALS,
    dea_form_mark_filed,
    stock_adjust,
    stock_destroy,
    stock_loss_report,
)
from ketaclinic.inventory.services.receipts import (
    stock_receive,
    stock_transfer,
)

__all__ = [
    "DISPOSALS",
    "PRODUCT_FORMS",
    "case_resolve",
    "count_record",
    "dea_form_mark_filed",
    "dose_tally",
    "inventory_draw_for_administration",
    "location_create",
    "location_set_active",
    "require_active_location",
    "product_define",
    "product_register",
    "product_set_active",
    "stock_adjust",
    "stock_destroy",
    "stock_loss_report",
    "stock_receive",
    "stock_return",
    "stock_transfer",
    "stock_waste",
]
