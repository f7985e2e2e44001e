"""The leaderboard: the recompute's figures and ranks by hand, who is ranked, the page."""

from __future__ import annotations

import math
import re
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from portfolio import leaderboard as board_module
from portfolio.leaderboard import (
    BoardEntry,
    leaderboard_entry_for,
    leaderboard_recompute,
    leaderboard_rows,
    leaderboard_state,
)
from portfolio.models import Portfolio, PortfolioPerformance
from portfolio.services import cash_adjust, portfolio_open
from portfolio.tasks import recompute_leaderboard
from tests.factories import PerformanceFactory, UserFactory
from tests.portfolio.trades import settle

pytestmark = pytest.mark.django_db
D = Decimal
SQRT_YEAR = math.sqrt(365.25)
DAILY_RISK_FREE = 1.04 ** (1 / 365.25) - 1


def public_player(handle: str, **fields) -> Portfolio:
    return portfolio_open(owner=UserFactory(handle=handle, public_profile=True, **fields))


def buy(portfolio, stock, quantity, price) -> None:
    settle(portfolio, stock, "buy", quantity, price, fee="0", key=uuid.uuid4().hex)


def history(portfolio, **figures) -> PortfolioPerformance:
    return PerformanceFactory(portfolio=portfolio, **figures)


def sharpe(n: int, total: float, total_sq: float) -> tuple[float, float]:
    """Sharpe ratio and annualized volatility % from the running sums, worked in floats."""
    mean = total / n
    stddev = math.sqrt((total_sq - total * total / n) / (n - 1))
    return (mean - DAILY_RISK_FREE) / stddev * SQRT_YEAR, stddev * SQRT_YEAR * 100


@pytest.fixture
def board(make_stock):
    """Three ranked players with hand-picked histories, worked out below."""
    up = make_stock("UP", "100.0000")
    down = make_stock("DOWN", "100.0000")
    # Ace: all in UP, now 120: +20%. Peak growth 1.5 earlier, so a 20% drawdown.
    ace = public_player("ace")
    buy(ace, up, 1000, "100.0000")
    history(
        ace,
        last_net_worth=D("120000.00"),
        growth=D("1.2"),
        peak_growth=D("1.5"),
        max_drawdown=D("-0.2"),
        daily_returns=5,
        daily_return_sum=D("0.05"),
        daily_return_sum_sq=D("0.0015"),
    )
    # Bea: only cash, no snapshot yet: 0%, no drawdown, no Sharpe ratio.
    bea = public_player("bea")
    # Cal: half in DOWN, now 80: 90,000, growth 1.0 -> 0.9 (-10%). Peak 1.25, so the
    # live point is the deepest drawdown: 0.9 / 1.25 - 1 = -28%.
    cal = public_player("cal")
    buy(cal, down, 500, "100.0000")
    history(
        cal,
        last_net_worth=D("100000.00"),
        growth=D("1.0"),
        peak_growth=D("1.25"),
        max_drawdown=D("-0.1"),
        daily_returns=5,
        daily_return_sum=D("-0.01"),
        daily_return_sum_sq=D("0.0005"),
    )
    for stock, price in ((up, "120.0000"), (down, "80.0000")):
        stock.last_price = D(price)
        stock.save(update_fields=["last_price"])
    return {"ace": ace, "bea": bea, "cal": cal}


def entry(portfolio) -> BoardEntry:
    found = leaderboard_entry_for(portfolio.owner)
    assert found is not None and found.portfolio_id == portfolio.pk
    return found


def ranked_ids(view: str = "return") -> list[int]:
    return [row.portfolio_id for row in leaderboard_rows(view=view, first=1, last=100)]


def handles_in(html: str) -> list[str]:
    table = html[html.index('id="board-table"') :]
    return re.findall(r'<a href="/u/([a-z0-9_]+)/">', table)


# --- the recompute ----------------------------------------------------------------------


