"""Bullpen's settings: one module, read through django-environ.

Production differs from development only by environment variables; every one is
documented in .env.example.
"""

from __future__ import annotations

from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
DEV_SECRET_KEY = "dev-only-insecure-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
# Old keys still accepted for sessions and signed values during a rotation.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "django_prometheus",
    "accounts",
    "market",
    "portfolio",
    "trading",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.ActiveAccountMiddleware",
    "accounts.middleware.UserTimezoneMiddleware",
    "accounts.middleware.SessionTrackingMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Writes a refused admin request (403) of a staff member to the audit log.
    "accounts.audit.AdminDeniedMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Turns django-ratelimit's Ratelimited into RATELIMIT_VIEW (a 429 page).
    "django_ratelimit.middleware.RatelimitMiddleware",
    # Last, so that a locked-out login is answered after authentication ran.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
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
                "csp.context_processors.nonce",
                "config.context_processors.site",
                "market.context_processors.quotes_status",
                "portfolio.context_processors.wallet",
            ],
            # As in Django 6, {% partialdef %} / {% partial %} need no {% load %}.
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

# --- Data stores -----------------------------------------------------------
# config.embedded exports both URLs when it starts the embedded servers.
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/bullpen")
}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
# Reconnect after PostgreSQL restarts: a broken connection is dropped at the end
# of the request instead of being reused.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("TEST", {})["NAME"] = env(
    "DATABASE_TEST_NAME", default="test_bullpen"
)

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")


def redis_db_url(db: int) -> str:
    """REDIS_URL with its database number replaced: broker, cache and channels are kept apart."""
    parts = urlsplit(REDIS_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


REDIS_BROKER_URL = redis_db_url(env.int("REDIS_BROKER_DB", default=0))
REDIS_CACHE_URL = redis_db_url(env.int("REDIS_CACHE_DB", default=1))
REDIS_CHANNELS_URL = redis_db_url(env.int("REDIS_CHANNELS_DB", default=2))
# Market state that is not user-owned: the tick stream, tick locks, provider health.
REDIS_MARKET_URL = redis_db_url(env.int("REDIS_MARKET_DB", default=3))
# Site-wide business metrics (config.metrics): every process counts into the same place.
REDIS_METRICS_URL = redis_db_url(env.int("REDIS_METRICS_DB", default=4))

CACHES = {
    "default": {
        # Django's RedisCache, except that an unreachable Redis reads as an empty cache
        # instead of a 500 (config/cache.py; docs/moderation.md).
        "BACKEND": "config.cache.ResilientRedisCache",
        "LOCATION": REDIS_CACHE_URL,
        "KEY_PREFIX": "bullpen",
        "OPTIONS": {
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
            "retry_seconds": env.float("CACHE_RETRY_SECONDS", default=5.0),
        },
    }
}

# The websocket channel layer. "pubsub" (channels_redis.pubsub) makes a group send one
# PUBLISH that each web process receives once; "core" (channels_redis.core) copies the
# message into a list per connection. Measured by bench/live.py: see docs/live.md.
CHANNEL_LAYER = env("CHANNEL_LAYER", default="pubsub")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": {
            "core": "channels_redis.core.RedisChannelLayer",
            "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
        }[CHANNEL_LAYER],
        # Pub/sub channels are not per Redis database: the prefix keeps deployments
        # sharing a Redis apart. capacity/expiry apply to "core" only.
        "CONFIG": {
            # redis-py's asyncio pool raises past 100 connections; a burst of connects
            # (every tab reconnecting after a restart) needs more.
            "hosts": [
                {
                    "address": REDIS_CHANNELS_URL,
                    "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=1000),
                    # redis-py 8 defaults to a 5 s socket timeout, which cuts the core
                    # layer's 5 s blocking BZPOPMIN and tears consumers down when idle
                    # (django/channels_redis#422).
                    "socket_timeout": 10,
                }
            ],
            "prefix": env("CHANNEL_LAYER_PREFIX", default="bullpen"),
            "capacity": 1500,
            "expiry": 30,
        },
    }
}

# --- Celery ----------------------------------------------------------------
CELERY_BROKER_URL = REDIS_BROKER_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Imported by the worker at start: config.metrics counts every task through Celery's signals.
CELERY_IMPORTS = ["config.metrics"]

