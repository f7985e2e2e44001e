"""The HTTP client the real quote sources share.

Every request passes, in order:
1. the circuit breaker: after MARKET_BREAKER_FAILURES failed calls in a row the source
   is left alone for MARKET_BREAKER_OPEN_SECONDS (ProviderError at once), then one
   probe call at a time decides whether it closes again;
2. the request budget: a token bucket of <PROVIDER>_BUDGET_PER_MINUTE requests; a
   request over budget raises ProviderError instead of being sent;
3. httpx with connect/read timeouts, retried by tenacity with exponential backoff and
   jitter on connection errors, timeouts, 5xx and 429.

The breaker and the budget live in Redis (REDIS_MARKET_URL), so every worker process
shares them; each is one atomic Lua script, so two workers cannot both take the last
token or both send the half-open probe.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import tenacity
from django.conf import settings

from market.providers.base import ProviderError
from market.state import market_redis

logger = logging.getLogger("market.providers")

USER_AGENT = "Mozilla/5.0 (compatible; Bullpen/1.0; +https://github.com/bullpen)"


class SourceUnavailable(ProviderError):
    """The source as a whole cannot be asked now (not just one symbol): stop asking."""


class SourceFailing(SourceUnavailable):
    """The source failed: network, timeouts, 5xx or 429 after the retries, a refused key."""


class BudgetExhausted(SourceUnavailable):
    """The provider's request budget is spent; the request was not sent."""


class CircuitOpen(SourceUnavailable):
    """The provider failed repeatedly and is being left alone for a while."""


class _Retryable(Exception):
    """A failure worth another try: network trouble, 5xx, 429."""


# Token bucket: ARGV = capacity, refill per second, now. Returns 1 if a token was taken.
_TAKE_TOKEN = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return taken
"""

# Breaker admission: ARGV = now, probe lease seconds.
# Returns 1 closed (go), 2 half-open (go, as the one probe), 0 open (refuse).
_ADMIT = """
local now = tonumber(ARGV[1])
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return 1 end
if now < open_until then return 0 end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < probe_until then return 0 end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[2]))
return 2
"""

# A failed call: ARGV = now, failure threshold, open seconds. Returns 1 if now open.
# A failure while half-open (the probe) opens the breaker again at once.
_RECORD_FAILURE = """
local now = tonumber(ARGV[1])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
redis.call('EXPIRE', KEYS[1], 86400)
if open_until > 0 or failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[3]), 'probe_until', 0)
  return 1
end
return 0
"""


class RequestBudget:
    """At most `per_minute` requests a minute, in bursts of up to `per_minute`."""

    def __init__(self, provider: str, per_minute: int, clock: Callable[[], float]) -> None:
        self.key = f"market:http:{provider}:budget"
        self.provider = provider
        self.per_minute = per_minute
        self.clock = clock
        self._script = market_redis().register_script(_TAKE_TOKEN)

    def take(self) -> None:
        if not self._script(
            keys=[self.key], args=[self.per_minute, self.per_minute / 60, self.clock()]
        ):
            raise BudgetExhausted(
                f"{self.provider}: request budget of {self.per_minute}/minute spent; request not sent"
            )


class CircuitBreaker:
    def __init__(
        self, provider: str, failures: int, open_seconds: float, clock: Callable[[], float]
    ) -> None:
        self.key = f"market:http:{provider}:breaker"
        self.provider = provider
        self.failures = failures
        self.open_seconds = open_seconds
        self.clock = clock
        redis = market_redis()
        self._admit = redis.register_script(_ADMIT)
        self._fail = redis.register_script(_RECORD_FAILURE)

    def admit(self) -> None:
        # The probe's lease lets another worker probe if this one dies mid-call.
        if not self._admit(keys=[self.key], args=[self.clock(), self.open_seconds]):
            raise CircuitOpen(f"{self.provider}: circuit open after repeated failures")

    def record_failure(self) -> None:
        if self._fail(keys=[self.key], args=[self.clock(), self.failures, self.open_seconds]):
            logger.warning(
                "%s: circuit open for %ss after repeated failures", self.provider, self.open_seconds
            )

    def record_success(self) -> None:
        market_redis().delete(self.key)

    @property
    def is_open(self) -> bool:
        open_until = market_redis().hget(self.key, "open_until")
        return open_until is not None and self.clock() < float(open_until)


def _new_client(
    base_url: str, seconds: float, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(seconds, connect=min(seconds, 3.0)),
        transport=transport,
        follow_redirects=True,
    )


@functools.lru_cache(maxsize=8)
def _shared_client(base_url: str, seconds: float) -> httpx.Client:
    return _new_client(base_url, seconds)


class GuardedClient:
    """GET JSON from one provider through the breaker, the budget and retries."""

    def __init__(
        self,
        provider: str,
        *,
        base_url: str,
        budget_per_minute: int,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        seconds = settings.MARKET_HTTP_TIMEOUT if timeout is None else timeout
        self.retries = settings.MARKET_HTTP_RETRIES if retries is None else retries
        self.backoff = settings.MARKET_HTTP_BACKOFF if backoff is None else backoff
        self.sleep = sleep
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        # get_provider() runs every tick: sharing one pooled client per source and
        # process reuses connections and leaves none behind. A test's transport gets
        # a client of its own.
        if transport is None:
            self.http = _shared_client(base_url, seconds)
        else:
            self.http = _new_client(base_url, seconds, transport)
        self.budget = RequestBudget(provider, budget_per_minute, clock)
        self.breaker = CircuitBreaker(
            provider,
            settings.MARKET_BREAKER_FAILURES,
            settings.MARKET_BREAKER_OPEN_SECONDS,
            clock,
        )

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON body of a 2xx answer. ProviderError for anything else."""
        self.breaker.admit()
        try:
            response = self._send(path, params)
        except BudgetExhausted:
            raise  # our own limit, not the source's failure
        except (_Retryable, httpx.HTTPError) as error:
            self.breaker.record_failure()
            raise SourceFailing(f"{self.provider}: {path} failed: {error}") from error
        if response.status_code in (401, 403):
            # A refused key or a block will not fix itself between ticks.
            self.breaker.record_failure()
            raise SourceFailing(f"{self.provider}: {path} refused ({response.status_code})")
        # Any other answer shows the source is up, even a 404 for one unknown symbol.
        self.breaker.record_success()
        if response.status_code >= 400:
            raise ProviderError(f"{self.provider}: {path} answered {response.status_code}")
        try:
            return response.json()
        except ValueError as error:
            raise ProviderError(f"{self.provider}: {path} sent a body that is not JSON") from error

    def _send(self, path: str, params: Mapping[str, Any] | None) -> httpx.Response:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(1 + self.retries),
            wait=tenacity.wait_exponential_jitter(
                multiplier=self.backoff, max=max(self.backoff * 16, 1.0), jitter=self.backoff
            ),
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self.sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self.budget.take()  # every attempt is a request the source counts
                try:
                    response = self.http.get(path, params=params, headers=self.headers)
                except httpx.TransportError as error:  # connect errors and timeouts
                    raise _Retryable(f"{type(error).__name__}: {error}") from error
                if response.status_code >= 500 or response.status_code == 429:
                    raise _Retryable(f"HTTP {response.status_code}")
                return response
        raise AssertionError("unreachable: tenacity reraises the last failure")

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.info(
            "%s: attempt %s failed (%s); retrying in %.2fs",
            self.provider,
            state.attempt_number,
            error,
            state.next_action.sleep if state.next_action else 0.0,
        )