def test_it_ranks_players_by_time_weighted_return_sharpe_and_drawdown(board):
    state = leaderboard_recompute()
    assert (state.ranked, state.sharpe_ranked) == (3, 2)
    ace, bea, cal = entry(board["ace"]), entry(board["bea"]), entry(board["cal"])
    assert (ace.rank, bea.rank, cal.rank) == (1, 2, 3)
    assert (ace.sharpe_rank, bea.sharpe_rank, cal.sharpe_rank) == (1, None, 2)
    # Smallest drawdown first: Bea 0, Ace -20%, Cal -28%.
    assert (bea.drawdown_rank, ace.drawdown_rank, cal.drawdown_rank) == (1, 2, 3)
    assert (ace.net_worth, bea.net_worth, cal.net_worth) == (
        D("120000.00"),
        D("100000.00"),
        D("90000.00"),
    )
    assert (ace.return_pct, bea.return_pct, cal.return_pct) == (D("20"), D("0"), D("-10"))
    assert (ace.max_drawdown_pct, bea.max_drawdown_pct, cal.max_drawdown_pct) == (
        D("-20"),
        D("0"),
        D("-28"),
    )
    # Ace: mean 0.01, sample variance (0.0015 - 0.05^2 / 5) / 4 = 0.00025.
    ace_sharpe, ace_volatility = sharpe(5, 0.05, 0.0015)
    assert ace.sharpe == pytest.approx(D(ace_sharpe), abs=D("0.0001"))
    assert float(ace.sharpe) == pytest.approx(11.9574, abs=0.0001)
    assert float(ace.volatility_pct) == pytest.approx(ace_volatility, abs=0.0001)
    assert float(ace.volatility_pct) == pytest.approx(30.2180, abs=0.0001)
    cal_sharpe, _ = sharpe(5, -0.01, 0.0005)
    assert float(cal.sharpe) == pytest.approx(cal_sharpe, abs=0.0001)
    assert bea.sharpe is None and bea.volatility_pct is None
    assert ace.computed_at == state.computed_at


def test_a_grant_does_not_count_as_a_gain(make_stock):
    granted = public_player("granted")
    history(granted, last_net_worth=D("110000.00"), growth=D("1.1"), peak_growth=D("1.1"))
    Portfolio.objects.filter(pk=granted.pk).update(cash=D("110000.00"))  # its 10% gain
    cash_adjust(
        portfolio=granted,
        amount=D("50000.00"),
        reason="Prize",
        by=UserFactory(is_staff=True),
        idempotency_key="prize",
    )
    leaderboard_recompute()
    mine = entry(granted)
    assert mine.net_worth == D("160000.00")
    assert mine.return_pct == D("10")  # not 60%


def test_fewer_than_five_daily_returns_give_no_sharpe_ratio(board):
    PortfolioPerformance.objects.filter(portfolio=board["cal"]).update(daily_returns=4)
    leaderboard_recompute()
    cal = entry(board["cal"])
    assert cal.sharpe is None and cal.sharpe_rank is None and cal.volatility_pct is None
    assert entry(board["ace"]).sharpe_rank == 1


def test_ties_go_to_the_older_portfolio():
    first, second, third = (public_player(f"tie{n}") for n in range(3))
    leaderboard_recompute()
    assert [entry(p).rank for p in (first, second, third)] == [1, 2, 3]
    assert [entry(p).drawdown_rank for p in (first, second, third)] == [1, 2, 3]


def test_only_active_public_players_main_portfolios_are_ranked(make_stock):
    ranked = public_player("ranked")
    portfolio_open(owner=UserFactory(handle="private"))  # did not opt in
    public_player("teacher", is_staff=True)
    public_player("suspended", suspended_at=timezone.now())
    public_player("deleted", deleted_at=timezone.now())
    public_player("inactive", is_active=False)
    portfolio_open(owner=ranked.owner, name="Side")
    broke = public_player("broke")
    Portfolio.objects.filter(pk=broke.pk).update(starting_cash=0)
    state = leaderboard_recompute()
    assert state.ranked == 1
    assert ranked_ids() == ranked_ids("drawdown") == [ranked.pk]
    assert leaderboard_entry_for(UserFactory()) is None


def test_a_recompute_replaces_the_whole_board(board):
    leaderboard_recompute()
    board["ace"].owner.public_profile = False
    board["ace"].owner.save(update_fields=["public_profile"])
    state = leaderboard_recompute()
    assert state.ranked == 2
    assert leaderboard_entry_for(board["ace"].owner) is None
    assert ranked_ids() == [board["bea"].pk, board["cal"].pk]
    assert [row.rank for row in leaderboard_rows(view="return", first=1, last=9)] == [1, 2]


def test_a_new_generation_replaces_the_old_one_which_expires(board):
    first = leaderboard_recompute()
    second = leaderboard_recompute()
    assert second.generation > first.generation
    assert leaderboard_state() == second
    client = board_module.board_redis()
    assert client.ttl(board_module.STATE_KEY) > 3600
    for part in board_module.BOARD_PARTS:
        assert client.ttl(f"leaderboard:{second.generation}:{part}") > 3600  # a week
        assert 0 < client.ttl(f"leaderboard:{first.generation}:{part}") <= 120


