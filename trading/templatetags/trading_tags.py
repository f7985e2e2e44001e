"""The order ticket's blank form, for pages that include the ticket with only `stock`."""

from __future__ import annotations

from django import template

from trading.forms import OrderForm

register = template.Library()


@register.simple_tag
def order_ticket_form(stock) -> OrderForm:
    """A fresh ticket for `stock`, with its own idempotency key."""
    return OrderForm.for_stock(stock.symbol)
