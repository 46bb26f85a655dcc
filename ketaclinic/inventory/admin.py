"""The ledger is visible to the clinic admin and never changed or deleted here."""

from django.contrib import admin

from ketaclinic.core.admin_base import ReadOnlyTenantAdmin
from ketaclinic.inventory.models import LedgerRow, Product, StorageLocation


@admin.register(LedgerRow)
class LedgerRowAdmin(ReadOnlyTenantAdmin):
    list_display = ("sequence", "kind", "occurred_at", "product_ref", "lot_ref", "quantity_mg")
    list_filter = ("kind",)


@admin.register(Product)
class ProductAdmin(ReadOnlyTenantAdmin):
    list_display = ("display_name", "code", "ndc")


@admin.register(StorageLocation)
class StorageLocationAdmin(ReadOnlyTenantAdmin):
    list_display = ("name", "clinic", "kind")
