from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from market.errors import ImportFileInvalid
from market.imports import listings_import, prices_import
from market.models import PriceBar, Sector, Stock
from market.seeding import companies_make, history_seed, stocks_seed
from market.sessions import session_start
from tests.factories import StockFactory

pytestmark = pytest.mark.django_db


def snapshot() -> tuple[list, list]:
    stocks = list(Stock.objects.order_by("symbol").values_list())
    bars = list(
        PriceBar.objects.order_by("stock_id", "resolution", "start").values_list(
            "stock_id", "resolution", "start", "open", "high", "low", "close", "volume"
        )
    )
    return stocks, bars


def test_seed_market_makes_plausible_stocks_in_every_sector_and_twice_changes_nothing():
    out = StringIO()
    call_command("seed_market", "--stocks", "22", "--days", "10", "--minute-days", "1", stdout=out)
    first = snapshot()
    assert "22 stocks created" in out.getvalue()
    stocks = Stock.objects.all()
    assert stocks.count() == 22
    assert {stock.sector for stock in stocks} == set(Sector.values)
    assert all(stock.name and stock.industry and stock.last_price > 0 for stock in stocks)
    assert all(
        stock.quoted_at is not None and stock.quoted_at < session_start(timezone.now())
        for stock in stocks
    )
    some = stocks.first()
    assert some.bars.filter(resolution="1d").count() == 10
    assert some.bars.filter(resolution="1m").count() == 1440
    # The stock's quote continues from its newest (rolled-up) daily bar.
    newest_day = some.bars.filter(resolution="1d").latest("start")
    newest_minute = some.bars.filter(resolution="1m").latest("start")
    assert some.last_price == newest_day.close == newest_minute.close

    again = StringIO()
    call_command(
        "seed_market", "--stocks", "22", "--days", "10", "--minute-days", "1", stdout=again
    )
    assert "0 stocks created, 22 already there" in again.getvalue()
    assert snapshot() == first


def test_seeded_companies_are_the_same_for_the_same_seed_and_have_unique_symbols():
    companies = companies_make(count=300, seed=7)
    assert companies == companies_make(count=300, seed=7)
    assert len({company.symbol for company in companies}) == 300
    assert len({company.name for company in companies}) == 300


def test_seeding_history_reports_its_progress():
    stocks, created = stocks_seed(companies=companies_make(count=3, seed=1), seed=1)
    messages: list[str] = []
    history_seed(
        stocks=stocks, days=3, minute_days=0, now=timezone.now(), seed=1, progress=messages.append
    )
    assert created == 3
    assert any("daily bars written" in message for message in messages)


# --- import_listings ---------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_import_listings_lists_new_stocks_and_updates_known_ones(tmp_path):
    StockFactory(symbol="ACME", name="Old name", sector="energy")
    path = write(
        tmp_path,
        "listings.csv",
        (
            "symbol,name,sector,industry\n"
            "acme,Acme Corp,Industrials,Machinery\n"
            "BOLT,Bolt Energy,energy,Renewables\n"
        ),
    )
    out = StringIO()
    call_command("import_listings", str(path), stdout=out)
    assert "1 stocks listed, 1 updated" in out.getvalue()
    acme = Stock.objects.get(symbol="ACME")
    assert (acme.name, acme.sector, acme.industry) == ("Acme Corp", "industrials", "Machinery")
    assert Stock.objects.get(symbol="BOLT").sector == "energy"


def test_a_listings_file_with_bad_rows_imports_nothing_and_names_the_lines(tmp_path):
    path = write(
        tmp_path,
        "listings.csv",
        (
            "symbol,name,sector,industry\n"
            "GOOD,Good Co,technology,Software\n"
            "bad symbol!,Bad Co,technology,Software\n"
            "CRYP,Crypto Co,crypto,Coins\n"
            "GOOD,Good Again,technology,Software\n"
        ),
    )
    err = StringIO()
    with pytest.raises(CommandError, match="3 bad row"):
        call_command("import_listings", str(path), stderr=err)
    assert "line 3:" in err.getvalue() and "line 4: unknown sector 'crypto'" in err.getvalue()
    assert "line 5: GOOD appears twice" in err.getvalue()
    assert not Stock.objects.exists()


def test_a_listings_file_with_the_wrong_header_is_refused(tmp_path):
    with pytest.raises(ImportFileInvalid, match="missing sector"):
        listings_import(path=write(tmp_path, "l.csv", "symbol,name\nA,B\n"))


# --- import_prices -----------------------------------------------------------------

YAHOO = (
    "Date,Open,High,Low,Close,Adj Close,Volume\n"
    "2024-01-02,187.15,188.44,183.89,185.64,184.94,82488700\n"
    "2024-01-03,184.22,185.88,183.43,184.25,183.55,58414500\n"
)
STOOQ = (
    "Date,Open,High,Low,Close,Volume\n"
    "2024-01-02,100,110,95,105,1000\n"
    "2024-01-03,105,106,101,102,2000\n"
    "2024-01-04,102,104,100,103,1500\n"
)


