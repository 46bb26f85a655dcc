from django.contrib import admin
from django.urls import include, path

from ketaclinic.accounts.audit_api import router as audit_router
from ketaclinic.accounts.token_api import router as token_router
from ketaclinic.consent.api import router as consent_router
from ketaclinic.core.api import build_api
from ketaclinic.core.views import favicon, healthz
from ketaclinic.homes.api import router as homes_router
from ketaclinic.inventory.api import router as inventory_router
from ketaclinic.measures.api import router as measures_router
from ketaclinic.messaging.api import router as messaging_router
from ketaclinic.outcomes.api import router as outcomes_router
from ketaclinic.outcomes.group_api import router as outcome_groups_router
from ketaclinic.patients.access_api import router as access_router
from ketaclinic.patients.api import router as patients_router
from ketaclinic.protocols.api import router as protocols_router
from ketaclinic.scheduling.api import router as scheduling_router
from ketaclinic.scheduling.public_views import front_door
from ketaclinic.screening.api import router as screening_router
from ketaclinic.sessions.api import router as sessions_router
from ketaclinic.sessions.monitoring_api import router as session_monitoring_router
from ketaclinic.setup.api import router as setup_router
from ketaclinic.therapy.api import router as therapy_router

api = build_api()
api.add_router("/", patients_router)
api.add_router("/", screening_router)
api.add_router("/", measures_router)
api.add_router("/", sessions_router)
api.add_router("/", inventory_router)
api.add_router("/", therapy_router)
api.add_router("/", messaging_router)
api.add_router("/", scheduling_router)
api.add_router("/", outcomes_router)
api.add_router("/", outcome_groups_router)
api.add_router("/", setup_router)
api.add_router("/", consent_router)
api.add_router("/", audit_router)
api.add_router("/", token_router)
api.add_router("/", access_router)
api.add_router("/", protocols_router)
api.add_router("/", session_monitoring_router)
api.add_router("/", homes_router)

urlpatterns = [
    # The bearer-token interfaces first: most requests are theirs, and each URL pattern before
    # them is tried on every request (no other pattern starts with these prefixes).
    path("api/v1/", api.urls),
    path("fhir/r4/", include("ketaclinic.fhir.urls")),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page says; answer with the product's icon.
    path("favicon.ico", favicon, name="favicon"),
    path("accounts/", include("ketaclinic.accounts.urls")),
    # SMART on FHIR authorization server (discovery is at the FHIR base)
    path("oauth/", include("ketaclinic.fhir.smart.urls")),
    path("audit/", include("ketaclinic.accounts.audit_urls")),
    path("patients/", include("ketaclinic.patients.urls")),
    path("measures/", include("ketaclinic.measures.urls")),
    path("portal/", include("ketaclinic.portal.urls")),
    path("screening/", include("ketaclinic.screening.urls")),
    path("consent/", include("ketaclinic.consent.urls")),
    path("sessions/", include("ketaclinic.sessions.urls")),
    path("protocols/", include("ketaclinic.protocols.urls")),
    path("floor/", include("ketaclinic.sessions.floor_urls")),
    path("inventory/", include("ketaclinic.inventory.urls")),
    path("therapy/", include("ketaclinic.therapy.urls")),
    path("messaging/", include("ketaclinic.messaging.urls")),
    path("calendar/", include("ketaclinic.scheduling.urls")),
    path("c/<uuid:clinic_id>/", front_door, name="front-door"),
    path("outcomes/", include("ketaclinic.outcomes.urls")),
    path("setup/", include("ketaclinic.setup.urls")),
    path("admin/", admin.site.urls),
    path("", include("ketaclinic.core.urls")),
]
