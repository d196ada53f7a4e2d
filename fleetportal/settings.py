"""fleetportal settings: every value comes from the environment (see .env.example)."""

from pathlib import Path

from fleetportal.env import (
    database_from_url,
    env_bool,
    env_int,
    env_json_object,
    env_list,
    env_str,
    read_key_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FLEETPORTAL_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("FLEETPORTAL_DEBUG", False)
# The key comes from the environment, else from the file `make run` generates once per checkout
# (so a `manage.py` command typed in a new shell signs with the same key as the running portal).
# The fallback key only serves local runs and tests: checks.py (under manage.py) and
# startup.py (daphne, Celery) refuse it when DEBUG is off and FLEETPORTAL_ALLOW_INSECURE_KEY is
# not set.
INSECURE_KEY = "insecure-development-key-change-me"
SECRET_KEY = (
    env_str("FLEETPORTAL_SECRET_KEY", "") or read_key_file(VAR_DIR / "secret_key") or INSECURE_KEY
)
ALLOW_INSECURE_KEY = env_bool("FLEETPORTAL_ALLOW_INSECURE_KEY", False)
ALLOWED_HOSTS = env_list("FLEETPORTAL_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("FLEETPORTAL_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "fleetportal",
    "devices",
    "shadows",
    "firmware",
    "monitoring",
    "aws_gateway",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Body size and NUL-free URLs, before sessions or views (fleetportal/request_limits.py).
    "fleetportal.request_limits.RequestLimits",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "fleetportal.security.ContentSecurityPolicyMiddleware",
    # Innermost: the view and everything it writes are one transaction (fleetportal/transactions).
    "fleetportal.transactions.AtomicWriteRequests",
]

ROOT_URLCONF = "fleetportal.urls"
ASGI_APPLICATION = "fleetportal.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ACKS_LATE = True
# Task modules beyond each app's tasks.py.
CELERY_IMPORTS = ["devices.bulk"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Long tasks: a worker reserves only the task it runs, so a killed worker strands no queued job.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A long job whose heartbeat is older than this is resumed by the sweep (fleetportal.resumable),
# which beat runs every JOB_SWEEP_SECONDS (and each worker when it starts).
JOB_STALL_SECONDS = env_int("FLEETPORTAL_JOB_STALL_SECONDS", 15)
JOB_SWEEP_SECONDS = env_int("FLEETPORTAL_JOB_SWEEP_SECONDS", 5)
# Rollouts: a target not seen for this many hours (or never) is left out of a rollout's waves;
# a rollout created by a member of one of these roles (group names) needs a second person's
# approval to start, whatever its own approval_required says.
ROLLOUT_OFFLINE_HOURS = env_int("FLEETPORTAL_ROLLOUT_OFFLINE_HOURS", 168)
ROLLOUT_APPROVAL_ROLES = env_list("FLEETPORTAL_ROLLOUT_APPROVAL_ROLES", [])

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("FLEETPORTAL_STATIC_ROOT", str(BASE_DIR / "var" / "static")))

# --- HTTPS behind a reverse proxy (README "Running it on a server"; `check --deploy` passes with
# the settings listed there).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("FLEETPORTAL_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("FLEETPORTAL_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("FLEETPORTAL_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("FLEETPORTAL_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("FLEETPORTAL_HSTS_PRELOAD", False)
# The header the proxy sets to say the client used HTTPS, e.g. X-Forwarded-Proto. Trust it only
# when the proxy always sets (or strips) it: a client could otherwise claim HTTPS itself.
_PROXY_SSL_HEADER = env_str("FLEETPORTAL_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https") if _PROXY_SSL_HEADER else None
)
X_FRAME_OPTIONS = "DENY"
# Scripts from the portal only; inline styles stay allowed because Swagger UI and Redoc set
# them at run time. connect-src 'self' covers the live pages' same-origin WebSocket.
CONTENT_SECURITY_POLICY = env_str(
    "FLEETPORTAL_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)

# One limit for every request body (JSON, CSV, multipart): 10,000 bulk rows with CSRs fit.
MAX_REQUEST_BODY_BYTES = env_int("FLEETPORTAL_MAX_REQUEST_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# Requests of one web process inside Django's views at once (fleetportal/web_concurrency.py): each
# holds a thread and a PostgreSQL connection, and PostgreSQL's max_connections (100 by default)
# is shared with the bridge, the worker and every other web process. A request waits at most
# WEB_QUEUE_SECONDS for its turn, then is answered 503 with Retry-After.
WEB_CONCURRENCY = env_int("FLEETPORTAL_WEB_CONCURRENCY", 16, minimum=1)
WEB_QUEUE_SECONDS = env_int("FLEETPORTAL_WEB_QUEUE_SECONDS", 10, minimum=0)
# JSON bodies nest at most this deep (a 10,000-deep document is refused, not a RecursionError).
API_JSON_MAX_DEPTH = 32

# Rate limits and lockouts (fleetportal.rate_limits), shared by every process through Redis:
# name -> (allowed, window in seconds, lockout in seconds; 0 = a plain request rate). Reaching a
# failure limit locks the username, address or device out: 429 with Retry-After, even for the
# right password, and one SecurityEvent. An allowance of 0 turns a limit off.
LOGIN_WINDOW_SECONDS = env_int("FLEETPORTAL_LOGIN_FAILURE_WINDOW_SECONDS", 900)
LOGIN_LOCKOUT_SECONDS = env_int("FLEETPORTAL_LOGIN_LOCKOUT_SECONDS", 900)
DEVICE_AUTH_WINDOW_SECONDS = env_int("FLEETPORTAL_DEVICE_AUTH_FAILURE_WINDOW_SECONDS", 300)
DEVICE_AUTH_LOCKOUT_SECONDS = env_int("FLEETPORTAL_DEVICE_AUTH_LOCKOUT_SECONDS", 300)
RATE_LIMITS = {
    # Failed admin logins, per username and per address.
    "admin-login-user": (
        env_int("FLEETPORTAL_LOGIN_FAILURES", 10),
        LOGIN_WINDOW_SECONDS,
        LOGIN_LOCKOUT_SECONDS,
    ),
    "admin-login-address": (
        env_int("FLEETPORTAL_LOGIN_FAILURES_PER_ADDRESS", 50),
        LOGIN_WINDOW_SECONDS,
        LOGIN_LOCKOUT_SECONDS,
    ),
    # Refused API tokens, per address.
    "api-token-address": (
        env_int("FLEETPORTAL_API_TOKEN_FAILURES_PER_ADDRESS", 50),
        LOGIN_WINDOW_SECONDS,
        LOGIN_LOCKOUT_SECONDS,
    ),
    # Refused device JWTs, per device id (the token's iss) and per address.
    "device-auth-device": (
        env_int("FLEETPORTAL_DEVICE_AUTH_FAILURES", 20),
        DEVICE_AUTH_WINDOW_SECONDS,
        DEVICE_AUTH_LOCKOUT_SECONDS,
    ),
    "device-auth-address": (
        env_int("FLEETPORTAL_DEVICE_AUTH_FAILURES_PER_ADDRESS", 200),
        DEVICE_AUTH_WINDOW_SECONDS,
        DEVICE_AUTH_LOCKOUT_SECONDS,
    ),
    # Requests per minute: the HTTP device API per device and per address, the REST API per user.
    "device-api-device": (env_int("FLEETPORTAL_DEVICE_API_REQUESTS_PER_MINUTE", 60), 60, 0),
    "device-api-address": (
        env_int("FLEETPORTAL_DEVICE_API_REQUESTS_PER_MINUTE_PER_ADDRESS", 3000),
        60,
        0,
    ),
    "api-user": (env_int("FLEETPORTAL_API_REQUESTS_PER_MINUTE", 3000), 60, 0),
}
RATE_LIMIT_KEY_PREFIX = env_str("FLEETPORTAL_RATE_LIMIT_KEY_PREFIX", "fleetportal:limits")

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": [
        "fleetportal.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "fleetportal.api.throttles.LimitedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["fleetportal.api.throttles.UserRateThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["fleetportal.api.permissions.FleetModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "fleetportal.api.pagination.FleetPageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "fleetportal.api.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "fleetportal API",
    "DESCRIPTION": "Device registry, lifecycle and fleet management for integrators.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # The sidecar's bundle, served by fleetportal.api.redoc without its CDN logo.
    "REDOC_DIST": "/api/redoc-dist",
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and its Swagger/Redoc pages need a login (portal session or API token), like
    # every other endpoint.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Every operation documents the error answers the shared layers give (fleetportal/api).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "fleetportal.api.schema.add_error_responses",
        "fleetportal.api.schema.add_summaries",
    ],
    # Operations are tagged by their resource (devices, groups, shadows…), not by "api".
    "SCHEMA_PATH_PREFIX": r"/(api|device)/v[0-9]+",
    # One DeviceStatus enum in the schema, however many fields use it.
    "ENUM_NAME_OVERRIDES": {
        "DeviceStatus": "devices.choices.DeviceStatus",
        "CredentialStatus": "devices.choices.CredentialStatus",
        "BulkJobStatus": "devices.choices.BulkJobStatus",
        "JobStatus": "firmware.choices.JobStatus",
        "ExecutionStatus": "firmware.choices.ExecutionStatus",
        "RolloutStatus": "firmware.rollouts.choices.RolloutStatus",
        "WaveStatus": "firmware.rollouts.choices.WaveStatus",
        "RolloutFailure": "firmware.rollouts.choices.Failure",
    },
}

# A device counts as online while its last message is younger than this.
DEVICE_ONLINE_WINDOW_SECONDS = env_int("FLEETPORTAL_ONLINE_WINDOW_SECONDS", 300)
# Exact counts stop here on list pages; past it the planner's estimate is shown instead.
LIST_EXACT_COUNT_LIMIT = env_int("FLEETPORTAL_LIST_EXACT_COUNT_LIMIT", 10_000)

# --- Device identity (devices/pki, devices/credentials.py) ---
FLEETPORTAL_CA_DIR = Path(env_str("FLEETPORTAL_CA_DIR", str(VAR_DIR / "ca")))
FLEETPORTAL_CA_PASSPHRASE = env_str("FLEETPORTAL_CA_PASSPHRASE", "") or None
DEVICE_CERT_DAYS = env_int("FLEETPORTAL_DEVICE_CERT_DAYS", 365)
CERT_EXPIRY_WARNING_DAYS = env_int("FLEETPORTAL_CERT_EXPIRY_WARNING_DAYS", 30)
CRL_NEXT_UPDATE_HOURS = env_int("FLEETPORTAL_CRL_NEXT_UPDATE_HOURS", 48)
OWNERSHIP_TOKEN_SECONDS = env_int("FLEETPORTAL_OWNERSHIP_TOKEN_SECONDS", 3600)
DEVICE_JWT_MAX_SECONDS = env_int("FLEETPORTAL_DEVICE_JWT_MAX_SECONDS", 600)
# How often beat re-signs the CRL (also republishing after a failed revocation publish) and
# looks for expiring certificates.
CRL_RESIGN_SECONDS = env_int("FLEETPORTAL_CRL_RESIGN_SECONDS", 3600)
CERT_EXPIRY_CHECK_SECONDS = env_int("FLEETPORTAL_CERT_EXPIRY_CHECK_SECONDS", 3600)
CELERY_BEAT_SCHEDULE = {
    "resign-crl": {"task": "devices.tasks.resign_crl", "schedule": CRL_RESIGN_SECONDS},
    "warn-expiring-certificates": {
        "task": "devices.tasks.warn_expiring_certificates",
        "schedule": CERT_EXPIRY_CHECK_SECONDS,
    },
    "expire-pending-claims": {"task": "devices.tasks.expire_pending_claims", "schedule": 300},
    "resume-stalled-jobs": {
        "task": "fleetportal.tasks.resume_stalled_jobs",
        "schedule": JOB_SWEEP_SECONDS,
    },
}
# Serve $aws/certificates/create/json (portal-generated keys over MQTT): its reply carries a
# private key on a topic every holder of the same claim certificate can read
# (device-protocol.md §7.9), so it is off unless the operator accepts that risk.
CLAIM_CREATE_KEYS = env_bool("FLEETPORTAL_CLAIM_CREATE_KEYS", False)
# The pre-provisioning hook is requested from inside the portal's network (devices/provisioning/
# hook.py): only to these host names, over https unless http is allowed. Empty: no hook at all.
PROVISIONING_HOOK_HOSTS = env_list("FLEETPORTAL_PROVISIONING_HOOK_HOSTS", [])
PROVISIONING_HOOK_ALLOW_HTTP = env_bool("FLEETPORTAL_PROVISIONING_HOOK_ALLOW_HTTP", False)

# --- Device shadows (shadows/) ---
# Accepted shadow versions are kept this long in the history (shadows.services.prune_history).
SHADOW_HISTORY_DAYS = env_int("FLEETPORTAL_SHADOW_HISTORY_DAYS", 90)
CELERY_BEAT_SCHEDULE["prune-shadow-history"] = {
    "task": "shadows.tasks.prune_shadow_history",
    "schedule": 24 * 3600,
}
# A configuration value pushed this long ago and not reported back by the device is drift.
CONFIG_DRIFT_MINUTES = env_int("FLEETPORTAL_CONFIG_DRIFT_MINUTES", 15)
# Devices that joined or left a configured group (registration, a moved device, a dynamic
# filter now matching) get their configuration from this periodic reconcile.
CELERY_BEAT_SCHEDULE["reconcile-configuration"] = {
    "task": "shadows.tasks.reconcile_configuration",
    "schedule": 300,
}

# --- Firmware catalog and downloads (firmware/) ---
# The signing key of firmware manifests (ECDSA P-256, `manage.py init_firmware_key`): outside the
# artifact storage, mode 0600, encrypted with the passphrase when one is set.
FIRMWARE_SIGNING_KEY = Path(
    env_str("FLEETPORTAL_FIRMWARE_SIGNING_KEY", str(VAR_DIR / "keys" / "firmware-signing.key"))
)
FIRMWARE_SIGNING_KEY_PASSPHRASE = env_str("FLEETPORTAL_FIRMWARE_SIGNING_KEY_PASSPHRASE", "")
# Artifacts: local files by default; any Django storage backend (django-storages' S3, say) by
# naming its class and its options (a JSON object).
FIRMWARE_STORAGE_BACKEND = env_str(
    "FLEETPORTAL_FIRMWARE_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
)
FIRMWARE_STORAGE_OPTIONS = env_json_object(
    "FLEETPORTAL_FIRMWARE_STORAGE_OPTIONS",
    {"location": str(VAR_DIR / "firmware")}
    if FIRMWARE_STORAGE_BACKEND == "django.core.files.storage.FileSystemStorage"
    else {},
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "firmware": {"BACKEND": FIRMWARE_STORAGE_BACKEND, "OPTIONS": FIRMWARE_STORAGE_OPTIONS},
}
MEDIA_ROOT = VAR_DIR / "media"
# The largest artifact accepted by upload (the API and the admin); other requests keep
# MAX_REQUEST_BODY_BYTES.
FIRMWARE_MAX_UPLOAD_BYTES = env_int("FLEETPORTAL_FIRMWARE_MAX_UPLOAD_BYTES", 1024 * 1024 * 1024)
# Signed download URLs: valid this long, signed with HMAC-SHA256 keyed from this key (default:
# derived from SECRET_KEY), absolute on this base URL (what devices reach the portal at).
FIRMWARE_URL_SECONDS = env_int("FLEETPORTAL_FIRMWARE_URL_SECONDS", 3600)
FIRMWARE_URL_KEY = env_str("FLEETPORTAL_FIRMWARE_URL_KEY", "")
PUBLIC_URL = env_str("FLEETPORTAL_PUBLIC_URL", "http://localhost:8000")
# A rollout's download slot is a lease this long, renewed while the download streams: a worker
# killed mid-download leaks its slot for at most this long (firmware/rollouts/spread.py).
ROLLOUT_DOWNLOAD_SLOT_SECONDS = env_int("FLEETPORTAL_ROLLOUT_DOWNLOAD_SLOT_SECONDS", 60)
ROLLOUT_REDIS_KEY_PREFIX = env_str("FLEETPORTAL_ROLLOUT_REDIS_KEY_PREFIX", "fleetportal:rollouts")
# Where the consumers of device messages say how far their record reaches (fleetportal/bridge/
# record.py): one Redis hash per portal.
MESSAGE_RECORD_KEY = env_str("FLEETPORTAL_MESSAGE_RECORD_KEY", "fleetportal:message-record")

# --- Jobs (firmware/engine.py) ---
# How often beat ticks the jobs engine (release at the rollout rate, timers, retries, aborts).
JOBS_TICK_SECONDS = env_int("FLEETPORTAL_JOBS_TICK_SECONDS", 5)
# A firmware execution reported SUCCEEDED counts as a success only once the device reports the
# job's version within this many minutes; otherwise it ends FAILED.
FIRMWARE_CONFIRM_MINUTES = env_int("FLEETPORTAL_FIRMWARE_CONFIRM_MINUTES", 30)
CELERY_BEAT_SCHEDULE["jobs-tick"] = {"task": "firmware.tasks.tick", "schedule": JOBS_TICK_SECONDS}
# How often beat ticks the rollout engine; a crossed failure threshold halts at the next tick,
# so this bounds the delay from crossing to halt (target ≤ 5 s).
ROLLOUTS_TICK_SECONDS = env_int("FLEETPORTAL_ROLLOUTS_TICK_SECONDS", 2)
CELERY_BEAT_SCHEDULE["rollouts-tick"] = {
    "task": "firmware.tasks.rollouts_tick",
    "schedule": ROLLOUTS_TICK_SECONDS,
}
# Periodic tasks run every few seconds: Celery's own lines about them (sent, received,
# succeeded) are DEBUG (fleetportal/log_filters.py); each logs one line when it changed something.
QUIET_TASKS = frozenset(
    {"firmware.tasks.tick", "firmware.tasks.rollouts_tick", "fleetportal.tasks.resume_stalled_jobs"}
)

# --- The broker (fleetportal/broker.py generates its configuration) ---
BROKER_DIR = Path(env_str("FLEETPORTAL_BROKER_DIR", str(VAR_DIR / "broker")))
BROKER_HOSTNAMES = env_list("FLEETPORTAL_BROKER_HOSTNAMES", ["localhost"])
BROKER_HOST = env_str("FLEETPORTAL_BROKER_HOST", "127.0.0.1")
# The address the device and claim listeners bind ("" = every interface; set it to serve devices
# on the network). The full-rights backend listener has its own, local unless asked.
BROKER_BIND_ADDRESS = env_str("FLEETPORTAL_BROKER_BIND_ADDRESS", "127.0.0.1")
BROKER_BACKEND_BIND_ADDRESS = env_str("FLEETPORTAL_BROKER_BACKEND_BIND_ADDRESS", "127.0.0.1")
# The largest MQTT payload the broker accepts (AWS IoT: 128 KB); larger ones are dropped by the
# broker, and a packet over twice this ends the sender's connection.
MQTT_MAX_PAYLOAD_BYTES = env_int("FLEETPORTAL_MQTT_MAX_PAYLOAD_BYTES", 128 * 1024)
# Each device's inbound messages per second (and at once), enforced by the broker's plugin
# (mosquitto/fleetportal_limits.c, read at broker start) and again by the bridge; more are
# dropped and counted in a `throttled` event, so one flooding device cannot delay the others.
# 0 = no limit.
DEVICE_MESSAGES_PER_SECOND = env_int("FLEETPORTAL_DEVICE_MESSAGES_PER_SECOND", 100)
DEVICE_MESSAGE_BURST = env_int("FLEETPORTAL_DEVICE_MESSAGE_BURST", 100)
# A device with this many messages over its rate within one second is disconnected by the
# broker (it may reconnect); 0 = never.
DEVICE_FLOOD_DISCONNECT_AFTER = env_int("FLEETPORTAL_DEVICE_FLOOD_DISCONNECT_AFTER", 1000)
# After that disconnect the device is banned this long: it may reconnect, but each connection
# ends at its first message (dropped and counted), so a flood resumed after every reconnect
# costs the broker one message, not another thousand. 0 = no ban.
DEVICE_FLOOD_BAN_SECONDS = env_int("FLEETPORTAL_DEVICE_FLOOD_BAN_SECONDS", 60)
BROKER_DEVICE_PORT = env_int("FLEETPORTAL_BROKER_DEVICE_PORT", 8883)
BROKER_CLAIM_PORT = env_int("FLEETPORTAL_BROKER_CLAIM_PORT", 8884)
BROKER_BACKEND_PORT = env_int("FLEETPORTAL_BROKER_BACKEND_PORT", 18830)
BROKER_BACKEND_USERNAME = env_str("FLEETPORTAL_BROKER_BACKEND_USERNAME", "fleetportal-bridge")
# Generated into BROKER_DIR by `manage.py broker_config` when not set.
BROKER_BACKEND_PASSWORD = env_str("FLEETPORTAL_BROKER_BACKEND_PASSWORD", "")
MOSQUITTO_BINARY = env_str("FLEETPORTAL_MOSQUITTO_BINARY", "/usr/sbin/mosquitto")
# Where the brokers' plugins are (mosquitto/*.c; `make install` builds them into build/).
BROKER_PLUGIN_DIR = env_str("FLEETPORTAL_BROKER_PLUGIN_DIR", str(BASE_DIR / "build"))

# --- Monitoring: presence and health (monitoring/presence/) ---
# Online devices silent longer than this are marked offline by the sweep, unless their device
# type sets its own heartbeat (admin: Device type health).
PRESENCE_HEARTBEAT_SECONDS = env_int(
    "FLEETPORTAL_PRESENCE_HEARTBEAT_SECONDS", DEVICE_ONLINE_WINDOW_SECONDS
)
PRESENCE_SWEEP_SECONDS = env_int("FLEETPORTAL_PRESENCE_SWEEP_SECONDS", 30)
# An offline presence message (a last will) this soon after a newer connect belongs to the older
# connection (it came through another bridge partition): ignored.
PRESENCE_WILL_GRACE_SECONDS = env_int("FLEETPORTAL_PRESENCE_WILL_GRACE_SECONDS", 10)
# How long a bridge trusts that a device it saw online still is before a message re-checks it.
PRESENCE_RECHECK_SECONDS = env_int("FLEETPORTAL_PRESENCE_RECHECK_SECONDS", 30)
CELERY_BEAT_SCHEDULE["presence-sweep"] = {
    "task": "monitoring.presence.tasks.sweep_heartbeats",
    "schedule": PRESENCE_SWEEP_SECONDS,
}
#
# --- Monitoring: telemetry (monitoring/telemetry/) ---
# Points are kept this many days (daily partitions dropped by beat), rollups too.
TELEMETRY_RETENTION_DAYS = env_int("FLEETPORTAL_TELEMETRY_RETENTION_DAYS", 30)
# Daily partitions created this many days ahead (beat and migrate; a missing one is created by
# the bridge when a point needs it).
TELEMETRY_PARTITIONS_AHEAD_DAYS = env_int("FLEETPORTAL_TELEMETRY_PARTITIONS_AHEAD_DAYS", 3)
# What a telemetry message may hold: more fields drop the message; a longer or odd name drops
# the field; a `ts` further than this in the past or future drops the message.
TELEMETRY_MAX_FIELDS = env_int("FLEETPORTAL_TELEMETRY_MAX_FIELDS", 32)
TELEMETRY_MAX_NAME_LENGTH = env_int("FLEETPORTAL_TELEMETRY_MAX_NAME_LENGTH", 64)
TELEMETRY_MAX_PAST_SECONDS = env_int("FLEETPORTAL_TELEMETRY_MAX_PAST_SECONDS", 7 * 86400)
TELEMETRY_MAX_FUTURE_SECONDS = env_int("FLEETPORTAL_TELEMETRY_MAX_FUTURE_SECONDS", 300)
# Each device's points per second (and at once) stored by the bridge; more are dropped and
# counted (Redis hash fp:telemetry:dropped). 0 = no limit.
TELEMETRY_POINTS_PER_SECOND = env_int("FLEETPORTAL_TELEMETRY_POINTS_PER_SECOND", 100)
TELEMETRY_POINTS_BURST = env_int("FLEETPORTAL_TELEMETRY_POINTS_BURST", 1000)
# Dropped points are logged at most once per this many seconds per bridge.
TELEMETRY_LOG_INTERVAL_SECONDS = env_int("FLEETPORTAL_TELEMETRY_LOG_INTERVAL_SECONDS", 60)
# Rollups take points received at least this long ago (a bridge batch commits within it).
TELEMETRY_ROLLUP_LAG_SECONDS = env_int("FLEETPORTAL_TELEMETRY_ROLLUP_LAG_SECONDS", 30)
TELEMETRY_ROLLUP_SECONDS = env_int("FLEETPORTAL_TELEMETRY_ROLLUP_SECONDS", 60)
CELERY_BEAT_SCHEDULE["telemetry-rollups"] = {
    "task": "monitoring.telemetry.tasks.roll_up",
    "schedule": TELEMETRY_ROLLUP_SECONDS,
}
CELERY_BEAT_SCHEDULE["telemetry-partitions"] = {
    "task": "monitoring.telemetry.tasks.maintain_partitions",
    "schedule": 3600,
}
# --- Monitoring: alerts (monitoring/alerts/) ---
# Alert rules are evaluated this often (seconds); a rule's for_seconds counts from the evaluation
# that first saw its condition hold, so alerts are raised up to this much later than for_seconds.
ALERT_EVALUATION_SECONDS = env_int("FLEETPORTAL_ALERT_EVALUATION_SECONDS", 30)
CELERY_BEAT_SCHEDULE["evaluate-alert-rules"] = {
    "task": "monitoring.alerts.tasks.evaluate_alert_rules",
    "schedule": ALERT_EVALUATION_SECONDS,
}
# Webhooks: signed with HMAC-SHA256 under this secret (prefer *_FILE); without it no webhook is
# sent (each delivery fails, visibly). docs/monitoring-alerts.md says how receivers verify.
WEBHOOK_SECRET = env_str("FLEETPORTAL_WEBHOOK_SECRET", "")
# Private, loopback and link-local webhook targets are refused (SSRF) unless this is true.
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("FLEETPORTAL_ALERT_WEBHOOK_ALLOW_PRIVATE", False)
# One attempt's whole exchange (connect, send, answer), in seconds.
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_int("FLEETPORTAL_ALERT_WEBHOOK_TIMEOUT_SECONDS", 5)
# Attempts before a delivery is marked failed; the wait doubles after each failure, from the
# base, capped at an hour (defaults: 30 s, 1 min, 2 min, … 8 tries over ~1 h).
ALERT_WEBHOOK_MAX_ATTEMPTS = env_int("FLEETPORTAL_ALERT_WEBHOOK_MAX_ATTEMPTS", 8)
ALERT_WEBHOOK_RETRY_SECONDS = env_int("FLEETPORTAL_ALERT_WEBHOOK_RETRY_SECONDS", 30)
# The API schema names the rules' kinds apart from the rollouts' `kind` (both get a name).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "AlertRuleKind": "monitoring.alerts.choices.RuleKind",
        "RolloutKind": "firmware.rollouts.choices.RolloutKind",
    }
)
# Deliveries whose retry task was lost (a worker killed) are sent again by this sweep.
CELERY_BEAT_SCHEDULE["retry-webhook-deliveries"] = {
    "task": "monitoring.alerts.tasks.retry_webhook_deliveries",
    "schedule": 60,
}
# --- Monitoring: fleet summary, /metrics, /healthz (monitoring/summary/) ---
# Beat recounts the fleet summary this often (about 1 s of database time at a million devices);
# the page and GET /api/v1/fleet/summary/ read the stored counts, live pages hear of a change.
FLEET_SUMMARY_REFRESH_SECONDS = env_int("FLEETPORTAL_FLEET_SUMMARY_REFRESH_SECONDS", 15)
# The online ratio is sampled at most this often (by the refresh); the page shows 24 h of it.
FLEET_ONLINE_SAMPLE_SECONDS = env_int("FLEETPORTAL_FLEET_ONLINE_SAMPLE_SECONDS", 300)
CELERY_BEAT_SCHEDULE["refresh-fleet-summary"] = {
    "task": "monitoring.summary.tasks.refresh_summary",
    "schedule": FLEET_SUMMARY_REFRESH_SECONDS,
}
CELERY_IMPORTS.append("monitoring.summary.tasks")
# Celery's own lines about monitoring's periodic tasks are DEBUG, like the engine ticks'.
QUIET_TASKS = QUIET_TASKS | {
    "monitoring.summary.tasks.refresh_summary",
    "monitoring.presence.tasks.sweep_heartbeats",
    "monitoring.alerts.tasks.evaluate_alert_rules",
    "monitoring.alerts.tasks.retry_webhook_deliveries",
    "monitoring.telemetry.tasks.roll_up",
    "monitoring.telemetry.tasks.maintain_partitions",
}
# /metrics needs `Authorization: Bearer <this>`; when empty, only a request from the machine
# itself (loopback, and no proxy's forwarding header) may read it.
METRICS_TOKEN = env_str("FLEETPORTAL_METRICS_TOKEN", "")
# Celery queues whose length /metrics reports (names on the Celery broker).
METRICS_CELERY_QUEUES = env_list("FLEETPORTAL_METRICS_CELERY_QUEUES", [CELERY_TASK_DEFAULT_QUEUE])
# The bridge adds its batch counters to Redis at most this often, in ms (0: after every batch).
METRICS_PUSH_MS = env_int("FLEETPORTAL_METRICS_PUSH_MS", 1000)
# /metrics and /healthz requests per minute per address (0 = no limit).
RATE_LIMITS["monitoring-address"] = (
    env_int("FLEETPORTAL_MONITORING_REQUESTS_PER_MINUTE", 600),
    60,
    0,
)


