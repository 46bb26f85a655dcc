from django.urls import path

from ketaclinic.measures import views

app_name = "measures"

urlpatterns = [
    path("patients/<uuid:patient_id>/new/", views.response_new, name="response-new"),
    path("patients/<uuid:patient_id>/link/", views.link_new, name="link-new"),
    path("patients/<uuid:patient_id>/schedule/", views.schedule_new, name="schedule-new"),
    path("responses/<uuid:response_id>/", views.response_detail, name="response-detail"),
    path("links/<uuid:link_id>/resend/", views.link_resend, name="link-resend"),
    path("alerts/", views.alerts_panel, name="alerts"),
    path("alerts/<uuid:alert_id>/", views.alert_detail, name="alert-detail"),
]
