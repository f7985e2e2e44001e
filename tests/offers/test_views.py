"""The offer pages through the test client: the permission matrix, the confirmation
steps, bad input (a 4xx with the message, nothing written), htmx partials."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from trading.models import OfferStatus, TradeOffer

from .conftest import books, grant_shares, make, position

D = Decimal
pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def addressed(maker, taker, stock):
    grant_shares(maker, stock, 20)
    return make(maker, stock, quantity=10, addressee=taker.owner, message="<b>hi</b> & bye")


def login(client, portfolio):
    client.force_login(portfolio.owner)
    return client


# --- the permission matrix ---------------------------------------------------------------

ROLES = ["maker", "addressee", "third", "anonymous"]


def as_role(client, role, maker, taker, third):
    if role != "anonymous":
        login(client, {"maker": maker, "addressee": taker, "third": third}[role])
    return client


@pytest.mark.parametrize(
    ("role", "expected"), [("maker", 200), ("addressee", 200), ("third", 404), ("anonymous", 302)]
)
def test_who_sees_an_addressed_offer(client, addressed, maker, taker, third, role, expected):
    response = as_role(client, role, maker, taker, third).get(f"/offers/{addressed.pk}/")
    assert response.status_code == expected
    if expected == 200:
        # The message is shown escaped.
        assert b"&lt;b&gt;hi&lt;/b&gt; &amp; bye" in response.content
        assert b"<b>hi</b>" not in response.content


@pytest.mark.parametrize(
    ("role", "action", "expected"),
    [
        ("maker", "accept", 400),
        ("addressee", "accept", 302),
        ("third", "accept", 404),
        ("anonymous", "accept", 302),
        ("maker", "decline", 403),
        ("addressee", "decline", 302),
        ("third", "decline", 404),
        ("anonymous", "decline", 302),
        ("maker", "cancel", 302),
        ("addressee", "cancel", 403),
        ("third", "cancel", 404),
        ("anonymous", "cancel", 302),
        ("maker", "counter", 400),
        ("addressee", "counter", 204),
        ("third", "counter", 404),
        ("anonymous", "counter", 302),
    ],
)
def test_the_permission_matrix(client, addressed, maker, taker, third, role, action, expected):
    client = as_role(client, role, maker, taker, third)
    url = f"/offers/{addressed.pk}/{action}/"
    before = books()
    data = {"quantity": 2, "idempotency_key": "k", "step": "confirm"}
    if action == "counter":
        data |= {"price": "101", "expires_in": 24}
    headers = HTMX if action in ("decline", "cancel", "counter") else {}
    response = client.post(url, data, **headers)
    if action in ("decline", "cancel") and role in ("maker", "addressee") and expected == 302:
        expected = 200  # htmx: the card comes back in place
    assert response.status_code == expected, response.content[:400]
    allowed = expected in (200, 204) or (expected == 302 and role != "anonymous")
    offer = TradeOffer.objects.get(pk=addressed.pk)
    if not allowed:
        assert books() == before
        assert offer.status == OfferStatus.OPEN
    if role == "anonymous":
        assert response["Location"].startswith("/accounts/login/")


def test_an_open_offer_may_be_taken_by_any_other_player(client, maker, third, stock):
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10)
    login(client, third)
    assert client.get(f"/offers/{offer.pk}/").status_code == 200
    response = client.post(
        f"/offers/{offer.pk}/accept/", {"quantity": 3, "idempotency_key": "a", "step": "confirm"}
    )
    assert response.status_code == 302
    assert position(third, stock).quantity == 3


# --- accepting through the page -------------------------------------------------------


def test_accepting_asks_for_confirmation_first(client, addressed, taker, stock):
    login(client, taker)
    before = books()
    response = client.post(
        f"/offers/{addressed.pk}/accept/", {"quantity": 4, "idempotency_key": "a"}, **HTMX
    )
    assert response.status_code == 200
    assert b"Confirm trade" in response.content and b"You pay" in response.content
    assert b'id="offer-card"' in response.content and b"<html" not in response.content
    assert books() == before
    response = client.post(
        f"/offers/{addressed.pk}/accept/",
        {"quantity": 4, "idempotency_key": "a", "step": "confirm"},
        **HTMX,
    )
    assert response.status_code == 200
    assert b"Bought 4 AAPL" in response.content and b"toast" in response.content
    assert TradeOffer.objects.get(pk=addressed.pk).remaining_quantity == 6


@pytest.mark.parametrize("step", ["review", "confirm"])
def test_a_quantity_above_what_remains_is_a_409_next_to_the_field(client, addressed, taker, step):
    login(client, taker)
    before = books()
    response = client.post(
        f"/offers/{addressed.pk}/accept/",
        {"quantity": 11, "idempotency_key": "a", "step": step},
        **HTMX,
    )
    assert response.status_code == 409
    assert b"Only 10 shares remain" in response.content
    assert books() == before


@pytest.mark.parametrize("quantity", ["0", "-3", "abc", ""])
def test_a_bad_quantity_is_a_400(client, addressed, taker, quantity):
    login(client, taker)
    before = books()
    response = client.post(
        f"/offers/{addressed.pk}/accept/",
        {"quantity": quantity, "idempotency_key": "a", "step": "confirm"},
    )
    assert response.status_code == 400
    assert b"errorlist" in response.content
    assert books() == before


def test_accepting_a_cancelled_offer_says_so(client, addressed, maker, taker):
    login(client, maker).post(f"/offers/{addressed.pk}/cancel/")
    login(client, taker)
    before = books()
    response = client.post(
        f"/offers/{addressed.pk}/accept/",
        {"quantity": 1, "idempotency_key": "a", "step": "confirm"},
    )
    # The card no longer offers to accept: the refusal is shown above it.
    assert response.status_code == 409
    assert b"already cancelled" in response.content
    assert books() == before


def test_cancelling_someone_elses_offer_is_refused_with_a_message(client, addressed, taker):
    login(client, taker)
    before = books()
    response = client.post(f"/offers/{addressed.pk}/cancel/")
    assert response.status_code == 403
    assert b"Only the player who made an offer can cancel it" in response.content
    assert books() == before


def test_cancel_and_decline_have_a_confirmation_page_without_javascript(
    client, addressed, maker, taker
):
    login(client, maker)
    page = client.get(f"/offers/{addressed.pk}/cancel/")
    assert page.status_code == 200 and b"Yes, cancel it" in page.content
    response = client.post(f"/offers/{addressed.pk}/cancel/")
    assert response.status_code == 302
    assert any("cancelled" in str(m) for m in get_messages(response.wsgi_request))
    assert TradeOffer.objects.get(pk=addressed.pk).status == OfferStatus.CANCELLED


# --- making an offer -----------------------------------------------------------------------


def offer_data(**overrides):
    data = {
        "side": "sell",
        "symbol": "AAPL",
        "quantity": 5,
        "price": "101.5",
        "to": "",
        "message": "",
        "expires_in": 24,
        "idempotency_key": "mk1",
    }
    return data | overrides


def test_the_form_is_prefilled_from_a_stock_and_a_profile(client, maker, taker, stock):
    login(client, maker)
    response = client.get("/offers/new/?symbol=aapl&to=taker")
    assert response.status_code == 200
    assert b'value="AAPL"' in response.content and b'value="taker"' in response.content
    assert b"$90.0000" in response.content and b"$110.0000" in response.content


def test_making_an_offer_reviews_then_confirms(client, maker, taker, stock):
    grant_shares(maker, stock, 10)
    login(client, maker)
    before = books()
    review = client.post("/offers/new/", offer_data(to="@Taker"))
    assert review.status_code == 200 and b"Make offer" in review.content
    assert b"5 AAPL shares" in review.content
    assert books() == before
    done = client.post("/offers/new/", offer_data(to="@Taker", step="confirm"))
    offer = TradeOffer.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/offers/{offer.pk}/"
    assert offer.addressee_id == taker.owner_id and offer.price == D("101.5000")
    htmx_again = client.post("/offers/new/", offer_data(to="taker", step="confirm"), **HTMX)
    assert htmx_again.status_code == 204 and htmx_again["HX-Redirect"] == f"/offers/{offer.pk}/"
    assert TradeOffer.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "status", "text"),
    [
        ({"price": "111"}, 409, b"must be within $90.0000 to $110.0000"),
        ({"price": "1.00001"}, 400, b"errorlist"),
        ({"to": "maker"}, 400, b"to yourself"),
        ({"to": "nobody_here"}, 400, b"No player can trade as @nobody_here"),
        ({"symbol": "ZZZZ"}, 400, b"No listed stock"),
        ({"quantity": 500}, 409, b"Not enough AAPL shares"),
        ({"message": "x" * 281}, 400, b"errorlist"),
    ],
)
def test_bad_offers_are_refused_next_to_the_field(
    client, maker, taker, stock, overrides, status, text
):
    grant_shares(maker, stock, 10)
    login(client, maker)
    before = books()
    for step in ("review", "confirm"):
        response = client.post("/offers/new/", offer_data(step=step, **overrides))
        if overrides.get("quantity") and step == "review":
            continue  # shares are checked when the escrow is taken
        assert response.status_code == status, (step, response.content[:300])
        assert text in response.content
    assert books() == before and not TradeOffer.objects.exists()


def test_making_offers_is_rate_limited(client, maker, stock, settings):
    settings.RATELIMIT_OFFERS_USER = "2/m"
    login(client, maker)
    assert client.post("/offers/new/", offer_data(side="buy")).status_code == 200
    assert client.post("/offers/new/", offer_data(side="buy")).status_code == 200
    assert client.post("/offers/new/", offer_data(side="buy")).status_code == 429


def test_a_counter_is_made_from_its_page(client, addressed, maker, taker):
    login(client, taker)
    page = client.get(f"/offers/{addressed.pk}/counter/")
    assert page.status_code == 200 and b"Counter offer" in page.content
    data = {"quantity": 10, "price": "99", "expires_in": 24, "idempotency_key": "c1"}
    assert client.post(f"/offers/{addressed.pk}/counter/", data).status_code == 200
    response = client.post(f"/offers/{addressed.pk}/counter/", data | {"step": "confirm"})
    counter = TradeOffer.objects.get(countered_from=addressed)
    assert response.status_code == 302 and counter.addressee_id == maker.owner_id


# --- the lists ---------------------------------------------------------------------------


def test_the_tabs_list_the_right_offers(client, maker, taker, third, stock, make_portfolio):
    grant_shares(maker, stock, 50)
    to_taker = make(maker, stock, quantity=1, addressee=taker.owner)
    to_third = make(maker, stock, quantity=2, addressee=third.owner)
    board = make(maker, stock, quantity=3)
    login(client, taker)
    incoming = client.get("/offers/?tab=incoming").content.decode()
    assert f"#{to_taker.pk} " in incoming and f"#{to_third.pk} " not in incoming
    board_page = client.get("/offers/?tab=board&symbol=aapl").content.decode()
    assert f"#{board.pk} " in board_page and f"#{to_taker.pk} " not in board_page
    assert "No open offers in MSFT" in client.get("/offers/?tab=board&symbol=MSFT").content.decode()
    assert "No player has made you an offer" not in incoming
    login(client, maker)
    outgoing = client.get("/offers/?tab=outgoing").content.decode()
    assert all(f"#{o.pk} " in outgoing for o in (to_taker, to_third, board))
    partial = client.get("/offers/?tab=outgoing", **HTMX)
    assert b'id="offer-list"' in partial.content and b"<html" not in partial.content


def test_empty_states(client, maker):
    login(client, maker)
    assert b"No player has made you an offer yet" in client.get("/offers/").content
    assert b"t made any offers." in client.get("/offers/?tab=outgoing").content
    assert b"The board is empty" in client.get("/offers/?tab=board").content


def test_the_board_is_paginated_with_a_fixed_number_of_queries(
    client, maker, third, stock, django_assert_max_num_queries, settings
):
    settings.MAX_OPEN_OFFERS = 30
    for _ in range(25):
        make(maker, stock, side="buy", quantity=1)
    login(client, third)
    # The session, the header wallet and banners, the tab badge, the count and one page
    # of offers with their stock, maker and addressee: not one query per row.
    with django_assert_max_num_queries(16):
        first = client.get("/offers/?tab=board")
    assert first.status_code == 200 and b"Page 1 of 2" in first.content
    assert client.get("/offers/?tab=board&page=2").content.count(b"<tr>") == 1 + 5


def test_a_private_player_reads_as_unknown_until_the_two_have_dealt(
    client, maker, taker, third, stock
):
    """The offer form must not tell private handles from unknown ones; a player who has
    already dealt with you (an offer either way) can be addressed by handle."""
    grant_shares(maker, stock, 10)
    login(client, maker)
    unknown = client.post("/offers/new/", offer_data(to="nobody_here"))
    private = client.post("/offers/new/", offer_data(to="third"))
    assert unknown.status_code == private.status_code == 400
    refusal = b"No player can trade as @%s. Offers go to players with a public profile"
    assert refusal % b"nobody_here" in unknown.content
    assert refusal % b"third" in private.content
    make(third, stock, side="buy", quantity=1, addressee=maker.owner)
    assert client.post("/offers/new/", offer_data(to="third")).status_code == 200
