"""What trading tells the rest of Bullpen after a commit.

The live-updates work fills these in (a push to `user.<id>`); until then they do
nothing. Services call them through `transaction.on_commit`, so they only ever see
committed rows and may run after the request that caused them has answered.
"""

from __future__ import annotations


def fill_made(fill_id: int) -> None:
    """A fill committed (a market order, or a resting order the tick fired)."""


def order_changed(order_id: int) -> None:
    """An order was placed, triggered, cancelled, expired or rejected."""
