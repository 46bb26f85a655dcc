from django.urls import path

from ketaclinic.setup import views

app_name = "setup"

urlpatterns = [
    path("", views.index, name="index"),
    path("clinics/", views.clinics, name="clinics"),
    path("clinics/new/", views.clinic_add, name="clinic-add"),
    path("clinics/<uuid:clinic_id>/", views.clinic_edit, name="clinic-edit"),
    path("chairs/", views.chairs, name="chairs"),
    path("chairs/new/", views.chair_add, name="chair-add"),
    path("chairs/<uuid:chair_id>/", views.chair_edit, name="chair-edit"),
    path("chairs/<uuid:chair_id>/active/", views.chair_active, name="chair-active"),
    path("products/", views.products, name="products"),
    path("products/new/", views.product_add, name="product-add"),
    path("products/<uuid:product_id>/active/", views.product_active, name="product-active"),
    path("locations/", views.locations, name="locations"),
    path("locations/new/", views.location_add, name="location-add"),
    path("locations/<uuid:location_id>/active/", views.location_active, name="location-active"),
    path("staff/", views.staff, name="staff"),
    path("staff/new/", views.staff_add, name="staff-add"),
    path("staff/<uuid:user_id>/role/", views.staff_role, name="staff-role"),
    path("staff/<uuid:user_id>/deactivate/", views.staff_deactivate, name="staff-deactivate"),
    path(
        "role-changes/<uuid:change_id>/decide/",
        views.role_change_decide,
        name="role-change-decide",
    ),
    path("escalation/", views.escalation, name="escalation"),
    path("patient-portal/", views.patient_pages, name="patient-pages"),
]
