from typing import Any

from django.conf import settings
from django.http import HttpRequest

from ketaclinic.accounts.roles import capabilities_of


def membership(request: HttpRequest) -> dict[str, Any]:
    actor = getattr(request, "actor", None)
    return {
        "actor": actor,
        "caps": {str(c) for c in capabilities_of(actor.role)} if actor else set(),
        "idle_minutes": settings.SESSION_IDLE_MINUTES,
    }
