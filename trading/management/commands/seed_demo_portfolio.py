from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.selectors import user_by_handle
from market.models import Stock
from portfolio.errors import PortfolioError
from portfolio.models import Portfolio
from portfolio.services import portfolio_open, watchlist_add
from trading.errors import TradingError
from trading.models import OrderStatus
from trading.services import order_place

# Roughly this share of the starting cash goes into each demo holding.
HOLDING_SHARE = Decimal("0.08")


class Command(BaseCommand):
    help = (
        "Give the demo player a few holdings, bought with market orders so their orders "
        "page has fills and receipts, and a watchlist (idempotent: each order carries a "
        "fixed key, so nothing is bought twice). Run after seed_demo and seed_market."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--handle", default="demo", help="The player to seed.")
        parser.add_argument("--holdings", type=int, default=6, help="How many stocks to buy.")
        parser.add_argument("--watch", type=int, default=8, help="How many stocks to watch.")

    def handle(self, *args: Any, handle: str, holdings: int, watch: int, **options: Any) -> None:
        user = user_by_handle(handle=handle)
        if user is None:
            raise CommandError(f"No player @{handle}: run seed_demo first.")
        portfolio = Portfolio.objects.filter(owner=user).order_by("pk").first()
        if portfolio is None:
            portfolio = portfolio_open(owner=user)
        stocks = list(
            Stock.objects.filter(delisted_at__isnull=True, halted=False, last_price__gt=0).order_by(
                "-volume", "symbol"
            )[: max(holdings, watch)]
        )
        if not stocks:
            raise CommandError("No tradable stocks: run seed_market first.")
        budget = (settings.STARTING_CASH * HOLDING_SHARE).quantize(Decimal("0.01"))
        for stock in stocks[:holdings]:
            self._buy(portfolio, stock, budget)
        for stock in stocks[:watch]:
            try:
                watchlist_add(user=user, stock=stock)
            except PortfolioError as error:
                self.stdout.write(f"  watchlist: {error}")
        self.stdout.write(self.style.SUCCESS(f"@{handle}'s demo portfolio is ready."))

    def _buy(self, portfolio: Portfolio, stock: Stock, budget: Decimal) -> None:
        quantity = max(1, int(budget / stock.last_price))
        try:
            # The same key on a second run returns the first order and buys nothing.
            order = order_place(
                portfolio=portfolio,
                stock=stock,
                side="buy",
                type="market",
                quantity=quantity,
                idempotency_key=f"seed:{stock.symbol}",
            )
        except TradingError as error:
            self.stdout.write(f"  {stock.symbol}: skipped ({error})")
            return
        if order.status != OrderStatus.FILLED:
            self.stdout.write(f"  {stock.symbol}: order {order.get_status_display().lower()}")
            return
        self.stdout.write(f"  {stock.symbol}: {order.quantity:,} shares (order #{order.pk})")
