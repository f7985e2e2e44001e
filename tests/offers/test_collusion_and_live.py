"""Collusion flags for staged patterns (and none for normal trading), and the live
event the counterparty receives."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from market.groups import user_group
from trading.collusion import collusion_scan
from trading.models import CollusionFlag, CollusionKind
from trading.offer_services import offer_accept

from .conftest import grant_shares, make

D = Decimal
pytestmark = pytest.mark.django_db


def trade(seller, buyer, stock, quantity=10, price="100"):
    """`seller` offers to `buyer`, who accepts it all."""
    offer = make(seller, stock, quantity=quantity, price=D(price), addressee=buyer.owner)
    return offer_accept(
        offer=offer, taker=buyer, quantity=quantity, idempotency_key=uuid.uuid4().hex
    )


def test_staged_round_trips_raise_a_flag_with_the_evidence(
    maker, taker, stock, django_capture_on_commit_callbacks
):
    grant_shares(maker, stock, 10)
    with django_capture_on_commit_callbacks(execute=True):
        takes = [
            trade(maker, taker, stock),
            trade(taker, maker, stock),
            trade(maker, taker, stock),
            trade(taker, maker, stock),
        ]
    flag = CollusionFlag.objects.get(kind=CollusionKind.ROUND_TRIP)
    assert {flag.player_a_id, flag.player_b_id} == {maker.owner_id, taker.owner_id}
    assert flag.occurrences == 3 and flag.status == "open"
    assert flag.evidence["offers"] == sorted(take.offer_id for take in takes)
    assert {row["seller"] for row in flag.evidence["takes"]} == {"maker", "taker"}
    # Trades at the quote: no one-way transfer.
    assert not CollusionFlag.objects.filter(kind=CollusionKind.ONE_WAY).exists()


def test_normal_trading_raises_no_flag(maker, taker, third, stock, make_portfolio):
    grant_shares(maker, stock, 30)
    grant_shares(third, stock, 30)
    trade(maker, taker, stock, price="101")
    trade(third, taker, stock, price="99")
    trade(maker, third, stock, price="100.5")
    trade(taker, third, stock, quantity=5, price="100")  # one return only
    assert collusion_scan() == 0
    assert not CollusionFlag.objects.exists()


def test_trades_always_at_the_band_edge_one_way_are_flagged(maker, taker, stock):
    grant_shares(maker, stock, 30)
    # The taker keeps buying the maker's shares 9-10% above the quote: cash flows to the maker.
    for price in ("109.5", "110", "109"):
        trade(maker, taker, stock, price=price)
    assert collusion_scan() == 1
    flag = CollusionFlag.objects.get()
    assert flag.kind == CollusionKind.ONE_WAY and flag.beneficiary_id == maker.owner_id
    assert flag.value_moved == D("285.00")  # (9.5 + 10 + 9) x 10 shares
    assert len(flag.evidence["takes"]) == 3
    # Re-running updates the flag in place.
    assert collusion_scan() == 1 and CollusionFlag.objects.count() == 1


def test_edge_trades_in_both_directions_are_not_one_way(maker, taker, stock):
    grant_shares(maker, stock, 30)
    grant_shares(taker, stock, 30)
    trade(maker, taker, stock, quantity=1, price="110")
    trade(maker, taker, stock, quantity=1, price="90")
    trade(maker, taker, stock, quantity=1, price="110")
    collusion_scan()
    assert not CollusionFlag.objects.filter(kind=CollusionKind.ONE_WAY).exists()


def test_the_addressee_is_told_live(maker, taker, stock, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    grant_shares(maker, stock, 10)

    def make_offer() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            make(maker, stock, quantity=10, addressee=taker.owner)

    # One event loop for the whole exchange: the pub/sub layer only delivers to
    # channels made in the same process and loop.
    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add(user_group(taker.owner_id), channel)
        try:
            await sync_to_async(make_offer)()
            return await asyncio.wait_for(layer.receive(channel), timeout=5)
        finally:
            await layer.group_discard(user_group(taker.owner_id), channel)

    event = async_to_sync(scenario)()
    assert event["type"] == "live.event"
    assert "@maker offers to sell you 10 AAPL" in event["html"]
    assert 'hx-swap-oob="beforeend:#toasts"' in event["html"]
    assert 'data-refresh="offers"' in event["html"]


def test_moderators_review_flags_in_the_admin_and_players_cannot(client, maker, taker, stock):
    from accounts.roles import MODERATOR, roles_sync
    from accounts.services import role_grant
    from tests.factories import UserFactory

    grant_shares(maker, stock, 30)
    for price in ("109.5", "110", "109"):
        trade(maker, taker, stock, price=price)
    collusion_scan()
    flag = CollusionFlag.objects.get()
    roles_sync()
    moderator = role_grant(user=UserFactory(handle="mod"), role=MODERATOR)
    client.force_login(moderator)
    listing = client.get("/admin/trading/collusionflag/?kind__exact=one_way&q=maker")
    assert listing.status_code == 200 and b"@maker / @taker" in listing.content
    page = client.get(f"/admin/trading/collusionflag/{flag.pk}/change/")
    assert page.status_code == 200
    assert b"@maker \xe2\x86\x92 @taker" in page.content and b"285.00" in page.content
    client.force_login(taker.owner)
    assert client.get("/admin/trading/collusionflag/").status_code == 302
