from django.contrib import admin

from ketaclinic.core.admin_base import ReadOnlyTenantAdmin
from ketaclinic.patients.models import Allergy, Condition, MedicationStatement, Patient


@admin.register(Patient)
class PatientAdmin(ReadOnlyTenantAdmin):
    list_display = ("family_name", "given_name", "mrn", "birth_date", "is_active")
    search_fields = ("family_name", "given_name", "mrn")


admin.site.register(Condition, ReadOnlyTenantAdmin)
admin.site.register(MedicationStatement, ReadOnlyTenantAdmin)
admin.site.register(Allergy, ReadOnlyTenantAdmin)
