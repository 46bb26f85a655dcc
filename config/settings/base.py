"""Settings shared by every environment. Values come from the environment (see README)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from config.settings.database import database_from_url
from config.settings.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    fernet_keys,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(env_str("KETACLINIC_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = secret_key(VAR_DIR)
# Staff authenticator secrets are encrypted with these (ketaclinic/accounts/totp.py).
TOTP_ENCRYPTION_KEYS = fernet_keys("TOTP_ENCRYPTION_KEYS", VAR_DIR)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.forms",  # Django's widget templates for the project's form renderer
    "django_otp",
    # Installed for its verification code and for the migration that moved its (clear-text)
    # secrets into accounts.EncryptedTOTPDevice; its own table stays empty (accounts/totp.py).
    "django_otp.plugins.otp_totp",
    "axes",
    "django_htmx",
    "template_partials",
    "csp",
    "django_tasks",
    "django_tasks_db",
    "ketaclinic.core",
    "ketaclinic.accounts",
    "ketaclinic.patients",
    "ketaclinic.demo",
    "ketaclinic.fhir",
    "ketaclinic.measures",
    "ketaclinic.portal",
    "ketaclinic.screening",
    "ketaclinic.consent",
    "ketaclinic.protocols",
    "ketaclinic.sessions",
    "ketaclinic.inventory",
    "ketaclinic.therapy",
    "ketaclinic.messaging",
    "ketaclinic.scheduling",
    "ketaclinic.outcomes",
    "ketaclinic.setup",
    "ketaclinic.homes",
]

MIDDLEWARE = [
    # /api/ and /fhir/ (bearer tokens only) go down TOKEN_PATH_MIDDLEWARE below instead.
    "ketaclinic.core.routing.TokenPathRouter",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise, so static files stay cacheable; every rendered response is no-store.
    "ketaclinic.core.middleware.NoStoreMiddleware",
    # Django's session, authentication and OTP middleware, with identity cached per process and
    # the idle-timeout renewal written at most once a minute (accounts.middleware).
    "ketaclinic.accounts.middleware.IdleSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "ketaclinic.accounts.middleware.CachedAuthenticationMiddleware",
    "ketaclinic.accounts.middleware.CachedOTPMiddleware",
    "ketaclinic.accounts.middleware.StaffTwoFactorMiddleware",
    "ketaclinic.accounts.middleware.TenantMiddleware",
    # Inside the tenant scope: one audit event for a patient-data request that recorded none.
    "ketaclinic.accounts.phi_audit.PhiAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ketaclinic.core.middleware.StaticPolicyCSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so that a locked-out login is answered before the view runs.
    "axes.middleware.AxesMiddleware",
]
# The chain of the bearer-token interfaces (ketaclinic/core/routing.py): security headers, host
# validation, X-Frame-Options, CSP and no-store in one step (core.middleware.TokenPathMiddleware),
# then the tenant scope and the PHI audit net. Nothing a browser session uses (sessions, session
# auth, OTP, 2FA, messages, htmx, static files), no CSRF (no cookie authenticates there and every
# view is exempt) and no django-axes (no login there): docs/ARCHITECTURE.md, "Two middleware chains".
TOKEN_PATH_MIDDLEWARE = [
    "ketaclinic.core.middleware.TokenPathMiddleware",
    "ketaclinic.accounts.middleware.TenantMiddleware",
    "ketaclinic.accounts.phi_audit.PhiAuditMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ketaclinic.accounts.context_processors.membership",
            ],
            # Numbers and times for people (|mg, |ml, |qty, |plain, |clock, |stamp) everywhere.
            # The design system's severity badge, icons and widget classes (|uswds) too.
            "builtins": [
                "ketaclinic.core.templatetags.clinical_format",
                "ketaclinic.core.templatetags.ui",
            ],
        },
    }
]

# Forms render through one set of U.S. Web Design System templates (templates/forms/).
FORM_RENDERER = "ketaclinic.core.form_renderer.UswdsRenderer"

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", ""), sqlite_path=VAR_DIR / "ketaclinic.sqlite3"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out username/address before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# Staff must prove a second factor (TOTP) before they see any patient. On by default; only the
# demo/dev environment may turn it off, never silently (the login page says so).
KETACLINIC_REQUIRE_2FA = env_bool("KETACLINIC_REQUIRE_2FA", True)
# Shown on the login page when set, so a newcomer to the demo finds the demo accounts.
KETACLINIC_DEMO_HINTS = env_bool("KETACLINIC_DEMO_HINTS", False)
OTP_TOTP_ISSUER = "ketaclinic"

# Idle timeout: the session cookie lives SESSION_IDLE_MINUTES past the last request.
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 15, minimum=1, maximum=24 * 60)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
# A request for a portal sign-in link is answered no sooner than this (milliseconds), so a known
# address (a link is issued and queued) cannot be told from an unknown one by the time the answer
# takes (consent.sign_in_links; about 25 ms against 10 ms of work, load average 7).
PORTAL_SIGN_IN_ANSWER_MS = env_int("PORTAL_SIGN_IN_ANSWER_MS", 400, minimum=0, maximum=5000)
# Renewed by accounts.middleware.IdleSessionMiddleware at most once a minute, not on every request.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Lockout after repeated failures (django-axes), by username and address together so one user
# cannot lock a whole clinic behind a shared NAT.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("LOGIN_LOCKOUT_MINUTES", 30, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/lockout.html"
AXES_VERBOSE = False

# Controlled-substance records are kept at least two years (docs/sources/inventory.md, §6);
# a clinic may keep them longer, never shorter.
KETACLINIC_CS_RETENTION_YEARS = env_int("KETACLINIC_CS_RETENTION_YEARS", 2, minimum=2, maximum=100)

# Backups (ketaclinic backup/restore; README "Backup and restore"). BACKUP_KEY: Fernet key(s),
# comma-separated, the first encrypts. BACKUP_DIR set: the worker writes one every
# BACKUP_EVERY_HOURS and keeps the newest BACKUP_KEEP.
BACKUP_KEY = env_str("BACKUP_KEY", "")
BACKUP_DIR = env_str("BACKUP_DIR", "")
BACKUP_EVERY_HOURS = env_int("BACKUP_EVERY_HOURS", 24, minimum=1, maximum=24 * 31)
# How often the worker refreshes SQLite's planner statistics (ANALYZE; ketaclinic/core/planner.py).
# Validate every outgoing FHIR resource with its fhir.resources model (ketaclinic/fhir/common.py
# emit). On in the test suite; off in production, where it cost about half of a search's CPU.
FHIR_VALIDATE_OUTGOING = env_bool("FHIR_VALIDATE_OUTGOING", False)
# Validate every received resource that fhir.resources' lighter stand-in accepted with the model
# as well, and compare (ketaclinic/fhir/validation.py parse_received). On in the test suite.
FHIR_CHECK_FAST_INPUT = env_bool("FHIR_CHECK_FAST_INPUT", False)
# Queries whose SQL is built once per shape (core.shapes) are also built by the ORM for every
# request and compared (the test settings turn this on).
SQL_SHAPES_CHECKED = env_bool("SQL_SHAPES_CHECKED", False)
PLANNER_STATISTICS_EVERY_HOURS = env_int(
    "PLANNER_STATISTICS_EVERY_HOURS", 6, minimum=1, maximum=24 * 7
)
BACKUP_KEEP = env_int("BACKUP_KEEP", 14, minimum=1, maximum=10_000)
# Report PDFs and export files are deleted this many hours after they were made; their job rows
# stay (ketaclinic/outcomes/file_retention.py; docs/sources/security.md, "Generated files").
GENERATED_FILES_KEEP_HOURS = env_int("GENERATED_FILES_KEEP_HOURS", 72, minimum=1, maximum=24 * 90)

# API tokens always expire: 90 days unless the issuer picks another lifetime, never more than
# API_TOKEN_MAX_DAYS (docs/sources/security.md, "API tokens").
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365, minimum=1, maximum=3650)
API_TOKEN_DEFAULT_DAYS = env_int(
    "API_TOKEN_DEFAULT_DAYS", 90, minimum=1, maximum=API_TOKEN_MAX_DAYS
)
# How long a worker process trusts what it resolved about a bearer token or a staff session
# (accounts.identity_cache): a revocation made in this process applies at once, in the others
# within this many seconds. 0 turns the cache off.
IDENTITY_CACHE_SECONDS = env_int("IDENTITY_CACHE_SECONDS", 30, minimum=0, maximum=300)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "ketaclinic.core.staticfiles.StaticStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Messaging (ketaclinic.messaging). E-mail uses Django's own setting names; an SMTP backend with
# no EMAIL_HOST counts as "no e-mail channel" and the admin's Today page says so.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1, maximum=300)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ketaclinic <no-reply@localhost>")
# SMS: "" (none), "console" (demo: printed by the worker) or "twilio" (Twilio's Messages API
# shape at SMS_PROVIDER_URL, with HTTP basic auth of SMS_ACCOUNT_SID:SMS_AUTH_TOKEN).
SMS_PROVIDER = env_choice("SMS_PROVIDER", "", ("", "console", "twilio"))
SMS_PROVIDER_URL = env_str("SMS_PROVIDER_URL", "https://api.twilio.com")
SMS_ACCOUNT_SID = env_str("SMS_ACCOUNT_SID", "")
SMS_AUTH_TOKEN = env_str("SMS_AUTH_TOKEN", "")
SMS_FROM_NUMBER = env_str("SMS_FROM_NUMBER", "")
if SMS_PROVIDER == "twilio" and not (SMS_ACCOUNT_SID and SMS_AUTH_TOKEN and SMS_FROM_NUMBER):
    raise ImproperlyConfigured(
        "SMS_PROVIDER=twilio needs SMS_ACCOUNT_SID, SMS_AUTH_TOKEN and SMS_FROM_NUMBER"
    )
# The base of links the worker sends (no request to take the host from).
KETACLINIC_PUBLIC_URL = env_str("KETACLINIC_PUBLIC_URL", "http://127.0.0.1:8000")
# Passkeys (WebAuthn) are bound to the site's origin and its host name (the relying party id).
WEBAUTHN_ORIGIN = env_str("WEBAUTHN_ORIGIN", KETACLINIC_PUBLIC_URL.rstrip("/"))
WEBAUTHN_RP_ID = env_str("WEBAUTHN_RP_ID", urlsplit(WEBAUTHN_ORIGIN).hostname or "localhost")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "script-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# HTTPS (README "Production"): all off by default so `make run` works over plain HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# The load balancer's probe speaks plain HTTP on the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0, maximum=2 * 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto (only a proxy that overwrites the
# header may be trusted, or any client could claim HTTPS) and, if set, its X-Forwarded-Host.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO", False) else None
)
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
