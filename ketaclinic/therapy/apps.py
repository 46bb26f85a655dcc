from django.apps import AppConfig


class TherapyConfig(AppConfig):
    name = "ketaclinic.therapy"
    label = "therapy"
    verbose_name = "Ketamine-assisted psychotherapy"
