"""Credentials and targets for the load clients; run by bench.run in a subprocess with the
scratch environment (`python -m bench.prepare --sessions 16`). Prints one JSON object.

UI sessions are made the way conftest's `staff_client` makes them, without a browser: a session
row holding the user's auth keys and the id of their confirmed TOTP device, so the server sees a
user who passed password and second factor; 2FA stays required on the server. The API uses a
bearer token from `token_create`, the same service as `ketaclinic create-token`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--username", default="prescriber")
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    import django

    django.setup()

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils.module_loading import import_string
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_scopes import scopes_disabled

    from ketaclinic.accounts.models import EncryptedTOTPDevice, Membership, User
    from ketaclinic.accounts.services import token_create
    from ketaclinic.patients.models import Patient

    user = User.objects.get(username=options.username)
    device = EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        sys.exit(f"{options.username} has no confirmed TOTP device")
    store = import_string(settings.SESSION_ENGINE + ".SessionStore")
    sessions = []
    for _ in range(options.sessions):
        session = store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        sessions.append(session.session_key)
    _, secret = token_create(username=options.username, days=1, name="bench")

    rng = random.Random(options.seed)
    with scopes_disabled():
        membership = Membership.objects.get(user=user, is_active=True)
        patients = Patient.objects.filter(organization=membership.organization, is_active=True)
        ids = list(patients.values_list("id", flat=True))
        chosen = rng.sample(ids, k=min(options.patients, len(ids)))
        people = list(
            patients.filter(id__in=chosen).values_list("public_id", "given_name", "family_name")
        )
    rng.shuffle(people)
    # A family name (about 1 in 30 patients match), a three-letter fragment, or a full name.
    terms = [rng.choice([f, f[:3], f"{g} {f}"]) for _, g, f in people[:500]]
    json.dump(
        {
            "username": options.username,
            "session_cookie": settings.SESSION_COOKIE_NAME,
            "sessions": sessions,
            "token": secret,
            "patients": [str(public_id) for public_id, _, _ in people],
            "search_terms": terms,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