def test_a_run_that_finishes_after_a_newer_one_is_dropped(board):
    newer = leaderboard_recompute()
    rows = board_module.board_inputs_read()
    parts, ranked, sharpe_ranked = board_module.board_build(rows[:1])
    client = board_module.board_redis()
    client.set(board_module.GENERATION_KEY, newer.generation - 2)  # an older run's number
    board_module.board_publish(
        parts, computed_at=timezone.now(), ranked=ranked, sharpe_ranked=sharpe_ranked
    )
    assert leaderboard_state() == newer
    assert len(ranked_ids()) == 3


@pytest.mark.django_db(transaction=True)
def test_racing_recomputes_leave_one_whole_board_the_newest():
    players = [public_player(f"racer{n}") for n in range(5)]
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    states: list = []
    errors: list[BaseException] = []

    def recompute() -> None:
        try:
            barrier.wait()
            states.append(leaderboard_recompute())
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=recompute) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == [] and len(states) == threads_count
    current = leaderboard_state()
    assert current.generation == max(state.generation for state in states)
    assert ranked_ids() == [player.pk for player in players]
    assert [row.rank for row in leaderboard_rows(view="drawdown", first=1, last=9)] == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_a_player_who_went_private_since_the_recompute_is_not_listed(client, board):
    leaderboard_recompute()
    ace = board["ace"].owner
    ace.public_profile = False
    ace.save(update_fields=["public_profile"])
    assert ranked_ids() == [board["bea"].pk, board["cal"].pk]
    assert "@ace" not in client.get(reverse("leaderboard")).content.decode()


def test_the_task_recomputes_and_publishes_the_totals(board):
    assert recompute_leaderboard() == 3
    state = leaderboard_state()
    assert (state.ranked, state.sharpe_ranked) == (3, 2)
    # The board is a cache: after a flush the page says it is not computed yet.
    cache.clear()
    assert leaderboard_state().computed_at is None
    assert leaderboard_rows(view="return", first=1, last=25) == []


def test_a_players_rank_is_read_from_the_board(board):
    leaderboard_recompute()
    assert entry(board["cal"]).rank == 3
    assert entry(board["bea"]).return_pct == D("0")
    assert leaderboard_entry_for(portfolio_open(owner=UserFactory()).owner) is None


@pytest.fixture
def breaker_reset():
    yield board_module.read_breaker
    board_module.read_breaker.open_until = 0.0


def test_with_redis_unreachable_the_page_says_the_board_is_not_ready(
    player_client, board, breaker_reset
):
    published = leaderboard_recompute()
    with override_settings(REDIS_CACHE_URL="redis://127.0.0.1:1/1"):
        assert leaderboard_state().computed_at is None
        response = player_client.get(reverse("leaderboard"))
    assert response.status_code == 200
    assert "The leaderboard has not been computed yet." in response.content.decode()
    # For the next few seconds the board is not asked at all, even though it is back...
    assert breaker_reset.is_open and leaderboard_state().computed_at is None
    # ...and once they have passed it is read again.
    breaker_reset.open_until = 0.0
    assert leaderboard_state() == published


# --- the page ------------------------------------------------------------------------