# --- Auth ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.HandleOrEmailBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        # Our user has a handle and a display name, not Django's username/first/last name.
        "OPTIONS": {"user_attributes": ("handle", "email", "display_name")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# Failed-login lockout (django-axes): per username and IP, counted in the database.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
# Count failures per account, whether the attempt named its handle or its email.
AXES_USERNAME_CALLABLE = "accounts.backends.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "errors/lockout.html"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# Rate limits (django-ratelimit) count in the Redis cache.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_VIEW = "config.views.rate_limited"
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
# While the cache (Redis) is unreachable the counts cannot be read: true lets requests
# through (axes' lockout, in PostgreSQL, still guards logins), false answers 429.
RATELIMIT_FAIL_OPEN = env.bool("RATELIMIT_FAIL_OPEN", default=True)
# Order tickets posted (review + confirm) per player.
RATELIMIT_ORDERS_USER = env("RATELIMIT_ORDERS_USER", default="120/m")
# Offers made or countered (review + confirm) per player.
RATELIMIT_OFFERS_USER = env("RATELIMIT_OFFERS_USER", default="30/m")
# django-ratelimit rates ("count/period", period s, m, h or d) for the account forms' POSTs.
RATELIMIT_LOGIN_IP = env("RATELIMIT_LOGIN_IP", default="30/m")
RATELIMIT_LOGIN_USERNAME = env("RATELIMIT_LOGIN_USERNAME", default="10/m")
RATELIMIT_SIGNUP_IP = env("RATELIMIT_SIGNUP_IP", default="10/h")
RATELIMIT_PASSWORD_RESET_IP = env("RATELIMIT_PASSWORD_RESET_IP", default="10/h")
RATELIMIT_PASSWORD_RESET_EMAIL = env("RATELIMIT_PASSWORD_RESET_EMAIL", default="3/h")

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# No script reads the CSRF cookie: base.html hands htmx the token through hx-headers.
CSRF_COOKIE_HTTPONLY = True

# --- Security (production flips these on through the environment) --------
SECURE = env.bool("SECURE", default=False)
if SECURE and SECRET_KEY in ("", DEV_SECRET_KEY):
    raise ImproperlyConfigured("SECURE=true needs SECRET_KEY: 50 or more random characters.")
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SECURE)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE else None
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Load balancers and Prometheus call these over plain HTTP, straight to daphne.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# Request bodies: Django answers 400 past these; the web server should cap too.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=256 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# Content Security Policy: no inline script anywhere. htmx is configured through a
# <meta> tag with inline styles off (see templates/base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF, "ws:", "wss:"],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Email -----------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Bullpen <noreply@bullpen.local>")

# --- I18N / time -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (WhiteNoise serves them from daphne) ----------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- The game --------------------------------------------------------------
STARTING_CASH = Decimal(env.str("STARTING_CASH", default="100000.00"))
MAX_OPEN_ORDERS = env.int("MAX_OPEN_ORDERS", default=100)
MAX_OPEN_OFFERS = env.int("MAX_OPEN_OFFERS", default=20)
MAX_WATCHLIST = env.int("MAX_WATCHLIST", default=50)
# The fill model: commission = flat + bps of notional; price moved by half the spread.
FILL_COMMISSION_FLAT = Decimal(env.str("FILL_COMMISSION_FLAT", default="1.00"))
FILL_COMMISSION_BPS = Decimal(env.str("FILL_COMMISSION_BPS", default="5"))
FILL_HALF_SPREAD_BPS = Decimal(env.str("FILL_HALF_SPREAD_BPS", default="2"))
# DAY orders expire at this UTC time: the simulated market trades round the clock.
SESSION_CLOSE_UTC = dtime.fromisoformat(env("SESSION_CLOSE_UTC", default="21:00"))
OFFER_PRICE_BAND = Decimal(env.str("OFFER_PRICE_BAND", default="0.10"))
# Performance: the yearly risk-free rate the Sharpe ratio subtracts (0.04 is 4%), and
# how often the leaderboard is recomputed.
RISK_FREE_RATE = Decimal(env.str("RISK_FREE_RATE", default="0.04"))
LEADERBOARD_RECOMPUTE_SECONDS = env.int("LEADERBOARD_RECOMPUTE_SECONDS", default=60)
# Collusion signals (trading.collusion): trades between the same two players within
# this many days; this many returns make a round-trip flag; this many takes all at
# the band's edge (this fraction of OFFER_PRICE_BAND from the quote) favouring one
# player make a one-way flag.
COLLUSION_WINDOW_DAYS = env.int("COLLUSION_WINDOW_DAYS", default=7)
COLLUSION_ROUND_TRIPS = env.int("COLLUSION_ROUND_TRIPS", default=3)
COLLUSION_ONE_WAY_TAKES = env.int("COLLUSION_ONE_WAY_TAKES", default=3)
COLLUSION_EDGE_FRACTION = Decimal(env.str("COLLUSION_EDGE_FRACTION", default="0.8"))
# `manage.py reconcile` checks reserved cash and shares against what these hold: dotted
# paths of functions returning {portfolio_id: (cash, {stock_id: quantity})}.
RECONCILE_RESERVATION_SOURCES = env.list(
    "RECONCILE_RESERVATION_SOURCES",
    default=[
        "trading.reconcile.order_reservations",
        "trading.offer_reconcile.offer_reservations",
    ],
)
# Stop and trailing buys reserve cash for the trigger price plus this fraction (a gap).
ORDER_PROTECTION_BAND = Decimal(env.str("ORDER_PROTECTION_BAND", default="0.05"))
# Threads that fill a tick's triggered orders (each fill is its own transaction).
TRIGGER_FILL_WORKERS = env.int("TRIGGER_FILL_WORKERS", default=4)
# A tick firing more orders than this hands them to Celery tasks of this many (filled by
# the worker processes in parallel); fewer are filled by the tick itself. 0: always itself.
TRIGGER_FILL_TASK_BATCH = env.int("TRIGGER_FILL_TASK_BATCH", default=50)