def test_import_prices_reads_the_yahoo_layout(tmp_path):
    stock = StockFactory(symbol="AAPL", last_price=0, previous_close=0, quoted_at=None)
    out = StringIO()
    call_command("import_prices", str(write(tmp_path, "AAPL.csv", YAHOO)), stdout=out)
    assert (
        "AAPL: 2 rows (Yahoo layout) from 2024-01-02 to 2024-01-03: 2 daily bars added"
        in out.getvalue()
    )
    bar = stock.bars.get(start__date="2024-01-02")
    assert (bar.resolution, bar.open, bar.close, bar.volume) == (
        "1d",
        Decimal("187.15"),
        Decimal("185.64"),
        82488700,
    )
    stock.refresh_from_db()
    assert stock.last_price == Decimal("184.25") and stock.previous_close == Decimal("185.64")


def test_import_prices_reads_the_stooq_layout_and_a_rerun_replaces_the_same_days(tmp_path):
    stock = StockFactory(symbol="XYZ")
    path = write(tmp_path, "xyz.us.txt", STOOQ)
    result = prices_import(path=path)
    assert (result.symbol, result.layout, result.inserted, result.updated) == ("XYZ", "Stooq", 3, 0)
    again = prices_import(path=path)
    assert (again.inserted, again.updated) == (0, 3)
    assert stock.bars.count() == 3


def test_import_prices_takes_the_symbol_from_the_option(tmp_path):
    StockFactory(symbol="MSFT")
    out = StringIO()
    call_command(
        "import_prices", str(write(tmp_path, "prices.csv", STOOQ)), "--symbol", "msft", stdout=out
    )
    assert PriceBar.objects.filter(stock__symbol="MSFT").count() == 3


def test_a_price_file_with_bad_rows_imports_nothing_and_names_the_lines(tmp_path):
    stock = StockFactory(symbol="XYZ")
    path = write(
        tmp_path,
        "XYZ.csv",
        (
            "Date,Open,High,Low,Close,Volume\n"
            "2024-01-02,100,110,95,105,1000\n"
            "2024-13-03,105,106,101,102,2000\n"
            "2024-01-04,abc,104,100,103,1500\n"
            "2024-01-05,100,99,98,100,10\n"
            "2024-01-06,100,101,99,100,-5\n"
            "2024-01-02,100,110,95,105,1000\n"
            "2024-01-08,null,null,null,null,null\n"
        ),
    )
    err = StringIO()
    with pytest.raises(CommandError, match="6 bad row"):
        call_command("import_prices", str(path), stderr=err)
    report = err.getvalue()
    for line in (3, 4, 5, 6, 7, 8):
        assert f"line {line}:" in report
    assert "line 2:" not in report
    assert not stock.bars.exists()


def test_a_price_file_with_an_unknown_layout_or_stock_exits_non_zero(tmp_path):
    StockFactory(symbol="XYZ")
    with pytest.raises(CommandError, match="unrecognised header"):
        call_command(
            "import_prices",
            str(write(tmp_path, "XYZ.csv", "when,price\n2024-01-01,3\n")),
            stderr=StringIO(),
        )
    with pytest.raises(CommandError, match="no stock NOPE"):
        call_command("import_prices", str(write(tmp_path, "NOPE.csv", STOOQ)), stderr=StringIO())
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_prices", str(tmp_path / "missing.csv"))


def test_a_long_price_file_reports_progress(tmp_path):
    StockFactory(symbol="LONG")
    start = timezone.now().date() - timedelta(days=6000)
    lines = ["Date,Open,High,Low,Close,Volume"] + [
        f"{start + timedelta(days=day)},10,11,9,10.5,100" for day in range(5200)
    ]
    messages: list[str] = []
    result = prices_import(
        path=write(tmp_path, "LONG.csv", "\n".join(lines) + "\n"), progress=messages.append
    )
    assert result.inserted == 5200
    assert "  read 5000 rows…" in messages


def test_seeded_history_brings_its_recent_news_once():
    from market.models import MarketEvent

    call_command("seed_market", "--stocks", "40", "--days", "60", stdout=StringIO())
    news = MarketEvent.objects.all()
    assert news.exists(), "60 days of 40 stocks should have produced at least one jump"
    recent_limit = timezone.now() - timedelta(days=31)
    assert all(event.published_at >= recent_limit for event in news)
    assert all(event.source == "simulator" for event in news)
    count = news.count()

    call_command("seed_market", "--stocks", "40", "--days", "60", stdout=StringIO())
    assert MarketEvent.objects.count() == count
