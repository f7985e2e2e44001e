"""What trading tells the rest of Bullpen after a commit: pushes to the player's open
tabs (`user.<id>`, see market.consumers).

Services call these through `transaction.on_commit`, so they only ever see committed
rows and may run after the request that caused them has answered. A push is best
effort: a channel layer or Redis that is down costs a toast, never a trade (the pages
poll their live parts too), so each logs and carries on.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from market.groups import user_group
from portfolio.live import wallet_push
from trading.models import Fill, Order

logger = logging.getLogger(__name__)

# Regions marked data-live-refresh="orders" are re-fetched on these (static/js/live.js).
REFRESH = "orders"
# The toast and refresh-signal markup, shared with the offer events.
EVENT_TEMPLATE = "live/events.html#event"


def fill_made(fill_id: int) -> None:
    """A fill committed (a market order, or a resting order the tick fired): a toast,
    the order lists refreshed and the new wallet, in one frame to each open tab."""
    fill = Fill.objects.select_related("stock", "portfolio").filter(pk=fill_id).first()
    if fill is None:
        return
    verb = "Bought" if fill.side == "buy" else "Sold"
    text = f"{verb} {fill.quantity:,} {fill.stock.symbol} at ${fill.price:,.4f} (fee ${fill.fee:,.2f})."
    html = render_to_string(EVENT_TEMPLATE, {"text": text, "level": "success", "refresh": REFRESH})
    try:
        wallet_push(user_ids=[fill.portfolio.owner_id], extra_html=html)
    except Exception:  # noqa: BLE001 - best effort, see the module docstring
        logger.warning("fill %s not pushed", fill_id, exc_info=True)


def order_changed(order_id: int) -> None:
    """An order was placed, triggered, cancelled, expired or rejected: the player's
    other tabs refresh their order lists (the acting tab already shows it)."""
    owner_id = (
        Order.objects.filter(pk=order_id).values_list("portfolio__owner_id", flat=True).first()
    )
    layer = get_channel_layer()
    if owner_id is None or layer is None:
        return
    html = render_to_string("live/events.html#signal", {"refresh": REFRESH})
    try:
        async_to_sync(layer.group_send)(user_group(owner_id), {"type": "live.event", "html": html})
    except Exception:  # noqa: BLE001 - best effort, see the module docstring
        logger.warning("order %s change not pushed", order_id, exc_info=True)
