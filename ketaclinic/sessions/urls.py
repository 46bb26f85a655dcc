from django.urls import path

from ketaclinic.sessions import views

app_name = "sessions"

urlpatterns = [
    path("<uuid:session_id>/", views.session_flowsheet, name="flowsheet"),
    path("<uuid:session_id>/vitals/", views.vitals_add, name="vitals-add"),
    path("<uuid:session_id>/adverse-events/", views.adverse_event_add, name="ae-add"),
    path("<uuid:session_id>/discharge-check/", views.discharge_check, name="discharge-check"),
    path("<uuid:session_id>/check-in/", views.check_in, name="check-in"),
    path("<uuid:session_id>/prechecks/", views.precheck, name="precheck"),
    path(
        "<uuid:session_id>/frequency-override/",
        views.frequency_override,
        name="frequency-override",
    ),
    path("<uuid:session_id>/dose-order/", views.dose_order, name="dose-order"),
    path("<uuid:session_id>/dose-preview/", views.dose_preview, name="dose-preview"),
    path("<uuid:session_id>/administration/", views.administer, name="administer"),
    path("<uuid:session_id>/dose-complete/", views.dose_complete, name="dose-complete"),
    path("<uuid:session_id>/discharge/", views.discharge, name="discharge"),
    path("<uuid:session_id>/note/", views.note_save, name="note-save"),
    path("<uuid:session_id>/note/sign/", views.note_sign, name="note-sign"),
    path("<uuid:session_id>/note/amendments/", views.note_amend, name="note-amend"),
    path(
        "<uuid:session_id>/observations/<slug:kind>/",
        views.observation_add,
        name="observation-add",
    ),
    path("<uuid:session_id>/medications/", views.intervention_add, name="intervention-add"),
    path("<uuid:session_id>/abort/", views.abort, name="abort"),
    path("<uuid:session_id>/rems/answers/", views.pmf_answers, name="pmf-answers"),
    path("<uuid:session_id>/rems/enrollment/", views.rems_enroll, name="rems-enroll"),
    path("<uuid:session_id>/rems/submitted/", views.pmf_submitted, name="pmf-submitted"),
    path("schedule/<uuid:patient_id>/", views.schedule, name="schedule"),
    path("<uuid:session_id>/pmf.csv", views.pmf_csv, name="pmf-csv"),
    path("<uuid:session_id>/pmf.pdf", views.pmf_pdf, name="pmf-pdf"),
]
