from django.urls import path

from ketaclinic.outcomes import views

app_name = "outcomes"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("exports/", views.exports, name="exports"),
    path("exports/<uuid:export_id>/", views.export_detail, name="export"),
    path("exports/<uuid:export_id>/files/<str:name>", views.export_file, name="export-file"),
    path("exports/fhir/<uuid:export_id>/", views.bulk_export_detail, name="bulk-export"),
    path(
        "exports/fhir/<uuid:export_id>/files/<str:name>",
        views.bulk_export_file,
        name="bulk-export-file",
    ),
    path("reports/", views.reports, name="reports"),
    path("reports/<uuid:report_id>/", views.report_detail, name="report"),
    path("reports/<uuid:report_id>/pdf", views.report_file, name="report-file"),
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
