from django.apps import AppConfig


class TreatmentSessionsConfig(AppConfig):
    # "sessions" is django.contrib.sessions' label.
    name = "ketaclinic.sessions"
    label = "treatment_sessions"
    verbose_name = "Treatment sessions"