@pytest.fixture
def computed(board, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        leaderboard_recompute()
    return board


def login(client, portfolio):
    client.force_login(portfolio.owner)
    return client


def test_the_page_lists_players_by_total_return_with_links_to_their_profiles(client, computed):
    response = client.get(reverse("leaderboard"))
    assert response.status_code == 200
    html = response.content.decode()
    assert handles_in(html) == ["ace", "bea", "cal"]
    assert '<span class="gain">+20.00%</span>' in html
    assert '<span class="loss">-10.00%</span>' in html
    assert re.search(r"Updated [0-9] seconds? ago", html)


def test_the_page_orders_by_sharpe_ratio_and_by_drawdown(client, computed):
    sharpe_page = client.get(reverse("leaderboard"), {"by": "sharpe"}).content.decode()
    assert handles_in(sharpe_page) == ["ace", "cal"]  # Bea has no Sharpe ratio
    drawdown_page = client.get(reverse("leaderboard"), {"by": "drawdown"}).content.decode()
    assert handles_in(drawdown_page) == ["bea", "ace", "cal"]
    assert "-28.00%" in drawdown_page


def test_an_unknown_view_is_a_400_with_a_message(client, computed):
    response = client.get(reverse("leaderboard"), {"by": "luck"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Unknown leaderboard view &#x27;luck&#x27;" in html
    assert "by=return" in html and "by=sharpe" in html and "by=drawdown" in html


def test_your_own_row_is_highlighted_and_your_rank_shown(client, computed):
    html = login(client, computed["bea"]).get(reverse("leaderboard")).content.decode()
    assert "You are #2</span> of 3 by total return" in html
    row = re.search(r'<tr class="is-me" aria-current="true">(.*?)</tr>', html, re.S)
    assert row and "@bea" in row.group(1)
    assert html.count('class="is-me"') == 1
    by_drawdown = client.get(reverse("leaderboard"), {"by": "drawdown"}).content.decode()
    assert "You are #1</span> of 3 by max drawdown" in by_drawdown
    by_sharpe = client.get(reverse("leaderboard"), {"by": "sharpe"}).content.decode()
    assert "You have no Sharpe ratio yet" in by_sharpe


def test_a_private_player_is_told_why_they_are_not_ranked(client, computed):
    private = portfolio_open(owner=UserFactory(handle="quiet"))
    html = login(client, private).get(reverse("leaderboard")).content.decode()
    assert "You are not ranked: your profile is private." in html
    assert 'href="/accounts/settings/#profile-settings">Make your profile public' in html
    assert handles_in(html) == ["ace", "bea", "cal"]


def test_a_visitor_sees_the_board_without_a_rank(client, computed):
    html = client.get(reverse("leaderboard")).content.decode()
    assert handles_in(html) == ["ace", "bea", "cal"]
    assert 'id="my-rank"' not in html


def test_the_page_before_the_first_recompute_says_so(client, player_client):
    html = player_client.get(reverse("leaderboard")).content.decode()
    assert "The leaderboard has not been computed yet." in html
    assert 'id="board-table"' not in html


def test_the_board_paginates_by_rank_range(client, django_capture_on_commit_callbacks):
    players = [public_player(f"p{n:02d}") for n in range(30)]
    with django_capture_on_commit_callbacks(execute=True):
        leaderboard_recompute()
    first = client.get(reverse("leaderboard")).content.decode()
    assert handles_in(first) == [f"p{n:02d}" for n in range(25)]
    assert "Page 1 of 2 · 30 players" in first
    second = client.get(reverse("leaderboard"), {"page": "2"}).content.decode()
    assert handles_in(second) == [f"p{n:02d}" for n in range(25, 30)]
    # Past the end: the last page; not a number: the first.
    assert handles_in(client.get(reverse("leaderboard"), {"page": "9"}).content.decode()) == [
        f"p{n:02d}" for n in range(25, 30)
    ]
    assert client.get(reverse("leaderboard"), {"page": "x"}).status_code == 200
    # Your rank on page 2 while reading page 1.
    html = login(client, players[27]).get(reverse("leaderboard")).content.decode()
    assert "You are #28</span> of 30" in html and 'class="is-me"' not in html


def test_the_sharpe_view_without_any_sharpe_ratio_says_why(client, player_client):
    public_player("fresh")
    leaderboard_recompute()
    html = client.get(reverse("leaderboard"), {"by": "sharpe"}).content.decode()
    assert "Nobody has a Sharpe ratio yet" in html


def test_an_htmx_request_gets_the_board_fragment(client, computed):
    response = client.get(
        reverse("leaderboard"), {"by": "drawdown"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and handles_in(html) == ["bea", "ace", "cal"]


def test_a_page_costs_a_capped_number_of_queries(
    client, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    players = [public_player(f"q{n:02d}") for n in range(60)]
    with django_capture_on_commit_callbacks(execute=True):
        leaderboard_recompute()
    login(client, players[40])
    client.get(reverse("leaderboard"))  # the session's first request records the device
    for query in ({}, {"by": "sharpe"}, {"by": "drawdown", "page": "2"}, {"page": "3"}):
        # Session, user, the header's wallet and the page's owners: the board is in Redis.
        with django_assert_max_num_queries(4):
            assert client.get(reverse("leaderboard"), query).status_code == 200
    client.logout()
    with django_assert_max_num_queries(1):  # a visitor: the page's owners
        assert client.get(reverse("leaderboard"), {"page": "2"}).status_code == 200


def test_the_updated_time_counts_seconds_since_the_recompute(client, board):
    with_past = timezone.now() - timedelta(seconds=42)
    leaderboard_recompute(now=with_past)
    html = client.get(reverse("leaderboard")).content.decode()
    assert re.search(r"Updated 4[23] seconds ago", html)


def test_staff_read_the_performance_rows_in_the_admin(admin_client, computed):
    performance_url = reverse("admin:portfolio_portfolioperformance_changelist")
    assert admin_client.get(performance_url).status_code == 200
    change = reverse("admin:portfolio_portfolioperformance_change", args=[computed["ace"].pk])
    assert b'name="_save"' not in admin_client.get(change).content
