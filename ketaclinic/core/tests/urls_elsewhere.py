"""A second URLconf for tests/test_request_signals.py: the health check under another path."""

from django.urls import path

from ketaclinic.core.views import healthz

urlpatterns = [path("elsewhere/healthz", healthz, name="healthz")]
