from __future__ import annotations

import logging
from typing import Any

import redis
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from market import state

logger = logging.getLogger(__name__)


def _delayed_since() -> Any:
    try:
        return state.quotes_delayed_since()
    except redis.RedisError:
        # Pages still render when Redis is down; /readyz reports the outage.
        logger.warning("could not read the quotes-delayed state", exc_info=True)
        return None


def quotes_status(request: HttpRequest) -> dict[str, Any]:
    """`quotes_delayed_since`: when the quote source started failing, else None.
    Lazy, so a response that never renders the banner never asks Redis."""
    return {"quotes_delayed_since": SimpleLazyObject(_delayed_since)}
