from django.urls import path

from ketaclinic.outcomes import views

app_name = "outcomes"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("exports/", views.exports, name="exports"),
    path("exports/<uuid:export_id>/", views.export_detail, name="export"),
    path("exports/<uuid:export_id>/files/<str:name>", views.export_file, name="export-file"),
    path("summaries/", views.summaries, name="summaries"),
    path("summaries/<uuid:job_id>/", views.summaries_job, name="summaries-job"),
    path(
        "patients/<uuid:patient_id>/progress-report/",
        views.progress_report,
        name="progress-report",
    ),
    path(
        "patients/<uuid:patient_id>/disclosures/",
        views.disclosures,
        name="disclosures",
    ),
]
