"""Fills and order changes reach the player's tabs, and only theirs: a toast, the order
lists' refresh signal and the new wallet, in one frame."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction

from portfolio.services import portfolio_open
from tests.factories import UserFactory
from tests.live.conftest import communicator, session_cookie
from tests.live.test_consumer import ids, subscribe
from trading.services import order_place

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _announce_at_once(monkeypatch):
    # A market fill's push goes out from a Celery task (trading.tasks.announce) queued
    # within 50 ms of the commit; no worker runs here, so the task runs in the queuing call.
    from trading.tasks import announce

    monkeypatch.setattr(announce, "delay", announce)


def market_buy(user, stock, quantity: int, key: str):
    portfolio = user.portfolios.first() or portfolio_open(owner=user)
    # order_place queues the events with on_commit: they run when this block commits.
    with transaction.atomic():
        return order_place(
            portfolio=portfolio,
            stock=stock,
            side="buy",
            type="market",
            quantity=quantity,
            idempotency_key=key,
        )


def test_a_fill_sends_its_player_a_toast_the_refresh_signal_and_the_wallet(make_stock):
    aapl = make_stock("AAPL")
    buyer, bystander = UserFactory(), UserFactory()
    portfolio_open(owner=buyer)
    buyer_cookie, bystander_cookie = session_cookie(buyer), session_cookie(bystander)

    async def scenario():
        buyer_ws, bystander_ws = communicator(buyer_cookie), communicator(bystander_cookie)
        assert (await buyer_ws.connect())[0]
        assert (await bystander_ws.connect())[0]
        await subscribe(buyer_ws, position=["AAPL"])
        await sync_to_async(market_buy)(buyer, aapl, 5, "fill-test-1")
        frames = [await buyer_ws.receive_from(timeout=3)]
        # order_changed (placed) may come first, as its own signal-only frame.
        if "toast" not in frames[0]:
            frames.append(await buyer_ws.receive_from(timeout=3))
        fill_frame = frames[-1]
        assert "Bought 5 AAPL at $" in fill_frame
        assert 'hx-swap-oob="beforeend:#toasts"' in fill_frame
        assert 'data-refresh="orders"' in fill_frame
        assert {"hdr-cash", "hdr-networth", "pos-val-AAPL", "live-signal"} <= ids(fill_frame)
        assert await bystander_ws.receive_nothing(0.6)
        await buyer_ws.disconnect()
        await bystander_ws.disconnect()

    async_to_sync(scenario)()
