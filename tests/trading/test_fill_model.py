from __future__ import annotations

from decimal import Decimal

from trading import fill_model

D = Decimal


def test_commission_is_flat_plus_basis_points_to_the_cent():
    assert fill_model.commission(D("10000.00")) == D("6.00")
    assert fill_model.commission(D("1234.56")) == D("1.62")
    assert fill_model.commission(D("0")) == D("1.00")


def test_commission_follows_the_settings(settings):
    settings.FILL_COMMISSION_FLAT = D("0")
    settings.FILL_COMMISSION_BPS = D("10")
    assert fill_model.commission(D("1000.00")) == D("1.00")


def test_a_buy_pays_half_the_spread_up_and_a_sell_receives_it_less():
    assert fill_model.market_fill_price(quote=D("100"), side="buy") == D("100.0200")
    assert fill_model.market_fill_price(quote=D("100"), side="sell") == D("99.9800")


def test_the_spread_rounds_against_the_player_to_four_places():
    assert fill_model.market_fill_price(quote=D("12.3457"), side="buy") == D("12.3482")
    assert fill_model.market_fill_price(quote=D("12.3457"), side="sell") == D("12.3432")


def test_a_limit_fill_is_never_worse_than_the_limit():
    assert fill_model.limit_fill_price(quote=D("100"), side="buy", limit=D("100.01")) == D("100.01")
    assert fill_model.limit_fill_price(quote=D("90"), side="buy", limit=D("100")) == D("90.0180")
    assert fill_model.limit_fill_price(quote=D("100"), side="sell", limit=D("99.99")) == D("99.99")


def test_the_protected_price_adds_the_band_and_the_spread(settings):
    settings.ORDER_PROTECTION_BAND = D("0.05")
    assert fill_model.protected_price(D("100")) == D("105.0210")


def test_a_buy_reservation_is_notional_plus_its_fee():
    assert fill_model.buy_reservation(price=D("100"), quantity=10) == D("1001.50")
    assert fill_model.buy_reservation(price=D("95"), quantity=10) == D("951.48")
