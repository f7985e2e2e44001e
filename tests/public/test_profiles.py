"""Public profiles at /u/<handle>/: public by the player's choice (visitors see them
too), visible to their owner while private, and one identical 404 for everyone else,
whatever the reason, so the page never tells a private handle from a free one."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.utils import timezone

from accounts.services import user_delete
from market.models import Stock
from portfolio.leaderboard import leaderboard_recompute
from portfolio.models import NetWorthSnapshot, Portfolio
from portfolio.services import cash_adjust, portfolio_open
from tests.factories import PerformanceFactory, UserFactory
from tests.portfolio.trades import settle

pytestmark = pytest.mark.django_db
D = Decimal


def text(response) -> str:
    return response.content.decode()


def make_stock(symbol: str, price: str, sector: str = "technology", **fields) -> Stock:
    fields.setdefault("previous_close", D(price))
    return Stock.objects.create(
        symbol=symbol, name=f"{symbol} Corp", sector=sector, last_price=D(price), **fields
    )


def set_price(stock: Stock, price: str) -> None:
    Stock.objects.filter(pk=stock.pk).update(last_price=D(price))


@pytest.fixture
def public_player(db):
    return UserFactory(handle="showoff", display_name="Sam Show", public_profile=True)


@pytest.fixture
def public_portfolio(public_player) -> Portfolio:
    return portfolio_open(owner=public_player)


@pytest.fixture
def private_player(db):
    user = UserFactory(handle="hidden", display_name="Hidden Hal")
    portfolio_open(owner=user)
    return user


def ranked(portfolio: Portfolio) -> None:
    """Give `portfolio` a history the leaderboard works from, and recompute the board:
    1% up on a peak of 5% (so -3.81% live, but -7.5% at worst before), and five daily
    returns summing to 5% (squares 0.0015): Sharpe 11.96, volatility 30.2%."""
    PerformanceFactory(
        portfolio=portfolio,
        growth=D("1.01"),
        peak_growth=D("1.05"),
        max_drawdown=D("-0.075"),
        daily_returns=5,
        daily_return_sum=D("0.05"),
        daily_return_sum_sq=D("0.0015"),
    )
    leaderboard_recompute()


# --- what a public profile shows -----------------------------------------------------


def test_a_visitor_sees_a_public_profile_with_name_handle_and_joined_date(
    client, public_portfolio, public_player
):
    response = client.get("/u/showoff/")
    html = text(response)
    assert response.status_code == 200
    assert '<h1 class="page-title">Sam Show</h1>' in html
    assert '<span id="profile-handle">@showoff</span>' in html
    assert f'Joined <time datetime="{public_player.date_joined.isoformat()}' in html
    # A visitor is a guest: the top bar offers to log in, and the offer link goes there.
    assert 'href="/accounts/signup/"' in html and 'class="sidebar"' not in html
    offer = "/accounts/login/?next=" + quote("/offers/new/?to=showoff", safe="/")
    assert f'href="{offer}">Offer to trade</a>' in html
    assert "profile-private-banner" not in html


def test_a_player_sees_an_offer_link_to_the_profiles_player(player_client, public_portfolio):
    html = text(player_client.get("/u/showoff/"))
    assert 'href="/offers/new/?to=showoff">Offer to trade</a>' in html


def test_the_return_is_time_weighted_and_live(client, public_portfolio, public_player):
    stock = make_stock("GROW", "100.0000")
    settle(public_portfolio, stock, "buy", 100, "100.0000", fee="0")
    # A grant from a moderator is money from outside the game: it is not a gain.
    cash_adjust(
        portfolio=public_portfolio,
        amount=D("50000.00"),
        reason="Prize",
        by=UserFactory(),
        idempotency_key="grant-1",
    )
    set_price(stock, "110.0000")  # +1,000 on 100,000
    html = text(client.get("/u/showoff/"))
    assert '<span id="profile-return" class="gain">+1.00%</span>' in html


def test_rank_and_risk_figures_come_from_the_leaderboard(client, public_portfolio):
    # Two players ahead by return; only the one with a drawdown is behind on it.
    for handle, growth in (("leader", "1.3"), ("second", "1.2")):
        ahead = portfolio_open(owner=UserFactory(handle=handle, public_profile=True))
        PerformanceFactory(
            portfolio=ahead,
            growth=D(growth),
            peak_growth=D("1.3"),
            max_drawdown=D("-0.2") if handle == "second" else D("0"),
        )
    ranked(public_portfolio)
    html = text(client.get("/u/showoff/"))
    assert re.search(r'id="profile-rank">#3<', html)
    assert "#1 by Sharpe ratio; #2 by smallest drawdown." in html
    assert re.search(r'id="profile-sharpe"><span class="gain">11\.96</span>', html)
    assert 'id="profile-volatility">30.2%<' in html
    assert 'id="profile-drawdown"><span class="loss">-7.50%</span>' in html
    assert "Rank and risk figures as of" in html


def test_a_player_not_ranked_yet_says_so(client, public_portfolio):
    html = text(client.get("/u/showoff/"))
    assert "Not ranked yet" in html
    assert 'id="profile-rank"><span class="flat">—</span>' in html
    assert 'id="profile-sharpe"><span class="flat">—</span>' in html


def test_staff_with_a_public_profile_are_shown_as_not_ranked(client):
    portfolio_open(owner=UserFactory(handle="teacher", is_staff=True, public_profile=True))
    assert "staff run the game" in text(client.get("/u/teacher/"))


def test_holdings_are_shown_by_weight_without_share_counts_by_default(client, public_portfolio):
    tech = make_stock("TECH", "100.0000")
    oil = make_stock("OILY", "50.0000", sector="energy")
    settle(public_portfolio, tech, "buy", 300, "100.0000", fee="0", key="t")  # 30,000
    settle(public_portfolio, oil, "buy", 200, "50.0000", fee="0", key="o")  # 10,000
    html = text(client.get("/u/showoff/"))
    assert '<span id="profile-weight-TECH">30.0%</span>' in html
    assert '<span id="profile-weight-OILY">10.0%</span>' in html
    assert '<span id="profile-weight-cash">60.0%</span>' in html
    # Largest first, each bar as long as its weight and coloured by its sector.
    assert html.index("profile-weight-TECH") < html.index("profile-weight-OILY")
    assert '<rect width="30.0" height="8" rx="2" fill="#0072b2">' in html
    assert '<rect width="10.0" height="8" rx="2" fill="#e69f00">' in html
    assert "Energy" in html
    assert "profile-shares-" not in html and ">Shares</th>" not in html


def test_share_counts_show_when_the_player_chose_to(client, public_portfolio, public_player):
    settle(public_portfolio, make_stock("TECH", "100.0000"), "buy", 1250, "10.0000", fee="0")
    public_player.profile_show_shares = True
    public_player.save(update_fields=["profile_show_shares"])
    html = text(client.get("/u/showoff/"))
    assert '<td class="num" id="profile-shares-TECH">1,250</td>' in html


def test_recent_trades_are_hidden_unless_the_player_chose_to_show_them(
    client, public_portfolio, public_player
):
    settle(public_portfolio, make_stock("TECH", "100.0000"), "buy", 10, "100.0000")
    html = text(client.get("/u/showoff/"))
    assert "Recent trades" not in html and "profile-trades" not in html


def test_recent_trades_list_the_last_ten_buys_and_sells_with_player_trades(
    client, public_portfolio, public_player
):
    public_player.profile_show_trades = True
    public_player.save(update_fields=["profile_show_trades"])
    stock = make_stock("TECH", "100.0000")
    for index in range(11):
        settle(public_portfolio, stock, "buy", index + 1, "100.0000", key=f"b{index}")
    settle(public_portfolio, stock, "sell", 7, "101.5000", key="last", kind_prefix="offer_")
    html = text(client.get("/u/showoff/"))
    trades = html[html.index('id="profile-trades"') :]
    rows = re.findall(r"<tr>\s*<td><time.*?</tr>", trades, re.S)
    assert len(rows) == 10  # fees are not trades, and only the last ten show
    assert 'Sell</span> <span class="muted">with a player</span>' in rows[0]
    assert ">7</td>" in rows[0] and ">101.50</td>" in rows[0]
    assert "Buy</span>" in rows[1] and ">11</td>" in rows[1]
    assert all(">1</td>" not in row and ">2</td>" not in row for row in rows)


def test_the_profile_charts_a_year_of_daily_net_worth(client, public_portfolio):
    now = timezone.now()
    for days, value in ((300, "90000.00"), (2, "101000.00"), (1, "102000.00")):
        NetWorthSnapshot.objects.create(
            portfolio=public_portfolio,
            at=now - timedelta(days=days),
            net_worth=D(value),
            cash=D(value),
        )
    html = text(client.get("/u/showoff/"))
    assert "<polyline" in html and "low $90,000.00" in html and "high $102,000.00" in html


def test_a_profile_without_a_portfolio_says_so(client):
    UserFactory(handle="noportfolio", public_profile=True)
    response = client.get("/u/noportfolio/")
    assert response.status_code == 200
    assert "This player has no portfolio yet." in text(response)


# --- who sees what: owner, outsider, visitor ----------------------------------------


def test_the_owner_sees_their_private_profile_with_a_banner_and_a_settings_link(client):
    owner = UserFactory(handle="hidden")
    portfolio_open(owner=owner)
    client.force_login(owner)
    response = client.get("/u/hidden/")
    html = text(response)
    assert response.status_code == 200
    assert "Only you can see this page: your profile is private." in html
    assert 'href="/accounts/settings/#profile-settings">Make it public in settings</a>' in html
    assert "Offer to trade" not in html
    assert "Not ranked: only public profiles are ranked." in html


def test_the_owner_of_a_public_profile_gets_links_to_what_it_hides(
    client, public_portfolio, public_player
):
    client.force_login(public_player)
    html = text(client.get("/u/showoff/"))
    assert "profile-private-banner" not in html
    assert "This is your public profile, as everyone sees it." in html
    assert "Your recent trades are not shown." in html


def test_an_outsider_and_a_visitor_get_404_for_a_private_profile(
    client, player_client, private_player
):
    assert player_client.get("/u/hidden/").status_code == 404
    player_client.logout()
    assert client.get("/u/hidden/").status_code == 404


def headers_of(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name != "X-Request-ID"}


def _hide(reason: str, user) -> None:
    if reason == "deleted":
        user_delete(user=user)
    elif reason == "suspended":
        type(user).objects.filter(pk=user.pk).update(suspended_at=timezone.now())
    elif reason == "inactive":
        type(user).objects.filter(pk=user.pk).update(is_active=False)


@pytest.mark.parametrize("logged_in", [False, True], ids=["visitor", "player"])
@pytest.mark.parametrize(
    "path",
    [
        "/u/hidden/",  # private
        "/u/HIDDEN/",
        "/u/@Hidden/",
        "/u/gone/",  # public, then deleted
        "/u/benched/",  # public, then suspended
        "/u/dormant/",  # public, inactive
        "/u/NoBody_Here/",  # nobody has it
        "/u/x/",  # too short to be a handle
        "/u/" + "a" * 31 + "/",
        "/u/bad%20handle/",
        "/u/%C3%BCrsula/",
        "/u/semi;colon/",
        "/u/..%2F..%2Fetc/",
    ],
)
def test_every_hidden_profile_is_the_same_404_as_an_unknown_handle(
    client, private_player, player, logged_in, path
):
    for handle, reason in (("gone", "deleted"), ("benched", "suspended"), ("dormant", "inactive")):
        user = UserFactory(handle=handle, public_profile=True)
        portfolio_open(owner=user)
        _hide(reason, user)
    if logged_in:
        client.force_login(player)
    unknown = client.get("/u/nobody/")
    response = client.get(path)
    assert unknown.status_code == response.status_code == 404
    # Byte for byte, headers included (but the per-request id): nothing tells them apart.
    assert response.content == unknown.content
    assert headers_of(response) == headers_of(unknown)


def test_the_handle_is_found_in_any_letter_case_for_a_public_profile(client, public_portfolio):
    for path in ("/u/ShowOff/", "/u/SHOWOFF/", "/u/@showoff/"):
        assert client.get(path).status_code == 200, path


def test_the_profile_answers_only_get(client, public_portfolio):
    assert client.post("/u/showoff/").status_code == 405


# --- query counts ------------------------------------------------------------------------


def _busy_profile(portfolio: Portfolio) -> None:
    owner = portfolio.owner
    owner.profile_show_shares = owner.profile_show_trades = True
    owner.save(update_fields=["profile_show_shares", "profile_show_trades"])
    for index in range(30):
        settle(
            portfolio, make_stock(f"Q{index:03d}", "10.0000"), "buy", 10, "10.0000", key=f"{index}"
        )
    now = timezone.now()
    NetWorthSnapshot.objects.bulk_create(
        NetWorthSnapshot(
            portfolio=portfolio, at=now - timedelta(days=day), net_worth=D(100000), cash=D(100000)
        )
        for day in range(1, 60)
    )
    ranked(portfolio)


def test_the_profile_query_count_for_a_visitor_is_capped(
    client, public_portfolio, django_assert_max_num_queries
):
    _busy_profile(public_portfolio)
    # The player, the portfolio with its performance and rank, positions, trades, history.
    with django_assert_max_num_queries(5):
        response = client.get("/u/showoff/")
    assert response.status_code == 200
    assert text(response).count('id="profile-weight-Q') == 20


def test_the_profile_query_count_for_a_player_is_capped(
    player_client, public_portfolio, django_assert_max_num_queries
):
    _busy_profile(public_portfolio)
    player_client.get("/u/showoff/")  # the session's first request also records the device
    with django_assert_max_num_queries(8):
        response = player_client.get("/u/showoff/")
    assert response.status_code == 200


def test_a_hidden_profile_costs_one_query_at_most(
    client, private_player, django_assert_max_num_queries
):
    with django_assert_max_num_queries(1):
        assert client.get("/u/hidden/").status_code == 404
