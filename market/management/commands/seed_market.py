from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from market.seeding import companies_make, history_seed, stocks_seed


class Command(BaseCommand):
    help = (
        "Create N made-up stocks across the 11 sectors and, with --days, their generated "
        "price history. Running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stocks", type=int, default=60, help="How many stocks (default 60).")
        parser.add_argument(
            "--days", type=int, default=0, help="Days of daily history to generate (default none)."
        )
        parser.add_argument(
            "--minute-days",
            type=int,
            default=2,
            help="Of those, how many recent days also get 1-minute bars (default 2).",
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="Random seed (default MARKET_SEED)."
        )

    def handle(self, *args, stocks: int, days: int, minute_days: int, seed: int | None, **options):
        if stocks < 1 or days < 0 or minute_days < 0:
            self.stderr.write("--stocks must be at least 1; --days and --minute-days not negative.")
            raise SystemExit(2)
        seed = settings.MARKET_SEED if seed is None else seed
        companies = companies_make(count=stocks, seed=seed)
        listed, created = stocks_seed(companies=companies, seed=seed)
        self.stdout.write(f"{created} stocks created, {len(listed) - created} already there.")
        result = history_seed(
            stocks=listed,
            days=days,
            minute_days=minute_days,
            now=timezone.now(),
            seed=seed,
            progress=self.stdout.write,
        )
        if days:
            self.stdout.write(
                f"History: {result.daily_inserted} daily and {result.minute_inserted} minute bars "
                f"added; {result.quoted} stocks given their first quote."
            )
        self.stdout.write(self.style.SUCCESS("Market seeded."))
