"""Omni settings: every value comes from the environment, with safe production defaults.

With no DATABASE_URL / CELERY_BROKER_URL the app runs on the embedded default: a SQLite file in
WAL mode and Kombu's filesystem transport, both under var/. README.md lists every variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("OMNI_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
TESTING = env_bool("OMNI_TESTING", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "omni-insecure-development-key-never-use-in-production"  # noqa: S105
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if (DEBUG or TESTING) else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "django_celery_beat",
    "omni",
    "inventory",
    "transfers",
    "customers",
    "orders",
    "online",
    "insights",
]

MIDDLEWARE = [
    "omni.middleware.RequestIdMiddleware",
    "omni.middleware.NulCharacterMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "omni.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "omni.middleware.CurrentLocationMiddleware",
    # Last, so its process_exception sees a page's ApplicationError first (4xx, not a 500).
    "omni.middleware.ApplicationErrorMiddleware",
]

# Overridable only so the benchmarks can add a baseline view (bench/urls.py); never set in production.
ROOT_URLCONF = os.environ.get("OMNI_ROOT_URLCONF", "omni.urls")
WSGI_APPLICATION = "omni.wsgi.application"
ASGI_APPLICATION = "omni.asgi.application"
AUTH_USER_MODEL = "omni.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

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
                "omni.context_processors.omni",
            ],
        },
    }
]

# --- Web server ------------------------------------------------------------------------------
# Threads a web process runs requests on (omni/asgi.py); 0 serves with Django's thread per request.
OMNI_ASGI_LANES = int(os.environ.get("OMNI_ASGI_LANES", "16"))

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
EMBEDDED = not DATABASE_URL
DATABASES: dict[str, dict[str, Any]]
if EMBEDDED:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "omni.sqlite3",
            "OPTIONS": {
                # WAL lets the web server, worker and beat read while one writes; IMMEDIATE
                # transactions take the write lock up front so SQLite never deadlocks on upgrade.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
else:
    DATABASES = {"default": dict(dj_database_url.parse(DATABASE_URL, conn_max_age=0))}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})
        # A web process runs its requests on OMNI_ASGI_LANES threads (omni/asgi.py) plus two shared
        # by live streams and the live hub's reader; a psycopg pool per process serves them all.
        # The test suite and Celery workers (forked: a pool must not cross a fork) use plain ones.
        if env_bool("DATABASE_POOL", not TESTING):
            DATABASES["default"]["OPTIONS"]["pool"] = {
                "min_size": 2,
                "max_size": int(os.environ.get("DATABASE_POOL_SIZE", str((OMNI_ASGI_LANES or 16) + 4))),
                "timeout": 10,
            }
        else:
            # Celery workers (one thread per process, forked: a pool must not cross a fork) and tests.
            DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("CONN_MAX_AGE", "60"))
            DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

# --- Redis, Celery, cache ---------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# API tokens are checked from memory in each web process, cleared everywhere through Redis when
# a token, user, role or user's location changes (omni.token_cache); this bounds changes that
# bypass signals.
# 0 turns it off (the test suite's default: its tests of the cache turn it on).
OMNI_TOKEN_CACHE_SECONDS = float(os.environ.get("OMNI_TOKEN_CACHE_SECONDS", "0" if TESTING else "60"))
# Redis pub/sub channels are shared by every database of a Redis server: give each deployment
# that shares one its own channel.
OMNI_AUTH_CHANNEL = os.environ.get("OMNI_AUTH_CHANNEL", "omni:auth")
# Hot fixed statements (API tokens, availability, reservations) run as server-side prepared
# statements on PostgreSQL (inventory.prepared); turn off behind a transaction-pooling PgBouncer
# older than 1.21, which cannot route them.
OMNI_PREPARED_STATEMENTS = env_bool("OMNI_PREPARED_STATEMENTS", True)
# A reservation on PostgreSQL is one call of the omni_stock_reserve function (migration inventory
# 0007); False takes the general ORM path, which the tests also run to keep the two equal.
OMNI_ONE_STATEMENT_RESERVE = env_bool("OMNI_ONE_STATEMENT_RESERVE", True)
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
if not CELERY_BROKER_URL:
    broker_dirs = {name: VAR_DIR / "broker" / name for name in ("out", "processed", "control")}
    for folder in broker_dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    # The host means nothing to this transport; naming one keeps Kombu from warning at every connection.
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT = "omni.broker:Transport"  # Kombu's, writing each message atomically
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(broker_dirs["out"]),
        "data_folder_out": str(broker_dirs["out"]),
        "data_folder_processed": str(broker_dirs["processed"]),
        "control_folder": str(broker_dirs["control"]),  # else Kombu writes ./control in the working dir
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# What tasks print (the console email backend under `make run`) is logged at INFO, not WARNING.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache"
            if not TESTING
            else "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "omni_cache",
        }
    }

# --- Auth and security ------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Failed logins: after this many failures for one username (or one client address) within the
# window, the login is locked for the window. Every failure is recorded (omni.LoginAttempt).
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900"))

SECURE_HTTPS = env_bool("SECURE_HTTPS", not DEBUG and not TESTING)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000" if SECURE_HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 12
X_FRAME_OPTIONS = "DENY"
# The content security policy: everything is served by Omni itself (vendored front-end libraries).
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'",
)

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not (DEBUG or TESTING)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING or env_bool("WHITENOISE_USE_FINDERS", False)
if WHITENOISE_USE_FINDERS:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns when it is missing

# --- Email ------------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Omni <no-reply@omni.local>")

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "omni.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": None,
    # JSON without NUL characters (PostgreSQL cannot store them), then forms as DRF's defaults.
    "DEFAULT_PARSER_CLASSES": [
        "omni.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Omni API",
    "DESCRIPTION": "Omnichannel POS and inventory: stock, orders, customers, transfers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets whose field names ("status", "reason", "kind") other components share.
    "ENUM_NAME_OVERRIDES": {
        "ReservationStatusEnum": "inventory.models.ReservationStatus",
        "TransferStatusEnum": "transfers.models.TransferStatus",
        "MovementReasonEnum": "inventory.models.MovementReason",
        "LocationKindEnum": "inventory.models.LocationKind",
    },
    # Swagger UI comes from static/vendor (scripts/vendor_frontend.sh), never from a CDN; the split
    # view serves its init script as a file so the page needs no inline script (CSP).
    # The errors any request can meet (400, 401, 404, 429) on every operation: omni/schema.py.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "omni.schema.add_common_errors"],
    "SWAGGER_UI_DIST": f"{STATIC_URL}vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": f"{STATIC_URL}vendor/swagger-ui/favicon-32x32.png",
    # validatorUrl null: Swagger UI would otherwise fetch a badge from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "validatorUrl": None},
}

# --- Online store (Shopify-style) -------------------------------------------------------------
SHOPIFY_WEBHOOK_SECRETS = env_list("SHOPIFY_WEBHOOK_SECRET")  # comma-separated, newest first
SHOPIFY_SHOP_DOMAIN = os.environ.get("SHOPIFY_SHOP_DOMAIN", "omni-demo.myshopify.com")
SHOPIFY_ADMIN_API_URL = os.environ.get("SHOPIFY_ADMIN_API_URL", "")
SHOPIFY_ACCESS_TOKEN = os.environ.get("SHOPIFY_ACCESS_TOKEN", "")
# Stored deliveries are sent to the worker in bursts gathered for this long (online.queueing); 0 sends each alone.
SHOPIFY_WEBHOOK_BATCH_MS = int(os.environ.get("SHOPIFY_WEBHOOK_BATCH_MS", "20"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Business settings ------------------------------------------------------------------------
OMNI_RESERVATION_MINUTES = int(os.environ.get("OMNI_RESERVATION_MINUTES", "15"))
OMNI_DEMO_PASSWORD = os.environ.get("OMNI_DEMO_PASSWORD", "omni-demo")

# --- Logging: JSON lines in production, readable lines in development --------------------------
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if (DEBUG or TESTING) else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "omni.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
