from django.urls import path

from ketaclinic.therapy import views, visit_views

app_name = "therapy"

urlpatterns = [
    path("", views.home, name="home"),
    path("patients/<uuid:patient_id>/", views.patient_page, name="patient"),
    path("patients/<uuid:patient_id>/visits/", views.visit_new, name="visit-new"),
    path("patients/<uuid:patient_id>/team/", views.assign, name="assign"),
    path("patients/<uuid:patient_id>/risk-flag/", views.risk_flag, name="risk-flag"),
    path("patients/<uuid:patient_id>/messages/", views.message_new, name="message-new"),
    path("patients/<uuid:patient_id>/measures/", views.measure_plan_new, name="measure-new"),
    path("assignments/<uuid:assignment_id>/end/", views.unassign, name="unassign"),
    path("messages/<uuid:message_id>/read/", views.message_read, name="message-read"),
    path("compliance/break-glass/", views.break_glass_report, name="break-glass-report"),
    path(
        "compliance/break-glass/<uuid:read_id>/review/",
        views.break_glass_review,
        name="break-glass-review",
    ),
    path("visits/<uuid:visit_id>/", visit_views.visit_page, name="visit"),
    path("visits/<uuid:visit_id>/note/", visit_views.note_save, name="note-save"),
    path("visits/<uuid:visit_id>/amend/", visit_views.note_amend, name="note-amend"),
    path("visits/<uuid:visit_id>/process-note/", visit_views.process_note, name="process-note"),
    path("visits/<uuid:visit_id>/break-glass/", visit_views.break_glass, name="break-glass"),
]
