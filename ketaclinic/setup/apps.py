from django.apps import AppConfig


class SetupConfig(AppConfig):
    name = "ketaclinic.setup"
    label = "clinic_setup"
    verbose_name = "Clinic set-up"
