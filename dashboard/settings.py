"""Loupe's settings: every value comes from the environment, with defaults that run on a fresh machine."""
import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Everything Loupe writes at run time (database, media, broker queue, secret) lives here.
LOUPE_VAR = Path(os.environ.get("LOUPE_VAR", BASE_DIR / "var")).resolve()
LOUPE_VAR.mkdir(parents=True, exist_ok=True)


def _persistent_secret_key() -> str:
    # A fresh clone gets its own key, kept across restarts so sessions and JWTs survive them.
    path = LOUPE_VAR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or _persistent_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# The public base URL that deployment info names as oracle_host and serving_host.
LOUPE_PUBLIC_URL = os.environ.get("LOUPE_PUBLIC_URL", "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    # The core, then each domain app above the one it builds on (imports only point down this list).
    "dashboard",
    "monitoring",
    "serving",
    "pipelines",
    "reviews",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "dashboard.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "dashboard.middleware.AccessErrorPagesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

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
                "dashboard.views.context.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{LOUPE_VAR / 'loupe.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        # Faults: a kept connection is checked before each request reuses it, so a database restarted meanwhile
        # costs no request (the ones it interrupts answer 503, see dashboard.api.base).
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, but its health check looks at the socket instead of sending SELECT 1 every request.
    DATABASES["default"]["ENGINE"] = "dashboard.backends.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and IMMEDIATE transactions let the web server and the Celery worker write side by side.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Tests get a file, not shared memory: the live server's and the Celery worker's threads then have
    # connections of their own, as web and worker processes do in production.
    DATABASES["default"]["TEST"] = {"NAME": str(LOUPE_VAR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "deployment-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", LOUPE_VAR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", LOUPE_VAR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Upload bounds: the request body, the decoded image, and its pixel count.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("LOUPE_MAX_BODY_BYTES", 30 * 1024 * 1024))
LOUPE_MAX_IMAGE_BYTES = int(os.environ.get("LOUPE_MAX_IMAGE_BYTES", 20 * 1024 * 1024))
LOUPE_MAX_INSTRUCTIONS_BYTES = int(os.environ.get("LOUPE_MAX_INSTRUCTIONS_BYTES", 10 * 1024 * 1024))
LOUPE_MAX_IMAGE_PIXELS = int(os.environ.get("LOUPE_MAX_IMAGE_PIXELS", 50_000_000))
LOUPE_JWT_LIFETIME_SECONDS = int(os.environ.get("LOUPE_JWT_LIFETIME_SECONDS", 3600))
LOUPE_THUMBNAIL_SIZE = 320
LOUPE_EXPORT_KEEP_DAYS = float(os.environ.get("LOUPE_EXPORT_KEEP_DAYS", "7"))  # export zips, then deleted
# Stats rollups: seconds between a change and the refresh it asks for (changes meanwhile share it), and how many
# days minute and hour rows are kept (day rows stay).
LOUPE_STATS_REFRESH_DELAY = float(os.environ.get("LOUPE_STATS_REFRESH_DELAY", "1"))
LOUPE_STATS_MINUTE_DAYS = float(os.environ.get("LOUPE_STATS_MINUTE_DAYS", "14"))
LOUPE_STATS_HOUR_DAYS = float(os.environ.get("LOUPE_STATS_HOUR_DAYS", "400"))
# Alerts: the webhook's timeout in seconds, and the cool-down (seconds) in which a rule sends no second message.
LOUPE_ALERT_WEBHOOK_TIMEOUT = float(os.environ.get("LOUPE_ALERT_WEBHOOK_TIMEOUT", "5"))
LOUPE_ALERT_COOLDOWN_SECONDS = float(os.environ.get("LOUPE_ALERT_COOLDOWN_SECONDS", "900"))
# /metrics (docs/deployment.md): the bearer token a Prometheus scraper sends; unset, /metrics answers 404.
LOUPE_METRICS_TOKEN = os.environ.get("LOUPE_METRICS_TOKEN", "")
# Rounds of the paired bootstrap comparing shadow and champion on the same reviewed images.
LOUPE_QUALITY_BOOTSTRAP_ROUNDS = int(os.environ.get("LOUPE_QUALITY_BOOTSTRAP_ROUNDS", 1000))
# How many of a deployment's first predictions make its outlier reference until a training set is given.
LOUPE_OUTLIER_REFERENCE_SIZE = int(os.environ.get("LOUPE_OUTLIER_REFERENCE_SIZE", 200))
# Continuous training: the Celery queue training runs on (workers started for it: -Q training), a run's time limit
# in seconds, and how often a running experiment's worker writes its heartbeat (a silent one is taken for dead).
LOUPE_TRAINING_QUEUE = os.environ.get("LOUPE_TRAINING_QUEUE", "training")
LOUPE_TRAINING_TIME_LIMIT = int(os.environ.get("LOUPE_TRAINING_TIME_LIMIT", 3600))
LOUPE_EXPERIMENT_HEARTBEAT_SECONDS = float(os.environ.get("LOUPE_EXPERIMENT_HEARTBEAT_SECONDS", 15))

# Serving (docs/deployment.md): model files' bound, how long the web process waits for a serving worker's answer,
# and the Celery queues models run on. LOUPE_SERVING_QUEUES routes some to other queues, e.g.
# "onnx=serving-gpu,faces-entrance=serving-faces" (a runtime kind, a deployment's name or id -> a queue).
LOUPE_MAX_MODEL_BYTES = int(os.environ.get("LOUPE_MAX_MODEL_BYTES", 200 * 1024 * 1024))
LOUPE_SERVING_TIMEOUT = float(os.environ.get("LOUPE_SERVING_TIMEOUT", "30"))
LOUPE_SERVING_QUEUE = os.environ.get("LOUPE_SERVING_QUEUE", "serving")
LOUPE_SERVING_QUEUES = dict(item.split("=", 1) for item in env_list("LOUPE_SERVING_QUEUES", "") if "=" in item)
LOUPE_SERVING_SHADOW_QUEUE = os.environ.get("LOUPE_SERVING_SHADOW_QUEUE", "")  # empty: the champion's routing
LOUPE_ONNX_PROVIDERS = env_list("LOUPE_ONNX_PROVIDERS", "CPUExecutionProvider")
LOUPE_ONNX_THREADS = int(os.environ.get("LOUPE_ONNX_THREADS", 1))

# Celery: Redis when REDIS_URL is given, else kombu's filesystem transport under LOUPE_VAR,
# so the embedded default still runs a real worker without any server.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
else:
    _broker_dir = LOUPE_VAR / "broker"
    for _sub in ("in", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", CELERY_BROKER_URL)
CELERY_TASK_IGNORE_RESULT = True
# Only serving's predictions keep a result: the web process waits on it. Redis when given, else files under LOUPE_VAR.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or REDIS_URL or f"file://{LOUPE_VAR / 'results'}"
if CELERY_RESULT_BACKEND.startswith("file://"):
    (LOUPE_VAR / "results").mkdir(exist_ok=True)
CELERY_RESULT_EXPIRES = 600
CELERY_TASK_ROUTES = {"serving.tasks.*": {"queue": LOUPE_SERVING_QUEUE}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Faults: follow-up work not done this long after its record was stored is sent again by the sweeps, this many at
# a time per run (docs/deployment.md, "Faults").
LOUPE_WORK_GRACE_SECONDS = float(os.environ.get("LOUPE_WORK_GRACE_SECONDS", 30))
LOUPE_WORK_BATCH = int(os.environ.get("LOUPE_WORK_BATCH", 200))
# Frames a worker's task processes together (its own and the oldest others waiting), sharing their statements.
LOUPE_FRAME_BATCH = int(os.environ.get("LOUPE_FRAME_BATCH", 32))
# Drains of one deployment's waiting frames at work at once (one asked for by ingest, helpers while it falls behind).
LOUPE_FRAME_DRAINS = int(os.environ.get("LOUPE_FRAME_DRAINS", 4))
# Seconds a drain that keeps up waits before its next batch, so that batches gather frames (monitoring.services.frames).
LOUPE_FRAME_GATHER = float(os.environ.get("LOUPE_FRAME_GATHER", 0.2))
# Celery's Django fixup closes every database connection around each task unless this is set (it then closes them
# every this many tasks); dashboard/celery.py closes them instead as Django does around a request, so a worker
# keeps its connection for CONN_MAX_AGE and checks it before reuse (CONN_HEALTH_CHECKS).
CELERY_DB_REUSE_MAX = 1_000_000_000
CELERY_BEAT_SCHEDULE_FILENAME = str(LOUPE_VAR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "thumbnails-backfill": {"task": "dashboard.tasks.data_thumbnails_backfill", "schedule": 300.0},
    # Faults (docs/deployment.md): work whose message was lost is found in the database and sent again.
    "frames-catch-up": {"task": "monitoring.tasks.predicted_assets_catch_up", "schedule": 30.0,
                        "options": {"expires": 25}},
    "export-jobs-catch-up": {"task": "dashboard.tasks.export_jobs_catch_up", "schedule": 60.0,
                             "options": {"expires": 50}},
    "export-jobs-expire": {"task": "dashboard.tasks.export_jobs_expire", "schedule": 3600.0},
    "stats-reconcile": {"task": "monitoring.tasks.stats_reconcile", "schedule": 15.0},
    "stats-prune": {"task": "monitoring.tasks.stats_prune", "schedule": 3600.0},
    # Alerts (docs/deployment.md): every active rule evaluated from the rollups and stored reports.
    "alerts-evaluate": {"task": "monitoring.tasks.alerts_evaluate", "schedule": 60.0, "options": {"expires": 55}},
    "experiments-sweep": {"task": "pipelines.tasks.experiments_sweep", "schedule": 60.0},
    "campaigns-auto-add": {"task": "reviews.tasks.campaigns_auto_add", "schedule": 10.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

# The admin's console: invitation links and the mail that carries them (the console backend prints it unless
# EMAIL_BACKEND names another, e.g. django.core.mail.backends.smtp.EmailBackend with EMAIL_HOST and friends).
LOUPE_INVITATION_HOURS = float(os.environ.get("LOUPE_INVITATION_HOURS", 72))
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "").lower() in {"1", "true", "yes"}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "loupe@localhost")
