from django.urls import path

from ketaclinic.screening import views

app_name = "screening"

urlpatterns = [
    path("patients/<uuid:patient_id>/", views.screening_page, name="page"),
    path("patients/<uuid:patient_id>/intake/", views.intake_edit, name="intake"),
    path("patients/<uuid:patient_id>/evaluate/", views.evaluate, name="evaluate"),
    path(
        "patients/<uuid:patient_id>/eligibility-check/",
        views.eligibility_check,
        name="eligibility-check",
    ),
    path("decisions/<uuid:decision_id>/decide/", views.decide, name="decide"),
    path("policy/", views.policy_page, name="policy"),
    path("policy/edit/", views.policy_edit, name="policy-edit"),
]
