from django.urls import path

from ketaclinic.consent import views

app_name = "consent"

urlpatterns = [
    path("templates/", views.template_list, name="templates"),
    path("templates/<uuid:template_id>/", views.template_edit, name="template-edit"),
    path(
        "patients/<uuid:patient_id>/sign/<uuid:version_id>/",
        views.sign_in_clinic,
        name="sign",
    ),
    path("patients/<uuid:patient_id>/portal-invite/", views.portal_invite, name="portal-invite"),
    path("signatures/<uuid:signature_id>/pdf/", views.signature_pdf, name="pdf"),
    path("signatures/<uuid:signature_id>/revoke/", views.revoke, name="revoke"),
]
