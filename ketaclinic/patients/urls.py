from django.urls import path

from ketaclinic.patients import access_views, views

app_name = "patients"

urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_create, name="create"),
    path("break-glass/", access_views.break_glass_list, name="break-glass-list"),
    path(
        "break-glass/<uuid:access_id>/review/",
        access_views.break_glass_review,
        name="break-glass-review",
    ),
    path("<uuid:patient_id>/break-glass/", access_views.break_glass, name="break-glass"),
    path("<uuid:patient_id>/", views.patient_chart, name="chart"),
    path("<uuid:patient_id>/edit/", views.patient_edit, name="edit"),
    path("<uuid:patient_id>/weights/new/", views.weight_add, name="weight-add"),
    path("<uuid:patient_id>/heights/new/", views.height_add, name="height-add"),
    path("<uuid:patient_id>/blood-pressures/new/", views.blood_pressure_add, name="bp-add"),
    path("<uuid:patient_id>/conditions/new/", views.condition_add, name="condition-add"),
    path("<uuid:patient_id>/medications/new/", views.medication_add, name="medication-add"),
    path("<uuid:patient_id>/allergies/new/", views.allergy_add, name="allergy-add"),
    path(
        "<uuid:patient_id>/weights/<uuid:entry_id>/entered-in-error/",
        views.weight_entered_in_error,
        name="weight-entered-in-error",
    ),
    path(
        "<uuid:patient_id>/heights/<uuid:entry_id>/entered-in-error/",
        views.height_entered_in_error,
        name="height-entered-in-error",
    ),
    path(
        "<uuid:patient_id>/vitals/<uuid:entry_id>/entered-in-error/",
        views.vital_entered_in_error,
        name="vital-entered-in-error",
    ),
    path("<uuid:patient_id>/<slug:section>/", views.patient_chart, name="chart-section"),
]
