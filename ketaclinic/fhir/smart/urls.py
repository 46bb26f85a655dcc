from django.urls import path

from ketaclinic.fhir.smart import views

urlpatterns = [
    path("authorize", views.authorize, name="smart-authorize"),
    path("token", views.token, name="smart-token"),
]
