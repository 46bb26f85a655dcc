from django.urls import path

from ketaclinic.protocols import views

app_name = "protocols"

urlpatterns = [
    path("", views.protocol_list, name="list"),
    path("catalog/", views.catalog_seed, name="catalog-seed"),
    path("safety-policy/", views.safety_policy, name="safety-policy"),
    path("safety-policy/edit/", views.safety_policy_edit, name="safety-policy-edit"),
    path("plans/new/<uuid:patient_id>/", views.plan_create, name="plan-create"),
    path("plans/<uuid:plan_id>/phase/", views.plan_phase_change, name="plan-phase"),
    path("plans/<uuid:plan_id>/extend/", views.plan_extend, name="plan-extend"),
    path("plans/<uuid:plan_id>/titrate/", views.plan_titrate, name="plan-titrate"),
    path("<uuid:protocol_id>/", views.protocol_detail, name="detail"),
    path("<uuid:protocol_id>/clone/", views.protocol_clone, name="clone"),
    path("<uuid:protocol_id>/edit/", views.protocol_edit, name="edit"),
    path("<uuid:protocol_id>/publish/", views.protocol_publish, name="publish"),
]
