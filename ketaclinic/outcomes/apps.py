from django.apps import AppConfig


class OutcomesConfig(AppConfig):
    name = "ketaclinic.outcomes"
    label = "outcomes"
    verbose_name = "Outcomes"
