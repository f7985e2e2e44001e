"""The books check behind `manage.py reconcile`.

Every cached balance must equal what justifies it:
- Portfolio.cash == the sum of its ledger cash deltas;
- Portfolio.net_deposits == the sum of its deposits and adjustments;
- Position.quantity == the sum of the ledger quantity deltas of that portfolio and stock;
- Portfolio.reserved_cash and Position.reserved_quantity == what the open orders and open
  offers hold. Those live in other apps, so they come from pluggable *reservation
  sources* (settings.RECONCILE_RESERVATION_SOURCES): dotted paths of functions returning
  {portfolio_id: (cash, {stock_id: quantity})}.

Reads run in one REPEATABLE READ transaction, so trades committing meanwhile cannot make a
consistent book look broken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils.module_loading import import_string

from portfolio.models import ZERO, LedgerEntry, LedgerKind, Portfolio, Position

# Cash from outside the game; every other kind moves cash within it.
FLOW_KINDS = (LedgerKind.DEPOSIT, LedgerKind.ADJUSTMENT)

Reservations = Mapping[int, tuple[Decimal, Mapping[int, int]]]
ReservationSource = Callable[[], Reservations]


@dataclass(frozen=True)
class Mismatch:
    portfolio_id: int
    what: str  # "cash", "net_deposits", "quantity", "reserved_cash", "reserved_quantity"
    stock_id: int | None
    balance: Decimal | int
    expected: Decimal | int

    def __str__(self) -> str:
        where = f"portfolio #{self.portfolio_id}"
        if self.stock_id is not None:
            where += f" stock #{self.stock_id}"
        return f"{where}: {self.what} is {self.balance} but should be {self.expected}"


@dataclass
class ReconcileReport:
    portfolios: int = 0
    positions: int = 0
    sources: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    # Sources that could not be loaded or failed: reservations cannot be fully verified.
    source_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.source_errors


def reservation_sources_load(
    paths: Iterable[str],
) -> tuple[list[tuple[str, ReservationSource]], list[str]]:
    loaded, errors = [], []
    for path in paths:
        try:
            loaded.append((path, import_string(path)))
        except ImportError as error:
            errors.append(f"reservation source {path} could not be imported: {error}")
    return loaded, errors


def reconcile_check(
    *, sources: Iterable[tuple[str, ReservationSource]] | None = None
) -> ReconcileReport:
    """Compare every balance with the ledger and every reservation with its sources.
    `sources` defaults to settings.RECONCILE_RESERVATION_SOURCES."""
    report = ReconcileReport()
    if sources is None:
        sources, report.source_errors = reservation_sources_load(
            settings.RECONCILE_RESERVATION_SOURCES
        )
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:  # Only the first statement of a transaction may set this.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        _check_balances(report)
        _check_reservations(report, list(sources))
    return report


def _check_balances(report: ReconcileReport) -> None:
    ledger_cash = dict(
        LedgerEntry.objects.order_by()
        .values("portfolio")
        .annotate(total=Sum("cash_delta"))
        .values_list("portfolio", "total")
    )
    ledger_flows = dict(
        LedgerEntry.objects.filter(kind__in=FLOW_KINDS)
        .order_by()
        .values("portfolio")
        .annotate(total=Sum("cash_delta"))
        .values_list("portfolio", "total")
    )
    balances = Portfolio.objects.values_list("pk", "cash", "net_deposits")
    for portfolio_id, cash, net_deposits in balances.iterator(chunk_size=5000):
        report.portfolios += 1
        expected = ledger_cash.pop(portfolio_id, ZERO)
        if cash != expected:
            report.mismatches.append(Mismatch(portfolio_id, "cash", None, cash, expected))
        expected_flows = ledger_flows.get(portfolio_id, ZERO)
        if net_deposits != expected_flows:
            report.mismatches.append(
                Mismatch(portfolio_id, "net_deposits", None, net_deposits, expected_flows)
            )

    ledger_shares = {
        (row["portfolio"], row["stock"]): row["total"]
        for row in LedgerEntry.objects.filter(stock__isnull=False)
        .order_by()
        .values("portfolio", "stock")
        .annotate(total=Sum("quantity_delta"))
    }
    positions = Position.objects.values_list("portfolio_id", "stock_id", "quantity")
    for portfolio_id, stock_id, quantity in positions.iterator(chunk_size=5000):
        report.positions += 1
        expected = ledger_shares.pop((portfolio_id, stock_id), 0)
        if quantity != expected:
            report.mismatches.append(
                Mismatch(portfolio_id, "quantity", stock_id, quantity, expected)
            )
    # Shares the ledger moved into a portfolio that has no position row for them.
    for (portfolio_id, stock_id), expected in ledger_shares.items():
        if expected:
            report.mismatches.append(Mismatch(portfolio_id, "quantity", stock_id, 0, expected))


def _check_reservations(
    report: ReconcileReport, sources: list[tuple[str, ReservationSource]]
) -> None:
    expected_cash: dict[int, Decimal] = {}
    expected_shares: dict[tuple[int, int], int] = {}
    for path, source in sources:
        try:
            held = source()
        except Exception as error:
            report.source_errors.append(f"reservation source {path} failed: {error!r}")
            continue
        report.sources.append(path)
        for portfolio_id, (cash, shares) in held.items():
            expected_cash[portfolio_id] = expected_cash.get(portfolio_id, ZERO) + Decimal(cash)
            for stock_id, quantity in shares.items():
                key = (portfolio_id, stock_id)
                expected_shares[key] = expected_shares.get(key, 0) + int(quantity)

    for portfolio_id, reserved in Portfolio.objects.values_list("pk", "reserved_cash").iterator(
        chunk_size=5000
    ):
        expected = expected_cash.pop(portfolio_id, ZERO)
        if reserved != expected:
            report.mismatches.append(
                Mismatch(portfolio_id, "reserved_cash", None, reserved, expected)
            )
    for portfolio_id, expected in expected_cash.items():
        if expected:
            report.mismatches.append(Mismatch(portfolio_id, "reserved_cash", None, ZERO, expected))

    reserved_positions = Position.objects.values_list(
        "portfolio_id", "stock_id", "reserved_quantity"
    )
    for portfolio_id, stock_id, reserved in reserved_positions.iterator(chunk_size=5000):
        expected = expected_shares.pop((portfolio_id, stock_id), 0)
        if reserved != expected:
            report.mismatches.append(
                Mismatch(portfolio_id, "reserved_quantity", stock_id, reserved, expected)
            )
    for (portfolio_id, stock_id), expected in expected_shares.items():
        if expected:
            report.mismatches.append(
                Mismatch(portfolio_id, "reserved_quantity", stock_id, 0, expected)
            )
