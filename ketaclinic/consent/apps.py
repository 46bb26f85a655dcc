from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "ketaclinic.consent"
    label = "consent"
    verbose_name = "Consent"
