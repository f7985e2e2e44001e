"""The Bullpen Composite: moved by each tick, rebuilt from price history, read by the
market page, its chart endpoint and other apps."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext

from market import live, selectors
from market.imports import prices_import
from market.models import IndexBar, PriceBar, Stock
from market.services import index_rebuild, stock_delist, tick_run
from market.sessions import day_bar_start, session_date, tick_slot
from tests.factories import StockFactory

pytestmark = pytest.mark.django_db

# 14:00 UTC: mid-session (the session closes at 21:00 UTC).
NOON = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
STEP = Decimal("0.0001")


def level(value: Decimal) -> Decimal:
    return value.quantize(STEP, ROUND_HALF_UP)


def bars(resolution: str) -> list[tuple]:
    return list(
        IndexBar.objects.filter(resolution=resolution)
        .order_by("start")
        .values_list("start", "open", "high", "low", "close", "constituents")
    )


def closes(resolution: str) -> list[Decimal]:
    return [row[4] for row in bars(resolution)]


# --- the tick ----------------------------------------------------------------------


@pytest.fixture
def three(db) -> list[Stock]:
    return [
        StockFactory(symbol="AAA", last_price=Decimal("100")),
        StockFactory(symbol="BBB", last_price=Decimal("50")),
        StockFactory(symbol="CCC", last_price=Decimal("20")),
    ]


def test_a_tick_moves_the_index_by_the_average_return_with_unquoted_stocks_at_zero(provider, three):
    StockFactory(symbol="HALT", last_price=Decimal("10"), halted=True)  # not a constituent
    # CCC's quote is refused (a price of 0): it is listed but unquoted this tick.
    provider.prices = {"AAA": Decimal("110"), "BBB": Decimal("50"), "CCC": Decimal("0")}
    tick_run(slot=tick_slot(NOON))
    first = level(Decimal("1000") * (1 + Decimal("0.10") / 3))
    assert first == Decimal("1033.3333")
    assert closes("1m") == closes("1d") == [first]

    # Five seconds later, the same minute: -10%, +10%, +5%.
    provider.prices = {"AAA": Decimal("99"), "BBB": Decimal("55"), "CCC": Decimal("21")}
    tick_run(slot=tick_slot(NOON) + 1)
    second = level(first * (1 + Decimal("0.05") / 3))
    assert second == Decimal("1050.5555")
    minute_start = NOON.replace(second=0)
    day_start = day_bar_start(session_date(NOON))
    # The bars keep their open, widen their range, take the newest close.
    assert bars("1m") == [(minute_start, first, second, first, second, 3)]
    assert bars("1d") == [(day_start, first, second, first, second, 3)]

    # The next minute opens a new minute bar; the day's bar goes on.
    provider.prices = {"AAA": Decimal("89.1"), "BBB": Decimal("55"), "CCC": Decimal("21")}
    tick_run(slot=tick_slot(NOON + timedelta(minutes=1)))
    third = level(second * (1 + Decimal("-0.10") / 3))
    assert closes("1m") == [second, third]
    assert bars("1d") == [(day_start, first, second, third, third, 3)]


def test_a_redelivered_tick_leaves_the_index_unchanged(provider, three):
    provider.prices = {"AAA": Decimal("110"), "BBB": Decimal("45"), "CCC": Decimal("22")}
    tick_run(slot=tick_slot(NOON))
    before = bars("1m"), bars("1d")
    assert before[0][0][4] == level(Decimal("1000") * (1 + Decimal("0.10") / 3))
    # The same slot again (a retried task): its quotes are not newer than the rows'.
    provider.prices = {"AAA": Decimal("150"), "BBB": Decimal("45"), "CCC": Decimal("22")}
    tick_run(slot=tick_slot(NOON))
    assert (bars("1m"), bars("1d")) == before


def test_listing_or_delisting_a_stock_does_not_make_the_index_jump(provider, three):
    provider.prices = {"AAA": Decimal("110"), "BBB": Decimal("50"), "CCC": Decimal("20")}
    tick_run(slot=tick_slot(NOON))
    moved = closes("1m")[-1]
    assert moved == level(Decimal("1000") * (1 + Decimal("0.10") / 3))

    # A new listing at a far higher price, one never quoted (no price yet), and a
    # delisting: with no price moving, the level stays where it was.
    StockFactory(symbol="BIG", last_price=Decimal("5000"))
    StockFactory(symbol="NEW", last_price=Decimal("0"), previous_close=Decimal("0"))
    stock_delist(stock_ids=[three[1].id], at=NOON)
    provider.prices = {
        "AAA": Decimal("110"),
        "CCC": Decimal("20"),
        "BIG": Decimal("5000"),
        "NEW": Decimal("7"),
    }
    tick_run(slot=tick_slot(NOON) + 1)
    assert closes("1m")[-1] == moved
    assert bars("1m")[-1][5] == 4  # AAA, CCC, BIG, NEW

    # From there the newcomers count like everyone: BIG +4%, over four stocks.
    provider.prices["BIG"] = Decimal("5200")
    tick_run(slot=tick_slot(NOON) + 2)
    assert closes("1m")[-1] == level(moved * (1 + Decimal("0.04") / 4))


def test_a_tick_with_nothing_listed_writes_no_index_bar(provider):
    tick_run(slot=tick_slot(NOON))
    assert not IndexBar.objects.exists()


# --- rebuilding from price history ---------------------------------------------------

D1, D2, D3 = (day_bar_start(date(2026, 3, day)) for day in (2, 3, 4))


def price_bar(stock: Stock, resolution: str, start: datetime, close: str, **range_) -> PriceBar:
    value = Decimal(close)
    open_ = Decimal(range_.get("open", close))
    return PriceBar.objects.create(
        stock=stock,
        resolution=resolution,
        start=start,
        open=open_,
        high=Decimal(range_.get("high", max(value, open_))),
        low=Decimal(range_.get("low", min(value, open_))),
        close=value,
        volume=100,
    )


@pytest.fixture
def history(db) -> dict[str, Stock]:
    """Daily closes (D1, D2, D3) and minute closes on D3 at 14:00, 14:01, 14:02:

    AAA  100, 110, 121    121, 133.1, 133.1
    BBB   50,  45,  45     45,  45,    36
    CCC    -,  20,  22    (listed on D2: no return that day)
    EEE   10,   -,  20    (no bar on D2: its D1-to-D3 move is not a one-day return)
    """
    stocks = {symbol: StockFactory(symbol=symbol) for symbol in ("AAA", "BBB", "CCC", "EEE")}
    for symbol, series in {
        "AAA": ((D1, "100"), (D2, "110")),
        "BBB": ((D1, "50"), (D2, "45")),
        "CCC": ((D2, "20"),),
        "EEE": ((D1, "10"), (D3, "20")),
    }.items():
        for start, close in series:
            price_bar(stocks[symbol], "1d", start, close)
    price_bar(stocks["AAA"], "1d", D3, "121", open="115", high="125", low="112")
    price_bar(stocks["BBB"], "1d", D3, "45", open="45", high="46", low="44")
    price_bar(stocks["CCC"], "1d", D3, "22", open="21", high="23", low="20")
    minute = D3 + timedelta(hours=14)
    for offset, (aaa, bbb) in enumerate((("121", "45"), ("133.1", "45"), ("133.1", "36"))):
        price_bar(stocks["AAA"], "1m", minute + timedelta(minutes=offset), aaa)
        price_bar(stocks["BBB"], "1m", minute + timedelta(minutes=offset), bbb)
    return stocks


def test_a_rebuild_chains_the_average_daily_return_of_the_stocks_that_traded_both_days(
    history,
):
    written = index_rebuild()
    assert written == 3 + 3
    days = bars("1d")
    assert [row[0] for row in days] == [D1, D2, D3]
    # D1 is the base; D2: +10% and -10%; D3: +10%, 0, +10% (EEE's bar does not count).
    assert [row[4] for row in days] == [
        Decimal("1000.0000"),
        Decimal("1000.0000"),
        Decimal("1066.6667"),
    ]
    assert [row[5] for row in days] == [3, 3, 4]  # the stocks with a bar that day
    # D3's open, high and low average the stocks' against their previous closes.
    opens = (Decimal(115) / 110 + Decimal(45) / 45 + Decimal(21) / 20) / 3
    highs = (Decimal(125) / 110 + Decimal(46) / 45 + Decimal(23) / 20) / 3
    lows = (Decimal(112) / 110 + Decimal(44) / 45 + Decimal(20) / 20) / 3
    assert days[2][1:4] == (level(1000 * opens), level(1000 * highs), level(1000 * lows))


def test_a_rebuild_chains_minutes_from_the_previous_sessions_close(history):
    index_rebuild()
    # From D2's close (1000): the first minute has no previous one; then +10% and 0
    # (5%), then 0 and -20% (-10%).
    assert closes("1m") == [Decimal("1000.0000"), Decimal("1050.0000"), Decimal("945.0000")]
    assert [row[5] for row in bars("1m")] == [2, 2, 2]


def test_a_rebuild_since_a_date_keeps_the_levels_before_it(history):
    index_rebuild()
    IndexBar.objects.filter(resolution="1d", start=D2).update(close=Decimal("2000"))
    PriceBar.objects.filter(stock=history["BBB"], resolution="1d", start=D3).update(
        close=Decimal("54"), high=Decimal("54")
    )
    index_rebuild(since=D3)
    # D2 was not rebuilt (its tampered close stays) and D3 chains from it: +10%, +20%, +10%.
    assert closes("1d") == [Decimal("1000.0000"), Decimal("2000.0000"), Decimal("2266.6667")]
    assert closes("1m")[0] == Decimal("2000.0000")  # the session's minutes re-anchored


def test_the_ticks_continue_from_the_rebuilt_newest_bar(provider, history):
    index_rebuild()
    Stock.objects.filter(symbol="AAA").update(last_price=Decimal("133.1"))
    Stock.objects.filter(symbol="BBB").update(last_price=Decimal("36"))
    Stock.objects.filter(symbol__in=["CCC", "EEE"]).update(delisted_at=D1)
    provider.prices = {"AAA": Decimal("146.41"), "BBB": Decimal("36")}
    tick_run(slot=tick_slot(D3 + timedelta(hours=14, minutes=5)))
    assert closes("1m")[-1] == level(Decimal("945") * (1 + Decimal("0.10") / 2))


def test_an_empty_history_rebuilds_to_nothing(db):
    assert index_rebuild() == 0
    assert selectors.index_quote() is None


def test_the_rebuild_command_reports_what_it_wrote(history):
    out = StringIO()
    call_command("rebuild_index", stdout=out)
    assert "6 bars" in out.getvalue()
    assert "daily bars" in out.getvalue()
    out = StringIO()
    call_command("rebuild_index", "--since", "2026-03-04", stdout=out)
    assert "4 bars" in out.getvalue()  # D3 and the three minutes of its session
    with pytest.raises(CommandError, match="not a date"):
        call_command("rebuild_index", "--since", "March")


def test_seeding_a_market_gives_it_index_history():
    call_command(
        "seed_market", "--stocks", "11", "--days", "5", "--minute-days", "1", stdout=StringIO()
    )
    assert IndexBar.objects.filter(resolution="1d").count() == 5
    assert IndexBar.objects.filter(resolution="1m").count() == 1440
    newest = IndexBar.objects.filter(resolution="1m").latest("start")
    assert newest.constituents == 11
    assert selectors.index_quote().level == newest.close


def test_importing_prices_rebuilds_the_index_from_the_files_first_day(tmp_path: Path):
    StockFactory(symbol="AAA")
    StockFactory(symbol="BBB")
    header = "Date,Open,High,Low,Close,Adj Close,Volume\n"
    (tmp_path / "AAA.csv").write_text(
        header + "2024-01-02,10,10,10,10,10,5\n2024-01-03,11,11,11,11,11,5\n"
    )
    (tmp_path / "BBB.csv").write_text(
        header + "2024-01-02,20,20,20,20,20,5\n2024-01-03,20,20,20,20,20,5\n"
    )
    prices_import(path=tmp_path / "AAA.csv")
    assert closes("1d") == [Decimal("1000.0000"), Decimal("1100.0000")]
    out = StringIO()
    call_command("import_prices", str(tmp_path / "BBB.csv"), stdout=out)
    assert closes("1d") == [Decimal("1000.0000"), Decimal("1050.0000")]
    assert "Rebuilding the Bullpen Composite" in out.getvalue()


def test_a_batch_of_imports_can_leave_the_index_to_one_rebuild(tmp_path: Path):
    StockFactory(symbol="AAA")
    (tmp_path / "AAA.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,10,10,10,10,10,5\n"
    )
    call_command("import_prices", str(tmp_path / "AAA.csv"), "--no-index", stdout=StringIO())
    assert not IndexBar.objects.exists()
    call_command("rebuild_index", stdout=StringIO())
    assert closes("1d") == [Decimal("1000.0000")]


# --- reads ---------------------------------------------------------------------------


def index_bar(resolution: str, start: datetime, close: str, constituents: int = 3) -> IndexBar:
    value = Decimal(close)
    return IndexBar.objects.create(
        resolution=resolution,
        start=start,
        open=value,
        high=value,
        low=value,
        close=value,
        constituents=constituents,
    )


def test_the_quote_is_the_newest_level_against_the_previous_sessions_close(db):
    index_bar("1d", D1, "990")
    index_bar("1d", D2, "1000")
    index_bar("1d", D3, "1010")
    index_bar("1m", D3 + timedelta(hours=14), "1008")
    index_bar("1m", D3 + timedelta(hours=14, minutes=1), "1012.5")
    quote = selectors.index_quote()
    assert quote.level == Decimal("1012.5")
    assert quote.previous_close == Decimal("1000")
    assert (quote.change, quote.change_pct) == (Decimal("12.5"), Decimal("1.25"))
    assert quote.as_of == D3 + timedelta(hours=14, minutes=1) and quote.intraday
    assert quote.trading_date == date(2026, 3, 4)


def test_without_minute_bars_the_quote_is_the_newest_daily_close(db):
    index_bar("1d", D1, "1000")
    index_bar("1d", D2, "950")
    quote = selectors.index_quote()
    assert (quote.level, quote.change, quote.change_pct) == (
        Decimal("950"),
        Decimal("-50"),
        Decimal("-5.00"),
    )
    assert not quote.intraday and quote.trading_date == date(2026, 3, 3)


@pytest.fixture
def index_history(db) -> datetime:
    """400 daily bars and two days of minute bars, ending at `newest` minute."""
    newest = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    IndexBar.objects.bulk_create(
        [
            IndexBar(
                resolution="1d",
                start=day_bar_start(date(2026, 3, 4)) - timedelta(days=index),
                open=Decimal("1000"),
                high=Decimal("1001"),
                low=Decimal("999"),
                close=Decimal("1000") + index,
                constituents=3,
            )
            for index in range(400)
        ]
        + [
            IndexBar(
                resolution="1m",
                start=newest - timedelta(minutes=index),
                open=Decimal("1000"),
                high=Decimal("1001"),
                low=Decimal("999"),
                close=Decimal("1000.5"),
                constituents=3,
            )
            for index in range(2 * 1440)
        ]
    )
    return newest


@pytest.mark.parametrize(
    ("range_name", "bucket", "points"),
    [("1d", 180, 481), ("1w", 1800, 97), ("1m", 7200, 25), ("1y", 86400, 366), ("all", 86400, 400)],
)
def test_the_index_chart_answers_every_range(client, index_history, range_name, bucket, points):
    response = client.get(f"/market/index.json?range={range_name}")
    assert response.status_code == 200
    payload = response.json()
    assert (payload["symbol"], payload["range"], payload["bucket"]) == ("BPX", range_name, bucket)
    assert len(payload["points"]) == points
    assert payload["points"] == sorted(payload["points"])
    # Epoch seconds, then open, high, low and close as exact decimal strings.
    last = payload["points"][-1]
    assert isinstance(last[0], int) and all(isinstance(value, str) for value in last[1:])


def test_the_index_chart_has_weekly_steps_over_a_long_history(client, db):
    for index in range(3 * 366 // 7):
        index_bar("1d", D1 - timedelta(days=7 * index), "1000")
    payload = client.get("/market/index.json?range=all").json()
    assert payload["bucket"] == 7 * 86400


def test_an_unknown_index_range_is_a_400_with_a_message(client, db):
    response = client.get("/market/index.json?range=5y")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Unknown range '5y'; use one of 1d, 1w, 1m, 1y, all.",
        "field": "range",
    }


def test_the_index_chart_of_an_empty_index_has_no_points(client, db):
    payload = client.get("/market/index.json").json()
    assert (payload["range"], payload["points"]) == ("1d", [])


# --- the market page ---------------------------------------------------------------


def test_the_market_page_shows_the_composite_with_its_day_change(player_client, db):
    StockFactory(symbol="AAA")
    index_bar("1d", D2, "1000")
    index_bar("1d", D3, "1010")
    index_bar("1m", D3 + timedelta(hours=14), "1012.5", constituents=1)
    selectors.index_quote_refresh()  # as a tick or a rebuild leaves it
    html = player_client.get("/market/").content.decode()
    assert "Bullpen Composite" in html and "1 stock<" in html
    assert '<span id="bpx-level"' in html and ">1012.50</span>" in html
    assert '<span id="bpx-chg" class="gain">+12.50</span>' in html
    assert '<span id="bpx-chgp" class="gain">+1.25%</span>' in html
    assert 'data-chart-url="/market/index.json"' in html
    assert 'data-live-view="index" data-live-symbols=""' in html
    assert 'data-chart-range="1d" aria-pressed="true"' in html
    for label in ("1D", "1W", "1M", "1Y", "All"):
        assert f">{label}</button>" in html
    assert "js/market-chart.js" in html


def test_an_index_of_daily_history_only_opens_its_chart_on_1y(player_client, db):
    index_bar("1d", D2, "1000")
    selectors.index_quote_refresh()
    html = player_client.get("/market/").content.decode()
    assert 'data-chart-range="1y" aria-pressed="true"' in html
    assert 'data-chart-range="1d" aria-pressed="false"' in html
    assert "the close of" in html  # as of a trading date, not a minute


def test_a_page_that_finds_no_cached_quote_loads_the_panel_from_the_database(player_client, db):
    index_bar("1d", D2, "1000")
    index_bar("1m", D3 + timedelta(hours=14), "1020")
    html = player_client.get("/market/").content.decode()
    assert "bpx-level" not in html
    # The placeholder loads the panel, and links to it without JavaScript.
    assert 'hx-get="/market/composite/" hx-trigger="load" hx-swap="outerHTML"' in html
    assert '<a href="/market/composite/">' in html
    fragment = player_client.get("/market/composite/", HTTP_HX_REQUEST="true")
    assert ">1020.00</span>" in fragment.content.decode()
    assert "<html" not in fragment.content.decode()
    page = player_client.get("/market/composite/").content.decode()
    assert "<html" in page and ">1020.00</span>" in page
    # ... and back in the cache, so the next page has it inline.
    assert ">1020.00</span>" in player_client.get("/market/").content.decode()


def test_the_market_page_says_when_the_composite_has_no_history(player_client, db):
    StockFactory(symbol="AAA")
    player_client.get("/market/composite/", HTTP_HX_REQUEST="true")
    html = player_client.get("/market/").content.decode()
    assert 'id="composite-empty"' in html
    assert "no history yet" in html
    assert "bpx-level" not in html and "market-chart.js" not in html


def test_the_composite_panel_adds_no_query_to_the_market_page(player_client):
    StockFactory(symbol="AAA")
    player_client.get("/market/")  # the first request of a session records the device
    with CaptureQueriesContext(connection) as without:
        player_client.get("/market/")
    index_bar("1d", D3, "1010")
    index_bar("1m", D3 + timedelta(hours=14), "1012.5")
    selectors.index_quote_refresh()
    with CaptureQueriesContext(connection) as with_index:
        response = player_client.get("/market/")
    assert "bpx-level" in response.content.decode()
    assert len(with_index) == len(without)
    assert not any("market_indexbar" in query["sql"] for query in with_index.captured_queries)


def test_an_htmx_list_request_leaves_the_panel_out(player_client):
    index_bar("1m", D3 + timedelta(hours=14), "1012.5")
    selectors.index_quote_refresh()
    response = player_client.get("/market/?tab=gainers", HTTP_HX_REQUEST="true")
    assert "composite" not in response.content.decode()


def test_a_tick_and_a_rebuild_leave_the_quote_the_database_gives_in_the_cache(
    provider, three, django_capture_on_commit_callbacks, settings
):
    settings.MARKET_TICK_HOOKS = []
    index_bar("1d", day_bar_start(session_date(NOON)) - timedelta(days=1), "1000")
    provider.prices = {"AAA": Decimal("110"), "BBB": Decimal("50"), "CCC": Decimal("20")}
    with django_capture_on_commit_callbacks(execute=True):
        tick_run(slot=tick_slot(NOON))
    found, cached = selectors.index_quote_cached()
    assert found and cached == selectors.index_quote()
    assert (cached.level, cached.change, cached.change_pct) == (
        Decimal("1033.3333"),
        Decimal("33.3333"),
        Decimal("3.33"),
    )
    PriceBar.objects.create(
        stock=three[0],
        resolution="1d",
        start=D1,
        open=Decimal(1),
        high=Decimal(1),
        low=Decimal(1),
        close=Decimal(1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        index_rebuild()
    assert selectors.index_quote_cached() == (True, selectors.index_quote())
    assert selectors.index_quote().level == Decimal("1000.0000")


# --- the live push ---------------------------------------------------------------------


def test_the_pushed_index_spans_are_what_the_page_renders(db):
    index_bar("1d", D2, "1000")
    index_bar("1m", D3 + timedelta(hours=14), "987.6543")
    quote = selectors.index_quote()
    event = {"slot": 777_001, "at": int(NOON.timestamp())}
    quotes = {live.INDEX_KEY: live.index_quote_payload(quote)}
    # The index view ignores the (empty) symbol list its page subscribes with.
    [pushed] = live.tick_fragments(event, quotes, live.INDEX_VIEW, ())
    page = render_to_string(live.VIEWS[live.INDEX_VIEW], {"index": quote}).strip()
    assert pushed == page
    assert '<span id="bpx-chgp" class="loss">-1.23%</span>' in pushed
    assert 'data-level="987.6543"' in pushed


def test_a_tick_stores_the_index_with_its_quotes(
    provider, three, settings, django_capture_on_commit_callbacks
):
    settings.MARKET_TICK_HOOKS = []
    provider.prices = {"AAA": Decimal("110"), "BBB": Decimal("50"), "CCC": Decimal("20")}
    with django_capture_on_commit_callbacks(execute=True):
        result = tick_run(slot=tick_slot(NOON))
    sent = []

    class Layer:
        async def group_send(self, group, message):
            sent.append(message)

    from unittest import mock

    with (
        mock.patch.object(live, "get_channel_layer", return_value=Layer()),
        CaptureQueriesContext(connection) as queries,
    ):
        live.on_tick(result)
    assert len(queries) == 0  # the tick left the index's quote in the cache
    stored = json.loads(live.market_redis().get(live.TICK_QUOTES_KEY.format(slot=result.slot)))
    assert stored[live.INDEX_KEY][0] == "1033.3333"
    assert set(stored) == {"AAA", live.INDEX_KEY}  # BBB and CCC did not move
    assert sent and sent[0]["slot"] == result.slot
