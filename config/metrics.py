"""Bullpen's Prometheus metrics, all defined here, and the protected /metrics view.

Two kinds of figure, kept apart on purpose:

- **Business figures** (ticks, orders, offers, provider failures) happen in several
  processes: ticks and most fills in the Celery worker, orders and offers in the web
  process. They are counted in Redis (REDIS_METRICS_URL, its own database number), so
  every process adds to the same totals and whichever web process Prometheus scrapes
  reports the whole site's figures, on one machine or many. The objects below mimic
  prometheus_client's calls (`.labels(...).inc()`, `.observe()`, `.time()`, `.set()`)
  and a collector turns the Redis hashes into prometheus_client metric families at
  scrape time.
- **Per-process figures** (open websockets here, request latencies and database
  counts from django-prometheus) are plain prometheus_client metrics in the memory of
  the web process that serves them; Prometheus scrapes every web process directly.

A metric write never fails the caller: if Redis is unreachable the increment is lost,
a warning is logged, and writes pause for a few seconds so a Redis outage does not
slow every order down by a timeout.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import redis
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import REGISTRY, Gauge
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

KEY_PREFIX = "bullpen:metrics:"
# After a failed write, skip writes for this long: the figure is lost either way.
WRITE_PAUSE_SECONDS = 5.0
_writes_paused_until = 0.0


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # Short timeouts: a metric must never hold up a trade for long.
    return redis.Redis.from_url(
        url, socket_connect_timeout=0.25, socket_timeout=0.5, decode_responses=True
    )


def metrics_store() -> redis.Redis:
    return _client(settings.REDIS_METRICS_URL)


def _write(commands: Sequence[tuple[str, tuple[object, ...]]], key: str) -> None:
    global _writes_paused_until
    if time.monotonic() < _writes_paused_until:
        return
    try:
        pipe = metrics_store().pipeline(transaction=len(commands) > 1)
        for command, args in commands:
            getattr(pipe, command)(key, *args)
        pipe.execute()
    except redis.RedisError:
        _writes_paused_until = time.monotonic() + WRITE_PAUSE_SECONDS
        logger.warning("metrics: Redis write failed; figures are lost for %ss", WRITE_PAUSE_SECONDS)


def _label_field(values: Sequence[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


class _SharedMetric:
    """A metric whose values live in one Redis hash, one field per label set."""

    kind = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.key = KEY_PREFIX + name
        self._label_values: tuple[str, ...] = ()
        _SHARED_METRICS.append(self)

    def labels(self, **labels: object) -> _SharedMetric:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        child = object.__new__(type(self))
        child.__dict__.update(self.__dict__)
        child._label_values = tuple(str(labels[name]) for name in self.labelnames)
        return child

    def _field(self) -> str:
        if len(self._label_values) != len(self.labelnames):
            raise ValueError(f"{self.name} needs .labels({', '.join(self.labelnames)}) first")
        return _label_field(self._label_values)

    def family(self) -> Metric:
        raise NotImplementedError

    def fill(self, family: Metric, stored: dict[str, str]) -> None:
        raise NotImplementedError


class SharedCounter(_SharedMetric):
    kind = "counter"

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self._write_counter(amount)

    def _write_counter(self, amount: float) -> None:
        _write([("hincrbyfloat", (self._field(), amount))], self.key)

    def family(self) -> CounterMetricFamily:
        # prometheus_client appends _total itself.
        return CounterMetricFamily(
            self.name.removesuffix("_total"), self.documentation, labels=self.labelnames
        )

    def fill(self, family: Metric, stored: dict[str, str]) -> None:
        for field, value in sorted(stored.items()):
            family.add_metric(json.loads(field), float(value))


class SharedGauge(_SharedMetric):
    kind = "gauge"

    def set(self, value: float) -> None:
        _write([("hset", (self._field(), value))], self.key)

    def set_to_current_time(self) -> None:
        self.set(time.time())

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    fill = SharedCounter.fill


class SharedHistogram(_SharedMetric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.buckets = tuple(sorted(buckets))

    def observe(self, value: float) -> None:
        prefix = self._field() + "|"
        # Buckets are stored cumulative, as Prometheus exposes them.
        commands: list[tuple[str, tuple[object, ...]]] = [
            ("hincrby", (f"{prefix}le={bound}", 1)) for bound in self.buckets if value <= bound
        ]
        commands += [("hincrby", (prefix + "count", 1)), ("hincrbyfloat", (prefix + "sum", value))]
        _write(commands, self.key)

    @contextmanager
    def time(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start)

    def family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def fill(self, family: Metric, stored: dict[str, str]) -> None:
        series: dict[str, dict[str, str]] = {}
        for field, value in stored.items():
            labels, _, part = field.rpartition("|")
            series.setdefault(labels, {})[part] = value
        for labels, parts in sorted(series.items()):
            count = int(parts.get("count", 0))
            buckets = [(str(bound), int(parts.get(f"le={bound}", 0))) for bound in self.buckets]
            buckets.append(("+Inf", count))
            family.add_metric(json.loads(labels), buckets, float(parts.get("sum", 0)))


_SHARED_METRICS: list[_SharedMetric] = []


class SharedMetricsCollector(Collector):
    """Reads every shared metric from Redis when Prometheus scrapes."""

    def describe(self) -> list[Metric]:
        # Registration must not touch Redis.
        return [metric.family() for metric in _SHARED_METRICS] + [self._store_up(0)]

    def collect(self) -> Iterator[Metric]:
        try:
            pipe = metrics_store().pipeline(transaction=False)
            for metric in _SHARED_METRICS:
                pipe.hgetall(metric.key)
            stored = pipe.execute()
        except redis.RedisError:
            logger.warning("metrics: Redis unreachable at scrape time", exc_info=True)
            yield self._store_up(0)
            return
        for metric, values in zip(_SHARED_METRICS, stored, strict=True):
            family = metric.family()
            metric.fill(family, values)
            yield family
        yield self._store_up(1)

    @staticmethod
    def _store_up(value: int) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "bullpen_metrics_store_up",
            "1 when the shared business figures could be read from Redis.",
            value=value,
        )


# --- The metrics --------------------------------------------------------------
# Business figures, site-wide (Redis). Count after the transaction commits, so a
# rolled-back order is not counted: call them from transaction.on_commit or after the
# atomic block.
TICKS = SharedCounter("bullpen_ticks_total", "Market ticks completed.")
TICKS_SKIPPED = SharedCounter(
    "bullpen_ticks_skipped_total",
    "Tick runs that did nothing because their time slot was already ticked (late or duplicate).",
)
TICK_DURATION = SharedHistogram(
    "bullpen_tick_duration_seconds",
    "Time one market tick took, from asking the provider to the last hook.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
LAST_TICK = SharedGauge(
    "bullpen_last_tick_timestamp_seconds", "Unix time at which the last market tick completed."
)
PROVIDER_FAILURES = SharedCounter(
    "bullpen_provider_failures_total",
    "Failed calls to a quote provider (after which it retries or the breaker opens).",
    ["provider"],
)
QUOTES_REJECTED = SharedCounter(
    "bullpen_quotes_rejected_total",
    "Nonsense quotes refused by the sanity checks (price <= 0 or an impossible jump).",
    ["provider"],
)
LAST_HISTORY_FLUSH = SharedGauge(
    "bullpen_last_history_flush_timestamp_seconds",
    "Unix time at which the buffered ticks were last folded into price bars.",
)
ORDERS_PLACED = SharedCounter(
    "bullpen_orders_placed_total", "Orders accepted from players.", ["type", "side"]
)
ORDERS_FILLED = SharedCounter(
    "bullpen_orders_filled_total", "Orders filled against the market.", ["type", "side"]
)
ORDERS_CANCELLED = SharedCounter(
    "bullpen_orders_cancelled_total",
    "Orders cancelled, by why: user, expired, moderator, rejected.",
    ["reason"],
)
OFFERS_CREATED = SharedCounter("bullpen_offers_created_total", "User-to-user offers made.")
OFFERS_SETTLED = SharedCounter(
    "bullpen_offers_settled_total", "User-to-user offers accepted and settled."
)
SIGNUPS = SharedCounter("bullpen_signups_total", "Accounts created.")

TASKS = SharedCounter(
    "bullpen_tasks_total",
    "Celery tasks finished, by task name and outcome (succeeded, failed, retried).",
    ["task", "outcome"],
)
TASK_DURATION = SharedHistogram(
    "bullpen_task_duration_seconds",
    "Time a Celery task ran, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)

# Per web process (memory): each daphne process reports its own.
OPEN_WEBSOCKETS = Gauge(
    "bullpen_open_websockets", "Websocket connections open on this web process."
)

REGISTRY.register(SharedMetricsCollector())


# --- Every Celery task, counted through Celery's signals ---------------------------
# The worker imports this module at start (CELERY_IMPORTS), before it forks its pool.
_task_started: dict[str, float] = {}
_OUTCOMES = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}


def _task_prerun(*, task_id: str, **kwargs: object) -> None:
    _task_started[task_id] = time.perf_counter()


def _task_postrun(
    *, task_id: str, task: object, state: str | None = None, **kwargs: object
) -> None:
    started = _task_started.pop(task_id, None)
    name = getattr(task, "name", "unknown")
    TASKS.labels(task=name, outcome=_OUTCOMES.get(state or "", "other")).inc()
    if started is not None:
        TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)


task_prerun.connect(_task_prerun, weak=False)
task_postrun.connect(_task_postrun, weak=False)


# --- The /metrics view ----------------------------------------------------------
def _bearer_token_ok(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not offered:
        return False
    return hmac.compare_digest(offered.strip().encode(), expected.encode())


def _address_allowed(request: HttpRequest) -> bool:
    # daphne --proxy-headers puts the *first* X-Forwarded-For entry in REMOTE_ADDR,
    # whoever wrote it, so an address that came through a proxy proves nothing: a
    # proxied scrape must present the token.
    if "HTTP_X_FORWARDED_FOR" in request.META:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOWED_IPS:
        try:
            if address in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            logger.warning("metrics: METRICS_ALLOWED_IPS entry %r is not an address", allowed)
    return False


def metrics_access_allowed(request: HttpRequest) -> bool:
    return _bearer_token_ok(request) or _address_allowed(request)


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape target. Anyone else gets the ordinary 404: nothing is revealed."""
    if not metrics_access_allowed(request):
        raise Http404
    return ExportToDjangoView(request)
