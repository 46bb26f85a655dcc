from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "ketaclinic.fhir"
    label = "fhir"
    verbose_name = "FHIR R4 adapter"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from ketaclinic.fhir.text_search import register_sqlite

        connection_created.connect(register_sqlite, dispatch_uid="ketaclinic.fhir.fold")

        from ketaclinic.fhir import screen_versions

        screen_versions.register()
