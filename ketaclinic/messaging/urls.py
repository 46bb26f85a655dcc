from django.urls import path

from ketaclinic.messaging import views

app_name = "messaging"

urlpatterns = [
    path("patients/<uuid:patient_id>/contact/", views.contact_set, name="contact-set"),
    path("policy/", views.policy_edit, name="policy"),
]
