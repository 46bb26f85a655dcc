from django.urls import path, re_path

from ketaclinic.fhir import views

app_name = "fhir"

urlpatterns = [
    path("", views.root, name="root"),
    path("metadata", views.metadata, name="metadata"),
    path("Patient/<str:resource_id>/$everything", views.patient_everything, name="everything"),
    re_path(r"^(?P<resource_type>[A-Z][A-Za-z]+)$", views.type_level, name="type"),
    re_path(
        r"^(?P<resource_type>[A-Z][A-Za-z]+)/(?P<resource_id>[A-Za-z0-9\-.]{1,64})$",
        views.instance_level,
        name="instance",
    ),
    re_path(r"^(?P<rest>.*)$", views.unknown),
]
