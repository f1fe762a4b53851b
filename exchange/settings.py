"""Clearway settings: the one place that reads the environment (see README for the variables)."""

from __future__ import annotations

from pathlib import Path

from exchange.envvars import ConfigError, Env

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()

CLEARWAY_ENV = env.choice("CLEARWAY_ENV", "dev", ("dev", "test", "prod"))
DEBUG = env.bool("DEBUG", CLEARWAY_ENV == "dev")
PROD = CLEARWAY_ENV == "prod"

if PROD:
    # DEBUG pages list URL patterns and settings, and DEBUG keeps every query in memory.
    if DEBUG:
        raise ConfigError("DEBUG", "must be off when CLEARWAY_ENV=prod")
    SECRET_KEY = env.str("SECRET_KEY")
    # Django's own deploy check (security.W009) asks for 50+ characters, 5+ of them distinct.
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ConfigError(
            "SECRET_KEY", "must be at least 50 characters (5+ distinct) when CLEARWAY_ENV=prod"
        )
else:
    # A fixed key keeps dev sessions and tokens valid across restarts; it is never used in prod.
    SECRET_KEY = env.str("SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production-0000")

# `testserver` is Django's test client's host: never a default in prod.
ALLOWED_HOSTS = env.hosts(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", *([] if PROD else ["testserver"])]
)
CORS_ALLOWED_ORIGINS = env.origins("CORS_ALLOWED_ORIGINS", [])
CSRF_TRUSTED_ORIGINS = CORS_ALLOWED_ORIGINS

