from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from market.errors import ImportFileInvalid
from market.imports import listings_import


class Command(BaseCommand):
    help = (
        "List stocks from a CSV with the header symbol,name,sector,industry. All or "
        "nothing: a file with any bad row imports nothing and lists the bad lines."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The CSV file.")

    def handle(self, *args, file: Path, **options) -> None:
        if not file.is_file():
            raise CommandError(f"{file} does not exist.")
        try:
            result = listings_import(path=file)
        except ImportFileInvalid as error:
            for problem in error.problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(f"{result.created} stocks listed, {result.updated} updated.")
        )
