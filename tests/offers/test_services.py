"""The offer services: escrow, settlement, the lifecycle and every refusal."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from market.models import Stock
from portfolio.models import LedgerEntry, Portfolio
from trading import fill_model
from trading.errors import InsufficientShares, StockNotTradable
from trading.models import OfferStatus, OfferTake, TradeOffer
from trading.offer_errors import (
    InvalidOffer,
    NotAllowed,
    OfferNotLive,
    PriceOutsideBand,
    QuantityAboveRemaining,
    SelfTrade,
    TooManyOpenOffers,
)
from trading.offer_services import (
    offer_accept,
    offer_cancel,
    offer_counter,
    offer_decline,
    offer_price_band,
    offers_expire,
)

from .conftest import books, grant_shares, make, position, reconcile_ok

D = Decimal
pytestmark = pytest.mark.django_db


def accept(offer, taker, quantity, key=None):
    return offer_accept(
        offer=offer, taker=taker, quantity=quantity, idempotency_key=key or uuid.uuid4().hex
    )


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


# --- making ---------------------------------------------------------------------------


def test_a_sell_offer_escrows_the_makers_shares(maker, stock):
    grant_shares(maker, stock, 30)
    offer = make(maker, stock, quantity=10)
    assert offer.status == OfferStatus.OPEN
    assert offer.reserved_quantity == 10 and offer.remaining_quantity == 10
    assert position(maker, stock).reserved_quantity == 10
    reconcile_ok()


def test_a_buy_offer_escrows_cash_with_the_commission(maker, stock):
    offer = make(maker, stock, side="buy", quantity=10, price=D("100.0000"))
    # 1,000 + (1.00 flat + 5 bps of 1,000) = 1,001.50
    assert offer.reserved_cash == D("1001.50")
    assert fresh(maker).reserved_cash == D("1001.50")
    reconcile_ok()


def test_the_band_is_rounded_inwards_around_the_quote():
    assert offer_price_band(D("100.0000")) == (D("90.0000"), D("110.0000"))
    assert offer_price_band(D("33.3333")) == (D("30.0000"), D("36.6666"))


@pytest.mark.parametrize("price", ["89.9999", "110.0001", "500"])
def test_a_price_outside_the_band_is_refused_and_nothing_is_written(maker, stock, price):
    grant_shares(maker, stock, 30)
    before = books()
    with pytest.raises(PriceOutsideBand) as refused:
        make(maker, stock, price=D(price))
    assert "$90.0000 to $110.0000" in refused.value.message
    assert refused.value.field == "price"
    assert books() == before and not TradeOffer.objects.exists()


@pytest.mark.parametrize("price", ["90.0000", "110.0000"])
def test_the_band_edges_are_allowed(maker, stock, price):
    grant_shares(maker, stock, 30)
    assert make(maker, stock, price=D(price)).price == D(price)


def test_halted_and_delisted_stocks_cannot_be_offered(maker, stock):
    grant_shares(maker, stock, 30)
    Stock.objects.filter(pk=stock.pk).update(halted=True, halt_reason="news pending")
    with pytest.raises(StockNotTradable, match="halted"):
        make(maker, stock)
    Stock.objects.filter(pk=stock.pk).update(halted=False, delisted_at=timezone.now())
    with pytest.raises(StockNotTradable, match="delisted"):
        make(maker, stock)
    assert not TradeOffer.objects.exists()


def test_an_offer_to_yourself_is_refused(maker, stock):
    grant_shares(maker, stock, 30)
    with pytest.raises(SelfTrade):
        make(maker, stock, addressee=maker.owner)


def test_selling_shares_you_do_not_have_is_refused(maker, stock):
    grant_shares(maker, stock, 5)
    before = books()
    with pytest.raises(InsufficientShares, match="needs 10 and 5 are available"):
        make(maker, stock, quantity=10)
    assert books() == before


def test_the_number_of_open_offers_is_capped(maker, stock, settings):
    settings.MAX_OPEN_OFFERS = 2
    make(maker, stock, side="buy", quantity=1)
    make(maker, stock, side="buy", quantity=1)
    with pytest.raises(TooManyOpenOffers, match="2 open offers"):
        make(maker, stock, side="buy", quantity=1)


def test_the_same_key_makes_one_offer(maker, stock):
    first = make(maker, stock, side="buy", idempotency_key="k1")
    again = make(maker, stock, side="buy", idempotency_key="k1", quantity=99)
    assert again.pk == first.pk and TradeOffer.objects.count() == 1
    assert fresh(maker).reserved_cash == first.reserved_cash


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"price": D("1.00001")}, "price"),
        ({"price": D("-1")}, "price"),
        ({"message": "x" * 281}, "message"),
        ({"expires_in": timedelta(days=8)}, "expires_in"),
        ({"side": "hold"}, "side"),
    ],
)
def test_bad_terms_are_refused_next_to_their_field(maker, stock, terms, field):
    with pytest.raises(InvalidOffer) as refused:
        make(maker, stock, **terms)
    assert refused.value.field == field


# --- accepting --------------------------------------------------------------------------


def test_accepting_a_sell_offer_settles_both_sides_under_one_reference(maker, taker, stock):
    grant_shares(maker, stock, 30)
    offer = make(maker, stock, quantity=10, price=D("102.5000"), addressee=taker.owner)
    cash_before = fresh(maker).cash + fresh(taker).cash

    take = accept(offer, taker, 10)

    fee = fill_model.commission(D("1025.00"))
    assert fee == D("1.51")
    maker_after, taker_after = fresh(maker), fresh(taker)
    assert maker_after.cash == D("100000.00") - D("3000.00") + D("1025.00") - fee
    assert taker_after.cash == D("100000.00") - D("1025.00") - fee
    assert maker_after.cash + taker_after.cash == cash_before - 2 * fee
    assert position(maker, stock).quantity == 20 and position(maker, stock).reserved_quantity == 0
    assert position(taker, stock).quantity == 10
    entries = LedgerEntry.objects.filter(reference=f"offer:{offer.pk}/take:1")
    assert sorted(entries.values_list("kind", flat=True)) == [
        "fee",
        "fee",
        "offer_buy",
        "offer_sell",
    ]
    offer = fresh(offer)
    assert offer.status == OfferStatus.FILLED and offer.remaining_quantity == 0
    assert (take.seller_id, take.buyer_id) == (maker.owner_id, taker.owner_id)
    assert take.quote_price == D("100.0000") and take.maker_fee == take.taker_fee == fee
    reconcile_ok()


def test_partial_takes_release_a_buy_offers_escrow_pro_rata(maker, taker, third, stock):
    grant_shares(taker, stock, 10)
    grant_shares(third, stock, 10)
    offer = make(maker, stock, side="buy", quantity=10, price=D("100.0000"))

    accept(offer, taker, 4)
    offer = fresh(offer)
    assert offer.status == OfferStatus.PARTLY_FILLED and offer.remaining_quantity == 6
    # What stays held is exactly the reservation of the 6 shares left.
    assert offer.reserved_cash == fill_model.buy_reservation(price=D("100"), quantity=6)
    assert fresh(maker).reserved_cash == offer.reserved_cash
    reconcile_ok()

    accept(offer, third, 6)
    offer = fresh(offer)
    assert offer.status == OfferStatus.FILLED and offer.reserved_cash == 0
    assert fresh(maker).reserved_cash == 0
    assert position(maker, stock).quantity == 10
    assert OfferTake.objects.filter(offer=offer).count() == 2
    # The maker paid one commission per take.
    fees = fill_model.commission(D("400.00")) + fill_model.commission(D("600.00"))
    assert fresh(maker).cash == D("100000.00") - D("1000.00") - fees
    reconcile_ok()


def test_the_same_accept_key_takes_once(maker, taker, stock):
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10)
    first = accept(offer, taker, 3, key="click")
    again = accept(offer, taker, 3, key="click")
    assert again.pk == first.pk
    assert fresh(offer).remaining_quantity == 7


def test_accepting_more_than_remains_is_refused_and_nothing_is_written(maker, taker, stock):
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10)
    accept(offer, taker, 6)
    before = books()
    with pytest.raises(QuantityAboveRemaining, match="Only 4 shares remain"):
        accept(offer, taker, 5)
    assert books() == before


@pytest.mark.parametrize("ending", ["cancelled", "filled", "expired", "declined", "past_expiry"])
def test_an_offer_that_ended_cannot_be_accepted(maker, taker, third, stock, ending):
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10, addressee=taker.owner)
    if ending == "cancelled":
        offer_cancel(offer=offer, by=maker.owner)
    elif ending == "filled":
        accept(offer, taker, 10)
    elif ending == "declined":
        offer_decline(offer=offer, by=taker.owner)
    else:
        TradeOffer.objects.filter(pk=offer.pk).update(expires_at=timezone.now() - timedelta(1))
        if ending == "expired":
            offers_expire()
    before = books()
    with pytest.raises(OfferNotLive) as refused:
        accept(offer, taker, 1)
    assert refused.value.status == 409
    assert (
        "expired" if ending == "past_expiry" else ending.replace("_", " ")
    ) in refused.value.message
    assert books() == before


def test_the_band_is_checked_again_at_acceptance(maker, taker, stock):
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10, price=D("105.0000"))
    Stock.objects.filter(pk=stock.pk).update(last_price=D("90.0000"))  # band: 81 to 99
    before = books()
    with pytest.raises(PriceOutsideBand, match="market has moved"):
        accept(offer, taker, 10)
    assert books() == before and fresh(offer).status == OfferStatus.OPEN


def test_a_halted_stock_cannot_be_settled(maker, taker, stock):
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10)
    Stock.objects.filter(pk=stock.pk).update(halted=True)
    with pytest.raises(StockNotTradable):
        accept(offer, taker, 10)


def test_who_may_accept(maker, taker, third, stock):
    grant_shares(maker, stock, 20)
    addressed = make(maker, stock, quantity=10, addressee=taker.owner)
    open_to_all = make(maker, stock, quantity=10)
    with pytest.raises(SelfTrade):
        accept(addressed, maker, 1)
    with pytest.raises(SelfTrade):
        accept(open_to_all, maker, 1)
    with pytest.raises(NotAllowed):
        accept(addressed, third, 1)
    assert accept(open_to_all, third, 1).taker_id == third.pk
    assert accept(addressed, taker, 1).taker_id == taker.pk


def test_a_taker_without_the_cash_is_refused_with_nothing_written(
    maker, stock, make_portfolio, settings
):
    settings.STARTING_CASH = D("500.00")
    poor = make_portfolio()
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10)
    before = books()
    with pytest.raises(Exception, match="Not enough buying power"):
        accept(offer, poor, 10)
    assert books() == before


# --- declining, cancelling, countering, expiring ----------------------------------------


def test_the_addressee_declines_and_the_escrow_is_released(maker, taker, third, stock):
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10, addressee=taker.owner)
    for outsider in (maker.owner, third.owner):
        with pytest.raises(NotAllowed):
            offer_decline(offer=offer, by=outsider)
    offer_decline(offer=offer, by=taker.owner)
    assert fresh(offer).status == OfferStatus.DECLINED
    assert position(maker, stock).reserved_quantity == 0
    reconcile_ok()


def test_only_the_maker_cancels_and_the_escrow_is_released(maker, taker, stock):
    offer = make(maker, stock, side="buy", quantity=10)
    before = books()
    with pytest.raises(NotAllowed, match="Only the player who made"):
        offer_cancel(offer=offer, by=taker.owner)
    assert books() == before
    offer_cancel(offer=offer, by=maker.owner)
    assert fresh(offer).status == OfferStatus.CANCELLED
    assert fresh(maker).reserved_cash == 0
    with pytest.raises(OfferNotLive, match="already cancelled"):
        offer_cancel(offer=offer, by=maker.owner)
    reconcile_ok()


def test_a_counter_goes_back_to_the_maker_the_other_way_and_declines_the_original(
    maker, taker, stock
):
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10, price=D("108"), addressee=taker.owner)
    counter = offer_counter(
        offer=offer,
        counterer=taker,
        quantity=10,
        price=D("101"),
        message="Meet me at 101?",
        idempotency_key="c1",
    )
    assert counter.countered_from_id == offer.pk
    assert counter.addressee_id == maker.owner_id and counter.maker_id == taker.pk
    assert counter.side == "buy" and counter.reserved_cash == D("1011.51")
    assert fresh(offer).status == OfferStatus.DECLINED
    assert position(maker, stock).reserved_quantity == 0
    reconcile_ok()
    # The original maker takes the counter: they sell their 10 at 101.
    accept(counter, maker, 10)
    assert position(taker, stock).quantity == 10
    reconcile_ok()


def test_countering_an_open_offer_leaves_it_open(maker, taker, stock):
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10)
    offer_counter(offer=offer, counterer=taker, quantity=5, price=D("99"), idempotency_key="c")
    assert fresh(offer).status == OfferStatus.OPEN
    with pytest.raises(SelfTrade):
        offer_counter(offer=offer, counterer=maker, quantity=5, price=D("99"), idempotency_key="d")


def test_expiry_releases_the_escrow_once(maker, taker, stock):
    grant_shares(maker, stock, 10)
    sell = make(maker, stock, quantity=10)
    buy = make(maker, stock, side="buy", quantity=3)
    keep = make(maker, stock, side="buy", quantity=1, expires_in=timedelta(days=7))
    accept(sell, taker, 4)
    TradeOffer.objects.filter(pk__in=[sell.pk, buy.pk]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert offers_expire() == 2
    assert offers_expire() == 0
    assert fresh(sell).status == fresh(buy).status == OfferStatus.EXPIRED
    assert fresh(sell).remaining_quantity == 6  # what was taken stays taken
    assert fresh(keep).status == OfferStatus.OPEN
    assert position(maker, stock).reserved_quantity == 0
    assert fresh(maker).reserved_cash == keep.reserved_cash
    reconcile_ok()


def test_the_expiry_task_calls_the_service(maker, stock):
    from trading.tasks import expire_offers

    offer = make(maker, stock, side="buy", quantity=1)
    TradeOffer.objects.filter(pk=offer.pk).update(expires_at=timezone.now())
    assert expire_offers() == 1
    assert isinstance(fresh(maker), Portfolio) and fresh(maker).reserved_cash == 0
