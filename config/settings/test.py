"""Test settings: the production rules (2FA, lockout, idle timeout) stay on; only speed changes."""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES

# Fast hashing: argon2 is deliberately slow and tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Every emitted FHIR resource is validated against its R4B model (production skips this).
FHIR_VALIDATE_OUTGOING = True
# Every received resource the fast validator accepted is validated by its R4B model too.
FHIR_CHECK_FAST_INPUT = True
# Every search run from a cached SQL shape is checked against the ORM's own query (core.shapes).
SQL_SHAPES_CHECKED = True
# A test that outlasts the production 30 s would pay the token's lookup again at an arbitrary
# request, and its query pin (tests/query_pins.py) would see it; the identity cache's own tests
# set a short time themselves.
IDENTITY_CACHE_SECONDS = 300
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

if DATABASES["default"]["ENGINE"].endswith("sqlite3") and not os.environ.get("DATABASE_URL"):
    # A file database (not :memory:) so live-server and browser tests share it with the test;
    # one per process so that two test runs on one machine never share (or delete) a database.
    import tempfile

    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"ketaclinic-test-{os.getpid()}.sqlite3")
    }

# SMART/OAuth tests talk to http://testserver: authlib refuses plain HTTP unless told otherwise.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
