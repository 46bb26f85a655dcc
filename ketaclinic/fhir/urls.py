from django.urls import path, re_path

from ketaclinic.fhir import bulk_export, views
from ketaclinic.fhir.smart import views as smart_views

app_name = "fhir"

urlpatterns = [
    path("", views.root, name="root"),
    path("metadata", views.metadata, name="metadata"),
    path(
        ".well-known/smart-configuration",
        smart_views.smart_configuration,
        name="smart-configuration",
    ),
    path("Patient/<str:resource_id>/$everything", views.patient_everything, name="everything"),
    # FHIR Bulk Data $export (ketaclinic/fhir/bulk_export.py)
    path("$export", bulk_export.system_export, name="bulk-export"),
    path("Patient/$export", bulk_export.patient_export, name="bulk-export-patient"),
    path("Group/<str:group_id>/$export", bulk_export.group_export, name="bulk-export-group"),
    path("$export-status/<uuid:export_id>", bulk_export.export_status, name="bulk-status"),
    path("$export-file/<uuid:export_id>/<str:name>", bulk_export.export_file, name="bulk-file"),
    path("_history", views.system_history, name="history-system"),
    re_path(r"^(?P<resource_type>[A-Z][A-Za-z]+)$", views.type_level, name="type"),
    re_path(
        r"^(?P<resource_type>[A-Z][A-Za-z]+)/_history$", views.type_history, name="history-type"
    ),
    re_path(r"^(?P<resource_type>[A-Z][A-Za-z]+)/_search$", views.search_post, name="search-post"),
    re_path(
        r"^(?P<resource_type>[A-Z][A-Za-z]+)/(?P<resource_id>[A-Za-z0-9\-.]{1,64})/_history$",
        views.instance_history,
        name="history-instance",
    ),
    re_path(
        r"^(?P<resource_type>[A-Z][A-Za-z]+)/(?P<resource_id>[A-Za-z0-9\-.]{1,64})/_history/"
        r"(?P<vid>[A-Za-z0-9\-.]{1,64})$",
        views.vread,
        name="vread",
    ),
    re_path(
        r"^(?P<resource_type>[A-Z][A-Za-z]+)/(?P<resource_id>[A-Za-z0-9\-.]{1,64})$",
        views.instance_level,
        name="instance",
    ),
    re_path(r"^(?P<rest>.*)$", views.unknown),
]
