from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from market.errors import ImportFileInvalid
from market.imports import prices_import


class Command(BaseCommand):
    help = (
        "Import one stock's daily prices from a Yahoo Finance "
        "(Date,Open,High,Low,Close,Adj Close,Volume) or Stooq (Date,Open,High,Low,Close,Volume) "
        "CSV. The symbol comes from --symbol or the file name (AAPL.csv, aapl.us.txt). All or "
        "nothing: a file with any bad row imports nothing and lists the bad lines. The "
        "Bullpen Composite is then rebuilt from the file's first day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The CSV file.")
        parser.add_argument("--symbol", help="The stock's symbol, if not the file's name.")
        parser.add_argument(
            "--no-index",
            dest="index",
            action="store_false",
            help=(
                "Leave the Bullpen Composite as it is. For many files: import each with "
                "--no-index, then run rebuild_index once."
            ),
        )

    def handle(self, *args, file: Path, symbol: str | None, index: bool, **options) -> None:
        if not file.is_file():
            raise CommandError(f"{file} does not exist.")
        self.stdout.write(f"Reading {file}…")
        try:
            result = prices_import(
                path=file, symbol=symbol, progress=self.stdout.write, index=index
            )
        except ImportFileInvalid as error:
            for problem in error.problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.symbol}: {result.rows} rows ({result.layout} layout) from "
                f"{result.first} to {result.last}: {result.inserted} daily bars added, "
                f"{result.updated} replaced."
            )
        )
