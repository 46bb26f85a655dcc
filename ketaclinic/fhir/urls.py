from django.urls import path, re_path

from ketaclinic.fhir import bulk_export, views

app_name = "fhir"

urlpatterns = [
    path("", views.root, name="root"),
    path("metadata", views.metadata, name="metadata"),
    path("Patient/<str:resource_id>/$everything", views.patient_everything, name="everything"),
    # FHIR Bulk Data $export (ketaclinic/fhir/bulk_export.py)
    path("$export", bulk_export.system_export, name="bulk-export"),
    path("Patient/$export", bulk_export.patient_export, name="bulk-export-patient"),
    path("Group/<str:group_id>/$export", bulk_export.group_export, name="bulk-export-group"),
    path("$export-status/<uuid:export_id>", bulk_export.export_status, name="bulk-status"),
    path("$export-file/<uuid:export_id>/<str:name>", bulk_export.export_file, name="bulk-file"),
    re_path(r"^(?P<resource_type>[A-Z][A-Za-z]+)$", views.type_level, name="type"),
    re_path(
        r"^(?P<resource_type>[A-Z][A-Za-z]+)/(?P<resource_id>[A-Za-z0-9\-.]{1,64})$",
        views.instance_level,
        name="instance",
    ),
    re_path(r"^(?P<rest>.*)$", views.unknown),
]
