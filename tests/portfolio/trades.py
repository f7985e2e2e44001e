"""Trades for tests, settled the way trading does it: lock, then trade_settle."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from portfolio.services import portfolios_lock, trade_settle


def settle(portfolio, stock, side, quantity, price, fee="1.00", key=None, **extra):
    key = key or f"fill:{side}:{quantity}:{price}"
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        return trade_settle(
            portfolio=locked,
            stock=stock,
            side=side,
            quantity=quantity,
            price=Decimal(price),
            fee=Decimal(fee),
            reference=f"fill:{key}",
            idempotency_key=key,
            **extra,
        )
