"""A player-to-player trade in a real browser: the maker offers shares to the taker
from the stock page; the taker finds it under Incoming and accepts part of it. Both
through the review + confirm steps, with htmx, the CSP and two separate sessions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from portfolio.models import LedgerEntry, Portfolio, Position
from portfolio.services import portfolio_open
from tests.factories import StockFactory
from tests.portfolio.trades import settle
from trading.models import OfferStatus, TradeOffer

PASSWORD = "plum-harbor-compass-88"


def log_in(page, handle: str, *, then: str) -> None:
    page.goto(f"/accounts/login/?next={then}")
    page.get_by_label("Email or handle", exact=True).fill(handle)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{then}")


def watch_for_errors(page, errors: list[str]) -> None:
    """Collect what would break the flow: an uncaught script error, a refused htmx request
    (htmx logs "Response Status Error Code ..."), anything the CSP blocks. Not collected:
    htmx's websocket errors (pytest's WSGI live server has no socket route) and the chart
    library's inline styles on the stock page (the market page's, not the offer flow's)."""

    def record(message) -> None:
        text = message.text
        if message.type != "error":
            return
        if "lightweight-charts" in message.location.get("url", ""):
            return
        if "Content Security Policy" in text or text.startswith("Response Status Error"):
            errors.append(f"{page.url}: {text}")

    page.on("console", record)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on("dialog", lambda dialog: dialog.accept())


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_sell_offer_is_made_to_one_player_who_accepts_part_of_it(browser_page, live_server):
    stock = StockFactory(symbol="AAPL", last_price=Decimal("100.0000"))
    maker_user = User.objects.create_user("offer_mia", "mia@example.com", PASSWORD)
    taker_user = User.objects.create_user(
        "offer_tom", "tom@example.com", PASSWORD, public_profile=True
    )
    maker = portfolio_open(owner=maker_user)
    taker = portfolio_open(owner=taker_user)
    settle(maker, stock, "buy", 20, "100", fee="0", key="grant-mia")  # 20 AAPL at $100
    errors: list[str] = []

    # --- the maker: stock page -> Offer to trade -> review -> confirm ---------------------
    page = browser_page
    watch_for_errors(page, errors)
    log_in(page, "offer_mia", then="/stocks/AAPL/")
    page.get_by_role("link", name="Offer to trade").click()
    page.wait_for_url("**/offers/new/?symbol=AAPL")
    form = page.locator("#offer-form")
    assert form.get_by_label("Stock symbol", exact=True).input_value() == "AAPL"
    assert form.get_by_label("I sell shares", exact=True).is_checked()
    form.get_by_label("Shares", exact=True).fill("10")
    # A price outside the band is refused (409) with the reason on the form: app.js (data-swap-errors)
    # swaps it in, where htmx alone would leave the form as it was.
    form.get_by_label("Price per share", exact=True).fill("200")
    form.get_by_label("To player (optional)", exact=True).fill("@offer_tom")
    form.get_by_role("button", name="Review offer").click()
    form.get_by_text("The price must be within $90.0000 to $110.0000").wait_for()
    form = page.locator("#offer-form")
    assert form.get_by_label("Shares", exact=True).input_value() == "10"
    form.get_by_label("Price per share", exact=True).fill("101")
    form.get_by_label("To player (optional)", exact=True).fill("@offer_tom")
    form.get_by_label("Message (optional)", exact=True).fill("Ten for you")
    form.get_by_role("button", name="Review offer").click()

    review = page.locator("#offer-form")
    review.get_by_text("Please check your offer.").wait_for()
    assert "sell 10 AAPL at $101" in review.inner_text()
    assert "@offer_tom" in review.inner_text()
    assert "10 AAPL shares" in review.inner_text()  # the escrow
    assert not TradeOffer.objects.exists()  # nothing made before the confirmation

    review.get_by_role("button", name="Make offer").click()
    page.wait_for_url("**/offers/*/")
    offer = TradeOffer.objects.get()
    assert page.url.endswith(f"/offers/{offer.pk}/")
    card = page.locator("#offer-card")
    assert "@offer_mia sells 10 AAPL at $101.0000 a share, to @offer_tom." in " ".join(
        card.locator("p").first.inner_text().split()
    )
    assert offer.side == "sell" and offer.quantity == 10 and offer.price == Decimal("101.0000")
    assert offer.addressee_id == taker_user.pk and offer.message == "Ten for you"
    escrow = Position.objects.get(portfolio=maker, stock=stock)
    assert (escrow.quantity, escrow.reserved_quantity) == (20, 10)

    # --- the taker, in a second browser context: /offers/ -> the offer -> accept 4 -------
    taker_context = page.context.browser.new_context(base_url=live_server.url)
    try:
        taker_page = taker_context.new_page()
        taker_page.set_default_timeout(15_000)
        watch_for_errors(taker_page, errors)
        log_in(taker_page, "offer_tom", then="/offers/")
        incoming = taker_page.locator("#offer-list")
        assert taker_page.locator(".tabs a.is-active").inner_text().startswith("Incoming")
        row = incoming.locator("tbody tr").filter(has_text="@offer_mia")
        assert "10 / 10" in row.inner_text() and "$101.0000" in row.inner_text()
        row.get_by_role("link", name=f"#{offer.pk} Sells").click()
        taker_page.wait_for_url(f"**/offers/{offer.pk}/")

        taker_card = taker_page.locator("#offer-card")
        # More than the offer holds: refused (409) with the reason next to the field.
        taker_card.get_by_label("Shares to take", exact=True).fill("11")
        taker_card.get_by_role("button", name="Review trade").click()
        taker_card.get_by_text("Only 10 shares remain on this offer.").wait_for()
        taker_card = taker_page.locator("#offer-card")
        taker_card.get_by_label("Shares to take", exact=True).fill("4")
        taker_card.get_by_role("button", name="Review trade").click()
        taker_page.get_by_role("button", name="Confirm trade").wait_for()
        check = taker_page.locator("#offer-card")
        assert "you buy 4 AAPL from @offer_mia" in check.inner_text()
        assert "$404.00" in check.inner_text() and "$1.20" in check.inner_text()
        assert "$405.20" in check.inner_text()  # what the taker pays
        assert LedgerEntry.objects.filter(reference__startswith="offer:").count() == 0

        taker_page.get_by_role("button", name="Confirm trade").click()
        taker_page.locator("#toasts").get_by_text(
            "Bought 4 AAPL at $101.0000 (fee $1.20)."
        ).wait_for()
        done = taker_page.locator("#offer-card")
        assert "6 / 10" in done.inner_text()
        assert "Partly filled" in done.inner_text()
        assert "@offer_tom" in done.locator("table").last.inner_text()

        # The taker's portfolio page lists the 4 shares.
        taker_page.goto("/portfolio/")
        holding = taker_page.locator("tbody tr").filter(has_text="AAPL").first
        assert " 4" in f" {holding.locator('td.num').first.inner_text()}"
    finally:
        taker_context.close()

    # --- the books: both sides of one trade, under one reference -------------------------
    offer.refresh_from_db()
    assert offer.status == OfferStatus.PARTLY_FILLED and offer.remaining_quantity == 6
    entries = LedgerEntry.objects.filter(reference=f"offer:{offer.pk}/take:1")
    sides = {(e.portfolio_id, e.kind): (e.cash_delta, e.quantity_delta) for e in entries}
    assert sides[(taker.pk, "offer_buy")] == (Decimal("-404.00"), 4)
    assert sides[(maker.pk, "offer_sell")] == (Decimal("404.00"), -4)
    assert sides[(taker.pk, "fee")] == (Decimal("-1.20"), 0)
    assert sides[(maker.pk, "fee")] == (Decimal("-1.20"), 0)
    cash = dict(Portfolio.objects.values_list("pk", "cash"))
    assert cash[taker.pk] == Decimal("99594.80")  # 100,000 - 404 - 1.20
    assert cash[maker.pk] == Decimal("98402.80")  # 100,000 - 2,000 + 404 - 1.20
    mine = Position.objects.get(portfolio=maker, stock=stock)
    theirs = Position.objects.get(portfolio=taker, stock=stock)
    assert (mine.quantity, mine.reserved_quantity) == (16, 6)
    assert (theirs.quantity, theirs.reserved_quantity) == (4, 0)

    # --- the maker sees the new state on the offer's page ------------------------------------
    page.reload()
    card = page.locator("#offer-card")
    assert "6 / 10" in card.inner_text() and "Partly filled" in card.inner_text()
    assert "@offer_tom" in card.locator("table").last.inner_text()
    assert errors == [], errors
