from ketaclinic.messaging.tests.servers import sms_endpoint, smtp_inbox  # noqa: F401
