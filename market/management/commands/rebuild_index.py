from __future__ import annotations

import argparse
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandParser

from market.services import index_rebuild
from market.sessions import day_bar_start


def _trading_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date like 2024-01-31") from None


class Command(BaseCommand):
    help = (
        "Recompute the Bullpen Composite's daily and minute bars from the stocks' price "
        "history: all of it, or from the trading date --since on. The market's ticks then "
        "continue from the newest rebuilt bar. seed_market and import_prices run it "
        "themselves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            type=_trading_date,
            default=None,
            help="First trading date to rebuild (YYYY-MM-DD); default: the whole history.",
        )

    def handle(self, *args, since: date | None, **options) -> None:
        started = time.monotonic()
        written = index_rebuild(
            since=day_bar_start(since) if since is not None else None,
            progress=self.stdout.write,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Bullpen Composite rebuilt: {written} bars in {time.monotonic() - started:.1f} s."
            )
        )
