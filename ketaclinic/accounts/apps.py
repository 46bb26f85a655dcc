from datetime import timedelta

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "ketaclinic.accounts"
    label = "accounts"
    verbose_name = "Organizations, users and audit"

    def ready(self) -> None:
        from ketaclinic.accounts import audit, identity_cache
        from ketaclinic.core.periodic import PeriodicJob, register

        # Every worker round (5 s by default): the window in which an appended audit row has no
        # tamper evidence yet (docs/ARCHITECTURE.md, "Audit trail").
        register(PeriodicJob("accounts.audit.seal", timedelta(seconds=5), audit.audit_seal))
        identity_cache.connect_invalidation()
