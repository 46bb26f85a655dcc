from django.urls import path

from ketaclinic.outcomes import views

app_name = "outcomes"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path(
        "patients/<uuid:patient_id>/progress-report/",
        views.progress_report,
        name="progress-report",
    ),
]
