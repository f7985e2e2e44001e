"""The header wallet and the set of watched stocks, for every page. Both are lazy: a
response that never renders them (an htmx fragment, a redirect) costs no query."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from portfolio import selectors


def wallet(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        # One query: the first portfolio with its holdings' value in a subquery.
        "wallet": SimpleLazyObject(lambda: selectors.wallet_for_user(user)),
        # One query at most, however many watch buttons the page has.
        "watched_stock_ids": SimpleLazyObject(lambda: selectors.watched_stock_ids(user)),
    }