DATABASES = {
    "default": env.database("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clearway"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["OPTIONS"] = {"connect_timeout": 5}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss"))
TEMPORAL_ADDRESS = env.host_port("TEMPORAL_ADDRESS", "127.0.0.1:7233")
TEMPORAL_NAMESPACE = env.str("TEMPORAL_NAMESPACE", "default")
TEMPORAL_TASK_QUEUE = env.str("TEMPORAL_TASK_QUEUE", "clearway")
TEMPORAL_UI_URL = env.url("TEMPORAL_UI_URL", "http://127.0.0.1:8233", ("http", "https"))
CHAIN_RPC_URL = env.url("CHAIN_RPC_URL", "http://127.0.0.1:8545", ("http", "https", "ws", "wss"))
CHAIN_ID = env.int("CHAIN_ID", 31337, minimum=1)
# Sign-in with Ethereum: the domain and URI a trader's wallet must name in the message it signs.
SIWE_DOMAIN = env.str("SIWE_DOMAIN", "127.0.0.1:8000")
SIWE_URI = env.url("SIWE_URI", "http://127.0.0.1:8000", ("http", "https"))
# The vault (settlement) contract: the EIP-712 domain's verifyingContract. `make run` sets it
# from the deployment it makes; empty means "not configured" and order endpoints answer 503.
VAULT_ADDRESS = env.str("VAULT_ADDRESS", "")
if VAULT_ADDRESS and not (len(VAULT_ADDRESS) == 42 and VAULT_ADDRESS.startswith("0x")):
    raise ConfigError(
        "VAULT_ADDRESS", f"expected a 0x-prefixed 20-byte address, got {VAULT_ADDRESS!r}"
    )
# The longest an order may live: its signed expiry must be within this many seconds from now.
ORDER_MAX_LIFETIME_SECONDS = env.int("ORDER_MAX_LIFETIME_SECONDS", 90 * 24 * 3600, minimum=60)
# Sign-in endpoints are public and write to the database: a token bucket per client address.
AUTH_RATE_PER_SECOND = env.int("AUTH_RATE_PER_SECOND", 5, minimum=1)
AUTH_RATE_BURST = env.int("AUTH_RATE_BURST", 30, minimum=1)
AUTH_TOKEN_TTL_SECONDS = env.int("AUTH_TOKEN_TTL_SECONDS", 24 * 3600, minimum=60)
# Websockets: heartbeat interval, and how long a user socket may take to authenticate.
REALTIME_HEARTBEAT_SECONDS = env.int("REALTIME_HEARTBEAT_SECONDS", 5, minimum=1)
REALTIME_AUTH_TIMEOUT_SECONDS = env.int("REALTIME_AUTH_TIMEOUT_SECONDS", 10, minimum=1)
# Temporal workers: workflow ids may carry a prefix so several stacks can share one namespace.
TEMPORAL_WORKFLOW_ID_PREFIX = env.raw("TEMPORAL_WORKFLOW_ID_PREFIX") or ""
TEMPORAL_METRICS_ADDR = env.str("TEMPORAL_METRICS_ADDR", "127.0.0.1")
TEMPORAL_METRICS_PORT = env.int("TEMPORAL_METRICS_PORT", 9464, minimum=0)
TEMPORAL_ACTIVITY_THREADS = env.int("TEMPORAL_ACTIVITY_THREADS", 8, minimum=1)
TEMPORAL_STICKY_TIMEOUT_SECONDS = env.seconds("TEMPORAL_STICKY_TIMEOUT_SECONDS", 5, minimum=1)

# The chain: how deep a block must be before its deposits count or a batch/payout is final,
# how the chain watcher scans, and the operator that signs settlement and payouts.
CONFIRMATION_DEPTH = env.int("CONFIRMATION_DEPTH", 1, minimum=1)
CHAIN_POLL_SECONDS = env.seconds("CHAIN_POLL_SECONDS", 1, minimum=0.05)
CHAIN_SCAN_MAX_BLOCKS = env.int("CHAIN_SCAN_MAX_BLOCKS", 500, minimum=1)
CHAIN_KEEP_BLOCKS = env.int("CHAIN_KEEP_BLOCKS", 1000, minimum=1)
CHAIN_RPC_TIMEOUT = env.seconds("CHAIN_RPC_TIMEOUT", 10, minimum=0.1)
CHAIN_DEPLOYMENT_FILE = env.str(
    "CHAIN_DEPLOYMENT_FILE",
    str(Path(env.str("CLEARWAY_VAR_DIR", str(BASE_DIR / "var"))) / "deployment.json"),
)
# Unset (None): taken from the deployment file, like the operator address.
VAULT_DEPLOYED_BLOCK = (
    env.int("VAULT_DEPLOYED_BLOCK", 0, minimum=0) if env.raw("VAULT_DEPLOYED_BLOCK") else None
)
SETTLEMENT_OPERATOR_ADDRESS = env.raw("SETTLEMENT_OPERATOR_ADDRESS") or ""
# A secret: give it as SETTLEMENT_OPERATOR_KEY_FILE in production. Empty: an unlocked node account.
SETTLEMENT_OPERATOR_KEY = env.raw("SETTLEMENT_OPERATOR_KEY") or ""

# Backups (docs/OPERATIONS.md): base backups and the streamed WAL go under BACKUP_DIR (in
# production a mounted object-storage bucket or a disk of its own); the newest BACKUP_KEEP base
# backups are kept, with the WAL they need.
BACKUP_DIR = env.str(
    "BACKUP_DIR", str(Path(env.str("CLEARWAY_VAR_DIR", str(BASE_DIR / "var"))) / "backups")
)
BACKUP_KEEP = env.int("BACKUP_KEEP", 7, minimum=1)
RPC_BREAKER_FAILURES = env.int("RPC_BREAKER_FAILURES", 5, minimum=1)
RPC_BREAKER_COOLDOWN_SECONDS = env.seconds("RPC_BREAKER_COOLDOWN_SECONDS", 10, minimum=0.1)

# Settlement: a batch is cut when this many trades wait or the oldest has waited this long.
SETTLEMENT_BATCH_MAX_TRADES = env.int("SETTLEMENT_BATCH_MAX_TRADES", 1000, minimum=1)
SETTLEMENT_BATCH_MAX_SECONDS = env.seconds("SETTLEMENT_BATCH_MAX_SECONDS", 2, minimum=0.1)
SETTLEMENT_CUT_WAIT_SECONDS = env.seconds("SETTLEMENT_CUT_WAIT_SECONDS", 5, minimum=0.1)
SETTLEMENT_CUT_POLL_SECONDS = env.seconds("SETTLEMENT_CUT_POLL_SECONDS", 0.1, minimum=0.01)
SETTLEMENT_MAX_TRADE_ATTEMPTS = env.int("SETTLEMENT_MAX_TRADE_ATTEMPTS", 3, minimum=1)
SETTLEMENT_RECEIPT_TIMEOUT = env.seconds("SETTLEMENT_RECEIPT_TIMEOUT", 60, minimum=1)

# Withdrawals.
WITHDRAWAL_APPROVAL_TIMEOUT_SECONDS = env.int(
    "WITHDRAWAL_APPROVAL_TIMEOUT_SECONDS", 72 * 3600, minimum=1
)
WITHDRAWAL_POLL_SECONDS = env.seconds("WITHDRAWAL_POLL_SECONDS", 2, minimum=0.05)
WITHDRAWAL_UNFUNDED_TIMEOUT_SECONDS = env.int(
    "WITHDRAWAL_UNFUNDED_TIMEOUT_SECONDS", 3600, minimum=1
)
WITHDRAWAL_HEARTBEAT_TIMEOUT_SECONDS = env.seconds(
    "WITHDRAWAL_HEARTBEAT_TIMEOUT_SECONDS", 10, minimum=1
)
WITHDRAWAL_ADDRESS_COOLING_OFF_SECONDS = env.int(
    "WITHDRAWAL_ADDRESS_COOLING_OFF_SECONDS", 24 * 3600, minimum=0
)
WITHDRAWAL_ALLOWLIST_REQUIRED = env.bool("WITHDRAWAL_ALLOWLIST_REQUIRED", False)

# Who may read /metrics on the API port: client addresses or networks (REMOTE_ADDR, so the
# proxy's own address when one fronts the API). Everyone else gets 403.
METRICS_ALLOWED_NETWORKS = env.networks("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
# The admin's login form: a token bucket per client address over its POSTs (guessing passwords).
ADMIN_LOGIN_RATE_PER_MINUTE = env.int("ADMIN_LOGIN_RATE_PER_MINUTE", 5, minimum=1)
ADMIN_LOGIN_BURST = env.int("ADMIN_LOGIN_BURST", 10, minimum=1)

# HTTPS in prod (`manage.py check --deploy` passes with no warning; tests/ops/test_settings.py).
# TLS usually ends at a proxy: name the header it sets (SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto)
# so Django sees https there, or the SSL redirect loops.
if PROD:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", True)
    # Probes and scrapes come over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    _proxy_header = env.raw("SECURE_PROXY_SSL_HEADER")
    if _proxy_header:
        SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https")

# Ops gauges the Temporal worker samples from the database (exchange.ops.gauges): queues every
# OPS_SAMPLE_SECONDS; the ledger check and vault reconciliation every LEDGER_CHECK_SECONDS (0: off).
OPS_SAMPLE_SECONDS = env.seconds("OPS_SAMPLE_SECONDS", 15, minimum=1)
LEDGER_CHECK_SECONDS = env.int("LEDGER_CHECK_SECONDS", 300, minimum=0)

# Alertmanager: where operators' resolutions create silences (its v2 API), and the bearer token
# its webhook must present to /api/v1/alerts/webhook (a secret: ALERTMANAGER_WEBHOOK_TOKEN_FILE in
# production; unset there, the webhook refuses every call).
ALERTMANAGER_URL = env.url("ALERTMANAGER_URL", "http://127.0.0.1:9093", ("http", "https"))
ALERTMANAGER_WEBHOOK_TOKEN = env.str(
    "ALERTMANAGER_WEBHOOK_TOKEN",
    "" if CLEARWAY_ENV == "prod" else "dev-only-alertmanager-webhook-token",
)
ALERTMANAGER_TIMEOUT = env.seconds("ALERTMANAGER_TIMEOUT", 5, minimum=0.1)
# Prometheus's query API, read (server-side, for staff) by the ops dashboard at /ops/dashboard.
PROMETHEUS_URL = env.url("PROMETHEUS_URL", "http://127.0.0.1:9090", ("http", "https"))

# Seconds each /readyz dependency check may take before it counts as down.
READINESS_TIMEOUT = env.int("READINESS_TIMEOUT", 2, minimum=1)

INSTALLED_APPS = [
    "django_prometheus",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "exchange.ops",
    "exchange.markets",
    "exchange.accounts",
    "exchange.ledger",
    "exchange.trading",
    "exchange.risk",
    "exchange.custody",
    "exchange.withdrawals",
    "exchange.alerts",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "exchange.errors.ApiErrorBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # /static/ from the app itself (gunicorn serves no files), before anything else does work.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "exchange.urls"
WSGI_APPLICATION = "exchange.wsgi.application"
ASGI_APPLICATION = "exchange.asgi.application"

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
                "exchange.ops.context.links",
            ],
        },
    },
]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # No socket timeout: channels-redis blocks reading for up to 5 s, and redis-py 8's own
        # 5 s default would kill every idle consumer (channels_redis#422).
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            # JSON, not msgpack: events carry amounts as integers in base units, and msgpack
            # cannot encode one of 2**64 or more (18.4 WETH at 18 decimals).
            "serializer_format": "json",
        },
    },
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Refuses deep nesting and lone surrogates (400 malformed_request) instead of a 500.
    "DEFAULT_PARSER_CLASSES": ["exchange.parsers.JSONParser"],
    "DEFAULT_METADATA_CLASS": "exchange.parsers.Metadata",
    "EXCEPTION_HANDLER": "exchange.errors.exception_handler",
    # Secure by default: a view is for signed-in traders unless it says otherwise.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "exchange.accounts.authentication.BearerTokenAuthentication"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["exchange.accounts.permissions.IsTrader"],
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Clearway API",
    "DESCRIPTION": (
        "Hybrid exchange: wallet-signed orders matched off-chain, settled on-chain in batches. "
        "Every error body is {code, message, extra}; codes are listed on each operation."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and docs are public, unlike the API's default (signed-in traders).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Serve Swagger UI from the installed sidecar package: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several components have a `status` field: name the alerts' own choice set (otherwise
    # drf-spectacular names it by a hash and warns, which `check --deploy` must not).
    "ENUM_NAME_OVERRIDES": {"AlertStatusEnum": "exchange.alerts.models.Alert.Status"},
    # Every operation can answer 500 server_error (exchange.errors.server_error): say so.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "exchange.errors.openapi_document_server_error",
    ],
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# The project's own assets (favicon; later pages' CSS/JS), next to the apps' static/ folders.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # The ops dashboard's charting library, from npm (package.json): served by us, no CDN.
    ("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist"),
]
# collectstatic's output (`make run` runs it): under CLEARWAY_VAR_DIR like the other local state.
_STATIC_ROOT_DEFAULT = Path(env.str("CLEARWAY_VAR_DIR", str(BASE_DIR / "var"))) / "static"
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(_STATIC_ROOT_DEFAULT)))
# WhiteNoise serves STATIC_ROOT under content-hashed, compressed names (cached forever); with
# DEBUG on it also finds files in the apps, so a new file shows up without collectstatic. Tests
# keep Django's plain storage, as Django advises: the hashed storage needs collectstatic's
# manifest, which unit tests don't build (tests/browser builds one and serves it for real).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if CLEARWAY_ENV == "test"
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
if CLEARWAY_ENV == "test":
    # Serve from the apps, as in dev: no collectstatic before a test run.
    WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