# --- The market --------------------------------------------------------------
MARKET_PROVIDER = env("MARKET_PROVIDER", default="simulated")
MARKET_SEED = env.int("MARKET_SEED", default=42)
MARKET_TICK_SECONDS = env.int(
    "MARKET_TICK_SECONDS", default=5 if MARKET_PROVIDER in ("simulated", "replay") else 60
)
MARKET_REPLAY_SPEED = env.float("MARKET_REPLAY_SPEED", default=60.0)
MARKET_MAX_JUMP = Decimal(env.str("MARKET_MAX_JUMP", default="0.25"))
FINNHUB_API_KEY = env("FINNHUB_API_KEY", default="")
# The real quote sources' HTTP client (market/providers/http_client.py).
MARKET_HTTP_TIMEOUT = env.float("MARKET_HTTP_TIMEOUT", default=5.0)
MARKET_HTTP_RETRIES = env.int("MARKET_HTTP_RETRIES", default=2)
MARKET_HTTP_BACKOFF = env.float("MARKET_HTTP_BACKOFF", default=0.5)
MARKET_BREAKER_FAILURES = env.int("MARKET_BREAKER_FAILURES", default=5)
MARKET_BREAKER_OPEN_SECONDS = env.float("MARKET_BREAKER_OPEN_SECONDS", default=60.0)
MARKET_YAHOO_BUDGET_PER_MINUTE = env.int("MARKET_YAHOO_BUDGET_PER_MINUTE", default=60)
MARKET_FINNHUB_BUDGET_PER_MINUTE = env.int("MARKET_FINNHUB_BUDGET_PER_MINUTE", default=55)
# Called in order after each tick's prices are committed, each with the TickResult
# (market.providers.base). Later steps (order triggers, live broadcast) plug in here.
MARKET_TICK_HOOKS = env.list(
    "MARKET_TICK_HOOKS",
    # portfolio.live before market.live: a player's wallet reaches the web process just
    # before the tick's prices, so both leave in one websocket frame.
    default=["trading.triggers.on_tick", "portfolio.live.on_tick", "market.live.on_tick"],
)
MARKET_HISTORY_FLUSH_SECONDS = env.int("MARKET_HISTORY_FLUSH_SECONDS", default=300)

CELERY_BEAT_SCHEDULE = {
    "market-tick": {
        "task": "market.tasks.tick",
        "schedule": float(MARKET_TICK_SECONDS),
        "options": {"expires": float(MARKET_TICK_SECONDS)},
    },
    "market-flush-history": {
        "task": "market.tasks.flush_history",
        "schedule": float(MARKET_HISTORY_FLUSH_SECONDS),
        "options": {"expires": float(MARKET_HISTORY_FLUSH_SECONDS)},
    },
    "trading-expire-day-orders": {
        "task": "trading.tasks.expire_day_orders",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "trading-expire-offers": {
        "task": "trading.tasks.expire_offers",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "portfolio-snapshot": {
        "task": "portfolio.tasks.snapshot_net_worth",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    "portfolio-leaderboard": {
        "task": "portfolio.tasks.recompute_leaderboard",
        "schedule": float(LEADERBOARD_RECOMPUTE_SECONDS),
        "options": {"expires": float(LEADERBOARD_RECOMPUTE_SECONDS)},
    },
}

# --- Operations --------------------------------------------------------------
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
LOG_FORMAT = env("LOG_FORMAT", default="text")  # "json" in production
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "config.logging.RequestIdFilter"},
        "task_id": {"()": "config.logging.TaskIdFilter"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "task_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
