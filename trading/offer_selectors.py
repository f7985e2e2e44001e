"""Reads of offers used in more than one place: the offer pages and the live refresh."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from trading.models import OFFER_LIVE_STATUSES, OfferTake, TradeOffer


def _offers() -> QuerySet[TradeOffer]:
    return TradeOffer.objects.select_related("stock", "maker__owner", "addressee")


def offer_for_user(*, user: Any, offer_id: int) -> TradeOffer:
    """The access helper: an offer the player made, one addressed to them, or one open
    to every player. Another pair's offer is a 404 (its existence is nobody else's
    business)."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such offer.")
    visible = Q(maker__owner=user) | Q(addressee=user) | Q(addressee__isnull=True)
    offer = _offers().filter(visible, pk=offer_id).first()
    if offer is None:
        raise Http404("No such offer.")
    return offer


def offers_incoming(*, user: Any) -> QuerySet[TradeOffer]:
    """Offers addressed to the player, live ones first, newest first."""
    return _offers().filter(addressee=user).order_by("status", "-created_at", "-id")


def offers_outgoing(*, user: Any) -> QuerySet[TradeOffer]:
    return _offers().filter(maker__owner=user).order_by("-created_at", "-id")


def offers_board(*, symbol: str = "") -> QuerySet[TradeOffer]:
    """Live offers open to every player, optionally of one stock, newest first."""
    offers = _offers().filter(
        addressee__isnull=True, status__in=OFFER_LIVE_STATUSES, expires_at__gt=timezone.now()
    )
    if symbol:
        offers = offers.filter(stock__symbol=symbol.upper())
    return offers.order_by("-created_at", "-id")


def incoming_live_count(*, user: Any) -> int:
    return TradeOffer.objects.filter(
        addressee=user, status__in=OFFER_LIVE_STATUSES, expires_at__gt=timezone.now()
    ).count()


def player_by_handle(handle: str, *, by: Any = None) -> Any | None:
    """The player with this handle ("@" optional, any case) whom `by` may address an
    offer to: one who can trade and either shows a public profile or has already dealt
    with `by` (an offer between them, either way). Anyone else reads as unknown, so the
    offer form cannot be used to find out which handles belong to private players."""
    handle = (handle or "").strip().lstrip("@").lower()
    if not handle:
        return None
    known = Q(public_profile=True)
    if by is not None and getattr(by, "pk", None) is not None:
        dealt = TradeOffer.objects.filter(
            Q(maker__owner=OuterRef("pk"), addressee=by)
            | Q(maker__owner=by, addressee=OuterRef("pk"))
        )
        taken = OfferTake.objects.filter(
            Q(seller=OuterRef("pk"), buyer=by) | Q(seller=by, buyer=OuterRef("pk"))
        )
        known |= Q(Exists(dealt)) | Q(Exists(taken))
    return (
        get_user_model()
        .objects.filter(
            known,
            handle=handle,
            is_active=True,
            deleted_at__isnull=True,
            suspended_at__isnull=True,
        )
        .first()
    )
