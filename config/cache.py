"""The Redis cache, made to degrade instead of failing the request when Redis is down.

Nothing user-owned lives in the cache (sessions are in PostgreSQL): it holds rate-limit
counters and rebuildable fragments. Django's RedisCache raises redis' ConnectionError
when Redis is unreachable, which would turn every rate-limited POST (login, sign-up,
password reset, orders, offers) into a 500. This backend answers as if the cache were
empty instead: reads miss, writes are dropped, `add` reports "not added" and `incr`
raises ValueError (Django's "no such key"), the answers django-ratelimit treats as
"the count could not be read"; with RATELIMIT_FAIL_OPEN it then lets the request
through (see docs/moderation.md, "Rate limits while Redis is down").

After a failure the cache is not tried again for CACHE_RETRY_SECONDS, so an outage
that times out (rather than refusing at once) adds its socket timeout to one request
per process per interval, not to every request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        self.retry_seconds = float(options.pop("retry_seconds", 5.0))
        super().__init__(server, {**params, "OPTIONS": options})
        self._down_until = 0.0

    @property
    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, operation: str, error: Exception) -> None:
        if not self.is_down:
            logger.warning(
                "cache unreachable (%s: %s); treating it as empty for %.0f s",
                operation,
                error,
                self.retry_seconds,
            )
        self._down_until = time.monotonic() + self.retry_seconds

    def _guarded(self, operation: str, call: Any, fallback: Any) -> Any:
        if self.is_down:
            return fallback
        try:
            return call()
        except UNREACHABLE as error:
            self._failed(operation, error)
            return fallback

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        return self._guarded(
            "add", lambda: super(ResilientRedisCache, self).add(key, value, timeout, version), False
        )

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._guarded(
            "get", lambda: super(ResilientRedisCache, self).get(key, default, version), default
        )

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        self._guarded(
            "set", lambda: super(ResilientRedisCache, self).set(key, value, timeout, version), None
        )

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        return self._guarded(
            "touch", lambda: super(ResilientRedisCache, self).touch(key, timeout, version), False
        )

    def delete(self, key: Any, version: Any = None) -> bool:
        return self._guarded(
            "delete", lambda: super(ResilientRedisCache, self).delete(key, version), False
        )

    def get_many(self, keys: Any, version: Any = None) -> dict[Any, Any]:
        return self._guarded(
            "get_many", lambda: super(ResilientRedisCache, self).get_many(keys, version), {}
        )

    def has_key(self, key: Any, version: Any = None) -> bool:
        return self._guarded(
            "has_key", lambda: super(ResilientRedisCache, self).has_key(key, version), False
        )

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        missing = object()
        value = self._guarded(
            "incr", lambda: super(ResilientRedisCache, self).incr(key, delta, version), missing
        )
        if value is missing:
            # What Django raises for a key that does not exist; django-ratelimit expects it.
            raise ValueError(f"Key {key!r} not found (the cache is unreachable).")
        return value

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> list[Any]:
        return self._guarded(
            "set_many",
            lambda: super(ResilientRedisCache, self).set_many(data, timeout, version),
            list(data),
        )

    def delete_many(self, keys: Any, version: Any = None) -> None:
        self._guarded(
            "delete_many", lambda: super(ResilientRedisCache, self).delete_many(keys, version), None
        )

    def clear(self) -> bool:
        return self._guarded("clear", lambda: super(ResilientRedisCache, self).clear(), False)