# --- Console (L) ---
# The admin with the console's site: navigation grouped for operators, the fleet dashboard as
# its home page (fleetportal/admin_site.py). Same app label ("admin"), so URLs stay as they are.
INSTALLED_APPS[INSTALLED_APPS.index("django.contrib.admin")] = (
    "fleetportal.admin_apps.ConsoleAdminConfig"
)

# --- Console (G): the device list's exports and bulk actions (devices/device_list.py) ---
# A bulk action on the list's filtered set takes at most this many devices (refused beyond it,
# the cap stated); it runs as a Celery job of steps of 500 devices.
BULK_ACTION_MAX_DEVICES = env_int("FLEETPORTAL_BULK_ACTION_MAX_DEVICES", 100_000)
CELERY_IMPORTS.append("devices.bulk_actions")
# CSV exports of the device list per user per minute (0 = no limit): each streams the filter's
# rows from a server-side cursor, up to the whole fleet.
RATE_LIMITS["device-export-user"] = (env_int("FLEETPORTAL_DEVICE_EXPORTS_PER_MINUTE", 10), 60, 0)


# --- AWS IoT Core as a second device gateway (aws_gateway/, docs/aws.md) ---
# Credentials from the environment or AWS's standard chain; the region from there too unless set.
AWS_REGION = env_str("FLEETPORTAL_AWS_REGION", "")
# Every AWS client at this endpoint instead of AWS's (a local emulator); empty = AWS itself.
AWS_ENDPOINT_URL = env_str("FLEETPORTAL_AWS_ENDPOINT_URL", "")
# botocore's adaptive retries (backoff on throttling) and its timeouts per call.
AWS_MAX_ATTEMPTS = env_int("FLEETPORTAL_AWS_MAX_ATTEMPTS", 8)
AWS_TIMEOUT_SECONDS = env_int("FLEETPORTAL_AWS_TIMEOUT_SECONDS", 10)
# The registry (aws_gateway/registry.py, docs/aws-registry.md): the fleet's IoT policy, what
# decommissioning does to a thing (delete, or disable: kept, marked decommissioned), and how
# often beat syncs the devices waiting for it (a batch at a time; failures back off doubling
# from AWS_SYNC_RETRY_SECONDS up to an hour).
AWS_POLICY_NAME = env_str("FLEETPORTAL_AWS_POLICY_NAME", "fleetportal-devices")
AWS_DECOMMISSION = env_str("FLEETPORTAL_AWS_DECOMMISSION", "disable")
AWS_SYNC_SECONDS = env_int("FLEETPORTAL_AWS_SYNC_SECONDS", 15)
AWS_SYNC_BATCH = env_int("FLEETPORTAL_AWS_SYNC_BATCH", 200)
AWS_SYNC_RETRY_SECONDS = env_int("FLEETPORTAL_AWS_SYNC_RETRY_SECONDS", 30)
# What `manage.py aws_setup` creates: the SQS queue the topic rules forward device reports to,
# and the IAM role AWS IoT assumes to send there (created outside the portal: IAM is yours).
AWS_QUEUE_NAME = env_str("FLEETPORTAL_AWS_QUEUE_NAME", "fleetportal-device-reports")
AWS_RULE_ROLE_ARN = env_str("FLEETPORTAL_AWS_RULE_ROLE_ARN", "")
CELERY_IMPORTS.append("aws_gateway.tasks")
CELERY_BEAT_SCHEDULE["aws-registry-sync"] = {
    "task": "aws_gateway.tasks.sync_due_things",
    "schedule": AWS_SYNC_SECONDS,
}
# The account of thing and job ARNs; empty: asked once of STS (GetCallerIdentity).
AWS_ACCOUNT_ID = env_str("FLEETPORTAL_AWS_ACCOUNT_ID", "")
# The SQS queue the AWS IoT rules forward shadow documents, lifecycle events, job execution
# events and telemetry to (manage.py runsqs; bin/run starts it only when this is set), and an
# optional queue for messages that are not what the rules send (else they are only deleted).
AWS_QUEUE_URL = env_str("FLEETPORTAL_AWS_QUEUE_URL", "")
AWS_DEAD_LETTER_QUEUE_URL = env_str("FLEETPORTAL_AWS_DEAD_LETTER_QUEUE_URL", "")
# A forwarded message's own payload larger than this is refused (the broker's limit; AWS's
# shadow documents are at most 8 KB each side of them).
AWS_MAX_PAYLOAD_BYTES = env_int("FLEETPORTAL_AWS_MAX_PAYLOAD_BYTES", 128 * 1024)
# Shadow changes and jobs to AWS: retried with doubling pauses up to this long; beat sweeps
# what is due every FLEETPORTAL_AWS_SEND_SECONDS, and reconciles jobs every ..._RECONCILE_SECONDS.
AWS_RETRY_MAX_SECONDS = env_int("FLEETPORTAL_AWS_RETRY_MAX_SECONDS", 300)
AWS_SEND_SECONDS = env_int("FLEETPORTAL_AWS_SEND_SECONDS", 10)
AWS_RECONCILE_SECONDS = env_int("FLEETPORTAL_AWS_RECONCILE_SECONDS", 300)
# Firmware artifacts of AWS jobs as presigned S3 URLs from this bucket (uploaded on first use);
# empty: the portal's own signed download URLs. Valid for ..._URL_SECONDS (SigV4: at most 7 days).
AWS_ARTIFACT_BUCKET = env_str("FLEETPORTAL_AWS_ARTIFACT_BUCKET", "")
AWS_ARTIFACT_URL_SECONDS = env_int("FLEETPORTAL_AWS_ARTIFACT_URL_SECONDS", 7 * 86400)
CELERY_BEAT_SCHEDULE["aws-send"] = {"task": "aws_gateway.tasks.send", "schedule": AWS_SEND_SECONDS}
CELERY_BEAT_SCHEDULE["aws-reconcile-jobs"] = {
    "task": "aws_gateway.tasks.reconcile_jobs",
    "schedule": AWS_RECONCILE_SECONDS,
}
QUIET_TASKS = QUIET_TASKS | {
    "aws_gateway.tasks.sync_due_things",
    "aws_gateway.tasks.send",
    "aws_gateway.tasks.reconcile_jobs",
}


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "client_errors_without_traceback": {
            "()": "fleetportal.log_filters.ClientErrorsWithoutTraceback"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["client_errors_without_traceback"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("FLEETPORTAL_LOG_LEVEL", "INFO")},
}
