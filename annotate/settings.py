"""Sieve settings: one file, configured by environment variables with embedded defaults.

The defaults give a self-contained local install (SQLite, filesystem broker). DEBUG is off
unless DEBUG=1 is set (`make run` and the tests set it); with DEBUG off a real SECRET_KEY is
required. Production sets DATABASE_URL, CELERY_BROKER_URL and SECRET_KEY (see compose.yaml).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


DEBUG = env_bool("DEBUG", False)
_DEV_SECRET = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 - refused below
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = _DEV_SECRET
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("SECRET_KEY is the development placeholder; set a real one")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Writable state of the embedded install (SQLite file, broker folders, media) lives here.
VAR_DIR = Path(os.environ.get("SIEVE_VAR_DIR", BASE_DIR / "var"))
MEDIA_ROOT = Path(os.environ.get("SIEVE_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media/"

# The only folders images may be imported from or served from (comma separated).
SIEVE_IMAGE_ROOTS = [
    Path(p).resolve() for p in env_list("SIEVE_IMAGE_ROOTS", str(VAR_DIR / "images"))
]
# Pillow refuses images with more pixels than this (decompression-bomb guard).
SIEVE_MAX_IMAGE_PIXELS = env_int("SIEVE_MAX_IMAGE_PIXELS", 89_478_485)
# How long an annotator holds a sample item before it may go to someone else.
SIEVE_LEASE_SECONDS = env_int("SIEVE_LEASE_SECONDS", 300)

# Classifier. The engine reads no environment: classifier.tasks passes these as arguments.
# Images longer than this ratio (long side : short side) are refused, at import and in the
# engine: resizing the short side of a 1x89,000 strip to the model's input needs gigabytes.
SIEVE_MAX_ASPECT_RATIO = env_int("SIEVE_MAX_ASPECT_RATIO", 20)
# The only folders a run's checkpoint (`weights` path) may be loaded from (comma separated).
SIEVE_MODEL_ROOTS = [
    Path(p).resolve() for p in env_list("SIEVE_MODEL_ROOTS", str(MEDIA_ROOT / "models"))
]
SIEVE_CHUNK_SIZE = env_int("SIEVE_CHUNK_SIZE", 2000)  # items per Celery task: minutes of GPU
SIEVE_BATCH_SIZE = env_int("SIEVE_BATCH_SIZE", 64)  # images per forward pass
SIEVE_DECODE_WORKERS = env_int("SIEVE_DECODE_WORKERS", min(8, os.cpu_count() or 1))
SIEVE_CHUNK_STALE_SECONDS = env_int("SIEVE_CHUNK_STALE_SECONDS", 300)  # then re-dispatched
SIEVE_DEVICE = os.environ.get("SIEVE_DEVICE", "")  # "" (CUDA when present), cpu, cuda:1
# Search (docs/architecture.md#search): exact numpy search up to this many items, an
# approximate faiss index above; how long a web request waits for the search worker; how many
# embedding caches one search worker keeps in memory (float32: about 2 GB per million items).
SIEVE_SEARCH_EXACT_MAX = env_int("SIEVE_SEARCH_EXACT_MAX", 2_000_000)
SIEVE_SEARCH_TIMEOUT = env_int("SIEVE_SEARCH_TIMEOUT", 30)
SIEVE_SEARCH_CACHES = env_int("SIEVE_SEARCH_CACHES", 2)
# torch threads of a probe's fits (docs/architecture.md#probe): one by default, because on a
# shared machine more threads spin-wait and made the small fits 10-25x slower; two on an
# idle 2-core machine were 1.6x faster.
SIEVE_PROBE_THREADS = env_int("SIEVE_PROBE_THREADS", 1)
SIEVE_CPU_PRECISION = os.environ.get("SIEVE_CPU_PRECISION", "auto").lower()
if SIEVE_CPU_PRECISION not in ("auto", "bf16", "fp32"):
    raise ImproperlyConfigured("SIEVE_CPU_PRECISION must be auto, bf16 or fp32")
# Hugging Face's own switch: pretrained tags then load from the local cache only.
HF_HUB_OFFLINE = env_bool("HF_HUB_OFFLINE", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "csp",
    "django_celery_results",
    "annotate.accounts",
    "annotate.datasets",
    "annotate.taxonomies",
    "annotate.validation",
    "annotate.itr",
    "annotate.console",
    "classifier",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "annotate.urls"
WSGI_APPLICATION = "annotate.wsgi.application"

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
                "annotate.datasets.access.role_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + busy timeout + IMMEDIATE transactions: the web server and the local worker write
    # to the same file without "database is locked" errors.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file (not :memory:) so that worker processes started by tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login lockout (django-axes) on the login form, the admin and /api/auth/token/: after this many
# wrong passwords for a username, no password works for it until the cool-off has passed.
AUTHENTICATION_BACKENDS = [
    "annotate.accounts.lockout.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("SIEVE_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIEVE_LOGIN_COOLOFF_MINUTES", 15))
# By username alone: neither user agent nor cookies play a part, so rotating them does not get
# round it, and no IP part locks out everyone behind one proxy. axes.W006 asks for an IP part.
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "annotate.accounts.lockout.lockout_response"
AXES_VERBOSE = False  # no start-up banner in every command's output; failures are still logged

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Content-Security-Policy (django-csp): scripts, styles, images and requests from this origin
# only; no inline script, no inline style, no eval, no framing. Pages pass data to their
# static scripts through json_script (type application/json, which is not executed).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The API's conventions (annotate/rest.py): one error handler, limit/offset pages of at
    # most 1,000 rows, JSON bodies too deeply nested answer 400.
    "DEFAULT_PAGINATION_CLASS": "annotate.rest.Pagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "annotate.rest.exception_handler",
    "DEFAULT_PARSER_CLASSES": ["annotate.rest.JSONParser"],  # bodies are JSON
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sieve API",
    "DESCRIPTION": "Human-in-the-loop validation of zero-shot image labels",
    "VERSION": "0.1.0",
    # The schema describes the API, not the schema and docs views themselves.
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components, with the rules only input has (non-blank text).
    "COMPONENT_SPLIT_REQUEST": True,
    # PATCH bodies are checked whole (no partial updates): they keep their required fields.
    "COMPONENT_SPLIT_PATCH": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "annotate.rest.schema_postprocess",
    ],
    # A verdict's `value`: all three, and the two body forms (a corrected label only with a miss).
    "ENUM_NAME_OVERRIDES": {
        "VerdictValueEnum": "annotate.validation.models.Verdict.Value",
        "HitOrSkipValueEnum": ["hit", "skip"],
        "MissValueEnum": ["miss"],
        "ItrStatusEnum": "annotate.itr.models.ItrItem.Status",
    },
    # Swagger UI from the installed sidecar package, so /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and its docs are for logged-in users (session or token) only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# Celery: the broker defaults to a local folder, so `make run` needs no Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # The folder is checked this often (kombu's default is once a second): a search
        # query, which a page waits on, then answers in tens of milliseconds.
        "polling_interval": 0.1,
    }
else:
    # Chunks finish in minutes; a lost worker's chunk is redelivered after this long.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
    }
# Results are kept only for the tasks that a web request waits on (search queries); every
# other task ignores its result. The database backend works with SQLite and PostgreSQL alike.
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXPIRES = timedelta(hours=1)  # celery.backend_cleanup (beat) deletes older rows
CELERY_TASK_IGNORE_RESULT = True
# Search queries, index builds and duplicate scans run on workers of the `search` queue, which
# keep embedding caches in memory between tasks (docs/architecture.md#search).
CELERY_TASK_ROUTES = {"classifier.search_*": {"queue": "search"}}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Celery beat (`celery beat`, or `worker -B` in `make run`): re-dispatch chunks of dead workers.
CELERY_BEAT_SCHEDULE = {
    "sweep-dead-chunks": {
        "task": "classifier.sweep_runs",
        "schedule": float(env_int("SIEVE_SWEEP_SECONDS", 60)),
        "options": {"queue": "default", "expires": 50},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

VAR_DIR.mkdir(parents=True, exist_ok=True)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
