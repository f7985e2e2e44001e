"""What happens after an offer commits: the counterparty is told live, wallets are
pushed and the pair is checked for collusion.

Services queue these with `transaction.on_commit`, so they only see committed rows.
None of them may fail the request that caused it: a channel layer or Redis that is
down costs a toast, never a trade, so each logs and carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from config.metrics import OFFERS_CREATED, OFFERS_SETTLED
from market.groups import user_group
from trading.models import OfferStatus, OfferTake, TradeOffer

logger = logging.getLogger(__name__)

# LiveConsumer.live_event forwards the event's `html` to the player's open tabs.
LIVE_EVENT = "live.event"
# Regions with data-live-refresh="offers" are re-fetched (static/js/live.js).
REFRESH = "offers"


def offer_live_send(*, user_ids: Iterable[int], text: str, level: str = "info") -> None:
    """A toast and a refresh of the offer lists on every open tab of these players."""
    layer = get_channel_layer()
    if layer is None:
        return
    html = render_to_string(
        "trading/offers/live.html#event", {"text": text, "level": level, "refresh": REFRESH}
    )
    for user_id in set(user_ids):
        try:
            async_to_sync(layer.group_send)(user_group(user_id), {"type": LIVE_EVENT, "html": html})
        except Exception:  # noqa: BLE001 - a push is best effort; the page polls too
            logger.warning("offer event to user %s not delivered", user_id, exc_info=True)


def _who(offer: TradeOffer) -> str:
    return f"@{offer.maker.owner.handle}"


def _what(offer: TradeOffer) -> str:
    verb = "sell you" if offer.side == "sell" else "buy from you"
    return f"{verb} {offer.quantity:,} {offer.stock.symbol} at ${offer.price:,.4f}"


def offer_made(offer_id: int) -> None:
    OFFERS_CREATED.inc()
    offer = TradeOffer.objects.select_related("maker__owner", "stock").filter(pk=offer_id).first()
    if offer is None or offer.addressee_id is None:
        return
    lead = "counters with an offer to" if offer.countered_from_id else "offers to"
    offer_live_send(user_ids=[offer.addressee_id], text=f"{_who(offer)} {lead} {_what(offer)}.")


def offer_closed(offer_id: int) -> None:
    offer = (
        TradeOffer.objects.select_related("maker__owner", "stock", "addressee")
        .filter(pk=offer_id)
        .first()
    )
    if offer is None:
        return
    symbol = offer.stock.symbol
    if offer.status == OfferStatus.DECLINED and offer.addressee is not None:
        offer_live_send(
            user_ids=[offer.maker.owner_id],
            text=f"@{offer.addressee.handle} declined your {symbol} offer.",
            level="warning",
        )
    elif offer.status == OfferStatus.CANCELLED and offer.addressee_id is not None:
        offer_live_send(
            user_ids=[offer.addressee_id], text=f"{_who(offer)} withdrew their {symbol} offer."
        )
    elif offer.status == OfferStatus.EXPIRED:
        offer_live_send(
            user_ids=[offer.maker.owner_id], text=f"Your {symbol} offer expired.", level="warning"
        )


def offer_taken(take_id: int) -> None:
    OFFERS_SETTLED.inc()
    take = (
        OfferTake.objects.select_related("offer__maker", "taker__owner", "stock")
        .filter(pk=take_id)
        .first()
    )
    if take is None:
        return
    offer = take.offer
    verb = "bought" if offer.side == "sell" else "sold"
    offer_live_send(
        user_ids=[offer.maker.owner_id],
        text=(
            f"@{take.taker.owner.handle} {verb} {take.quantity:,} {take.stock.symbol} "
            f"at ${take.price:,.4f} through your offer."
        ),
        level="success",
    )
    try:
        from portfolio.live import wallet_push

        wallet_push(user_ids=[take.seller_id, take.buyer_id])
    except Exception:  # noqa: BLE001 - best effort, as above
        logger.warning("wallet push after offer take %s failed", take_id, exc_info=True)
    try:
        from trading.collusion import collusion_scan_pair

        collusion_scan_pair(user_ids=(take.seller_id, take.buyer_id))
    except Exception:  # noqa: BLE001 - the beat task scans again
        logger.warning("collusion scan after offer take %s failed", take_id, exc_info=True)
