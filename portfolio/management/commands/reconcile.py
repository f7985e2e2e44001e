from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portfolio.reconcile import reconcile_check


class Command(BaseCommand):
    help = (
        "Check every portfolio's cash and shares against the ledger, and its reservations "
        "against open orders and offers. Exits 1 on any mismatch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit", type=int, default=50, help="Print at most this many mismatches."
        )

    def handle(self, *args: Any, limit: int, **options: Any) -> None:
        report = reconcile_check()
        self.stdout.write(
            f"Checked {report.portfolios} portfolios and {report.positions} positions "
            f"against the ledger; reservations against: "
            f"{', '.join(report.sources) or 'no sources'}."
        )
        for error in report.source_errors:
            self.stdout.write(self.style.WARNING(error))
        for mismatch in report.mismatches[:limit]:
            self.stdout.write(self.style.ERROR(f"MISMATCH {mismatch}"))
        if len(report.mismatches) > limit:
            self.stdout.write(f"... and {len(report.mismatches) - limit} more.")
        if report.ok:
            self.stdout.write(self.style.SUCCESS("OK: the books balance."))
            return
        self.stdout.write(
            self.style.ERROR(
                f"FAILED: {len(report.mismatches)} mismatches, "
                f"{len(report.source_errors)} unverifiable sources."
            )
        )
        raise SystemExit(1)
