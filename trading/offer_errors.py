"""What can go wrong with an offer between players. Each is a TradingError, so views
show `message` next to `field` and answer with `status`, as they do for orders."""

from __future__ import annotations

from trading.errors import TradingError


class OfferError(TradingError):
    """Base of the offer errors."""


class InvalidOffer(OfferError):
    """The offer's own values make no sense (no shares, a bad price, a past expiry)."""


class PriceOutsideBand(OfferError):
    """The price is too far from the market's quote (settings.OFFER_PRICE_BAND)."""

    field = "price"
    status = 409


class TooManyOpenOffers(OfferError):
    status = 409


class SelfTrade(OfferError):
    """A player cannot trade with themself."""

    field = "addressee"


class UnknownAddressee(OfferError):
    field = "addressee"


class OfferNotLive(OfferError):
    """The offer filled, was cancelled or declined, or expired: nothing left to act on."""

    status = 409


class NotAllowed(OfferError):
    """This player may not do this to this offer (not the maker, not the addressee)."""

    status = 403


class QuantityAboveRemaining(OfferError):
    field = "quantity"
    status = 409
