"""Fixtures for the live-update tests: real Redis channel layer, real sessions, real ticks."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from config.asgi import application
from market import consumers, groups
from market.models import Stock
from market.providers.base import Quote
from market.services import quotes_apply
from market.ticks import TickResult
from portfolio.services import portfolio_open, portfolios_lock, trade_settle

ORIGIN = (b"origin", b"http://testserver")
_slots = itertools.count(1_000_000)


@pytest.fixture(autouse=True)
def _live_clean(settings):
    """Each test starts with an empty channel layer and presence set, and the consumer's
    per-process symbol list forgotten."""
    settings.MARKET_TICK_HOOKS = ["portfolio.live.on_tick", "market.live.on_tick"]
    async_to_sync(get_channel_layer().flush)()
    groups.market_redis().delete(groups.PRESENCE_KEY)
    consumers.known_symbols_forget()
    yield
    consumers.known_symbols_forget()


def session_cookie(user: Any) -> bytes:
    """A real database session for `user`, as the login view would make it."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "accounts.backends.HandleOrEmailBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"sessionid={session.session_key}".encode()


def communicator(
    cookie: bytes | None = None, origin: bytes | None = b"http://testserver"
) -> WebsocketCommunicator:
    """A websocket client of the full ASGI application; `cookie` from session_cookie()
    (made outside the event loop: it writes the session row)."""
    headers = []
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


@pytest.fixture
def make_stock(db) -> Callable[..., Stock]:
    def make(symbol: str, price: str = "100.0000") -> Stock:
        return Stock.objects.create(
            symbol=symbol,
            name=f"{symbol} Corp",
            sector="technology",
            last_price=Decimal(price),
            previous_close=Decimal(price),
            day_open=Decimal(price),
            day_high=Decimal(price),
            day_low=Decimal(price),
        )

    return make


def tick(prices: dict[str, str]) -> TickResult:
    """Apply quotes the way the tick does (market.services.quotes_apply) and return the
    TickResult the hooks get: only the stocks that moved."""
    slot = next(_slots)
    at = datetime.now(UTC) + timedelta(seconds=slot - 1_000_000)
    applied = quotes_apply(
        quotes=[Quote(symbol=s, price=Decimal(p), volume=10, at=at) for s, p in prices.items()],
        at=at,
    )
    return TickResult(slot=slot, at=at, ticks=[t for t in applied if t.price != t.previous_price])


def buy(user: Any, stock: Stock, quantity: int, price: str = "100.0000") -> None:
    """Give `user` a funded portfolio holding `quantity` shares, through the real service."""
    from django.db import transaction

    portfolio = user.portfolios.first() or portfolio_open(owner=user)
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        trade_settle(
            portfolio=locked,
            stock=stock,
            side="buy",
            quantity=quantity,
            price=Decimal(price),
            fee=Decimal("1.00"),
            reference=f"test:{user.pk}:{stock.symbol}",
            idempotency_key=f"test:{user.pk}:{stock.symbol}:{quantity}",
        )
