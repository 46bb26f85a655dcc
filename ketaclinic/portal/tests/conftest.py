from ketaclinic.messaging.tests.servers import smtp_inbox  # noqa: F401
