from django.apps import AppConfig


class HomesConfig(AppConfig):
    name = "ketaclinic.homes"
    label = "homes"
    verbose_name = "Role homes"
