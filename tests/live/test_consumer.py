"""/ws/live/ through the full ASGI stack (origin check, session auth, routing) with the
real Redis channel layer and real ticks applied to PostgreSQL."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from market import live
from market.groups import user_group
from market.services import tick_hooks_call
from portfolio.live import wallet_events, wallet_push
from tests.factories import UserFactory
from tests.live.conftest import buy, communicator, session_cookie, tick

pytestmark = pytest.mark.django_db(transaction=True)


class _TopLevel(HTMLParser):
    """Records the top-level elements of a fragment: (tag, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        if self.depth == 0:
            self.elements.append((tag, dict(attrs)))
        self.depth += 1

    def handle_endtag(self, tag):
        self.depth -= 1


def top_level(fragment: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _TopLevel()
    parser.feed(fragment)
    return parser.elements


def ids(fragment: str) -> set[str]:
    return {attrs["id"] for _, attrs in top_level(fragment) if "id" in attrs}


async def subscribe(ws, **views) -> None:
    await ws.send_json_to({"type": "subscribe", "views": views})
    # The consumer answers nothing; give it time to load the listed symbols.
    assert await ws.receive_nothing(0.4)


def run_tick(prices: dict[str, str]):
    result = tick(prices)
    tick_hooks_call(result)
    return result


def test_an_anonymous_visitor_gets_prices_but_no_wallet(make_stock):
    aapl = make_stock("AAPL")
    holder = UserFactory()
    buy(holder, aapl, 10)

    async def scenario():
        ws = communicator()
        connected, _ = await ws.connect()
        assert connected
        await subscribe(ws, quote=["AAPL"], position=["AAPL"])
        await sync_to_async(run_tick)({"AAPL": "101.5000"})
        message = await ws.receive_from()
        assert ids(message) == {"px-AAPL", "chg-AAPL", "chgp-AAPL", "vol-AAPL"}
        assert ">101.50<" in message
        assert await ws.receive_nothing(0.6)
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_logged_in_player_gets_prices_and_their_wallet_in_one_message(make_stock):
    aapl = make_stock("AAPL")
    player = UserFactory()
    buy(player, aapl, 10)

    player_cookie = session_cookie(player)

    async def scenario():
        ws = communicator(player_cookie)
        assert (await ws.connect())[0]
        await subscribe(ws, quote=["AAPL"], position=["AAPL"])
        await sync_to_async(run_tick)({"AAPL": "110.0000"})
        message = await ws.receive_from()
        got = ids(message)
        assert {
            "px-AAPL",
            "hdr-cash",
            "hdr-networth",
            "pf-networth",
            "pos-val-AAPL",
            "pos-pnl-AAPL",
        } <= got
        # 10 shares at 110 = 1,100.00; cash 100,000 - 1,000 - 1 fee = 98,999.00.
        assert '<span id="pos-val-AAPL">$1,100.00</span>' in message
        assert '<span id="hdr-networth" class="header-wallet__value">$100,099.00</span>' in message
        # One message per tick: the wallet rode with the prices.
        assert await ws.receive_nothing(0.8)
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_socket_from_a_foreign_origin_is_refused(make_stock):
    player = UserFactory()

    player_cookie = session_cookie(player)

    async def scenario():
        ws = communicator(player_cookie, origin=b"https://evil.example")
        connected, _ = await ws.connect()
        assert not connected
        nobody = communicator(origin=None)
        connected, _ = await nobody.connect()
        assert not connected

    async_to_sync(scenario)()


def test_only_subscribed_symbols_that_moved_arrive_and_unknown_ones_are_ignored(make_stock):
    for symbol in ("AAPL", "MSFT", "NVDA"):
        make_stock(symbol)

    async def scenario():
        ws = communicator()
        assert (await ws.connect())[0]
        await subscribe(
            ws, quote=["AAPL", "MSFT", "ZZZZ", "bad symbol", 7, "<b>"], nonsense=["AAPL"]
        )
        # AAPL and NVDA move, MSFT does not; NVDA is not on this page.
        await sync_to_async(run_tick)({"AAPL": "99.0000", "MSFT": "100.0000", "NVDA": "120.0000"})
        message = await ws.receive_from()
        assert ids(message) == {"px-AAPL", "chg-AAPL", "chgp-AAPL", "vol-AAPL"}
        assert 'class="loss"' in message
        assert await ws.receive_nothing(0.6)
        # A new subscription replaces the old one.
        await subscribe(ws, watch=["NVDA"])
        await sync_to_async(run_tick)({"AAPL": "98.0000", "NVDA": "121.0000"})
        assert ids(await ws.receive_from()) == {"wl-px-NVDA", "wl-chgp-NVDA"}
        assert await ws.receive_nothing(0.6)
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_tick_is_one_htmx_out_of_band_message_of_spans(make_stock):
    make_stock("AAPL")
    make_stock("MSFT")

    async def scenario():
        ws = communicator()
        assert (await ws.connect())[0]
        await subscribe(ws, stock=["AAPL"], quote=["MSFT"])
        await sync_to_async(run_tick)({"AAPL": "105.0000", "MSFT": "95.0000"})
        message = await ws.receive_from()
        elements = top_level(message)
        # Every top-level element is a <span> with an id: the ws extension swaps each
        # one out of band in place of the element with that id. Never a row or a cell.
        assert elements and all(tag == "span" and attrs.get("id") for tag, attrs in elements)
        assert "<tr" not in message and "<td" not in message
        assert {"px-AAPL", "hi-AAPL", "lo-AAPL", "candle-AAPL", "px-MSFT"} <= ids(message)
        candle = next(attrs for _, attrs in elements if attrs["id"] == "candle-AAPL")
        assert candle["data-price"] == "105.0000"
        # The start of the tick's minute: the chart's candle this price belongs to
        # (market-chart.js appends a new candle when it is past the last one).
        minute = int(candle["data-time"])
        assert minute > 0 and minute % 60 == 0
        assert await ws.receive_nothing(0.6)
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_wallet_that_reaches_the_connection_after_its_tick_still_rides_in_one_frame(
    make_stock,
):
    """The tick reaches the connection through the process's hub, the wallet through
    the player's own channel: whichever arrives first waits for the other."""
    aapl = make_stock("AAPL")
    player = UserFactory()
    buy(player, aapl, 10)
    player_cookie = session_cookie(player)

    def publish_tick_before_wallet() -> None:
        result = tick({"AAPL": "120.0000"})
        wallets = wallet_events(user_ids=[player.pk], slot=result.slot)
        live.tick_wallets_sent(slot=result.slot, user_ids=wallets)
        live.on_tick(result)  # the tick first, naming the player's wallet ...
        time.sleep(0.2)  # (the hub has fanned the tick out by now)
        layer = get_channel_layer()
        async_to_sync(layer.group_send)(user_group(player.pk), wallets[player.pk])  # ... then it

    async def scenario():
        ws = communicator(player_cookie)
        assert (await ws.connect())[0]
        await subscribe(ws, quote=["AAPL"], position=["AAPL"])
        await sync_to_async(publish_tick_before_wallet)()
        message = await ws.receive_from()
        assert {"px-AAPL", "hdr-networth", "pos-val-AAPL"} <= ids(message)
        assert '<span id="pos-val-AAPL">$1,200.00</span>' in message
        assert await ws.receive_nothing(0.8)
        await ws.disconnect()

    async_to_sync(scenario)()


def test_each_symbol_renders_once_per_process_per_tick_whatever_the_connections(make_stock):
    make_stock("AAPL")

    async def scenario():
        sockets = [communicator() for _ in range(5)]
        for ws in sockets:
            assert (await ws.connect())[0]
            await subscribe(ws, quote=["AAPL"])
        before = live._cache.renders
        await sync_to_async(run_tick)({"AAPL": "101.0000"})
        messages = [await ws.receive_from() for ws in sockets]
        assert len(set(messages)) == 1
        assert live._cache.renders - before == 1
        for ws in sockets:
            await ws.disconnect()

    async_to_sync(scenario)()


def test_malformed_oversized_and_unknown_messages_are_ignored_and_the_socket_stays_open(
    make_stock, caplog
):
    make_stock("AAPL")

    async def scenario():
        ws = communicator()
        bystander = communicator()
        assert (await ws.connect())[0]
        assert (await bystander.connect())[0]
        await subscribe(bystander, quote=["AAPL"])
        for junk in (
            "not json",
            "[1, 2]",
            '"subscribe"',
            json.dumps({"type": "sell", "symbol": "AAPL"}),
            json.dumps({"type": "subscribe", "views": "AAPL"}),
            json.dumps({"type": "subscribe", "views": {"quote": ["A"] * 100_000}}),
        ):
            await ws.send_to(text_data=junk)
        await ws.send_to(bytes_data=b"\x00\x01")
        assert await ws.receive_nothing(0.4)
        await subscribe(ws, quote=["AAPL"])
        await sync_to_async(run_tick)({"AAPL": "102.0000"})
        assert "px-AAPL" in ids(await ws.receive_from())
        assert "px-AAPL" in ids(await bystander.receive_from())
        await ws.disconnect()
        await bystander.disconnect()

    with caplog.at_level("INFO", logger="market.consumers"):
        async_to_sync(scenario)()
    logged = caplog.text
    assert "malformed message ignored" in logged
    assert "oversized message ignored" in logged
    assert "unknown message ignored" in logged
    assert "binary frame ignored" in logged


def test_no_player_ever_receives_another_players_wallet(make_stock):
    aapl = make_stock("AAPL")
    alice, bob = UserFactory(), UserFactory()
    buy(alice, aapl, 10)
    buy(bob, aapl, 3)

    alice_cookie = session_cookie(alice)
    bob_cookie = session_cookie(bob)

    async def scenario():
        alice_ws, bob_ws = communicator(alice_cookie), communicator(bob_cookie)
        assert (await alice_ws.connect())[0]
        assert (await bob_ws.connect())[0]
        await subscribe(alice_ws, position=["AAPL"])
        await subscribe(bob_ws, position=["AAPL"])

        await sync_to_async(run_tick)({"AAPL": "200.0000"})
        alice_msg = await alice_ws.receive_from()
        bob_msg = await bob_ws.receive_from()
        assert '<span id="pos-val-AAPL">$2,000.00</span>' in alice_msg
        assert '<span id="pos-val-AAPL">$600.00</span>' in bob_msg
        assert "600.00" not in alice_msg and "2,000.00" not in bob_msg
        assert await alice_ws.receive_nothing(0.6)
        assert await bob_ws.receive_nothing(0.1)

        # A fill's wallet push goes to its player only.
        await sync_to_async(wallet_push)(user_ids=[bob.pk])
        assert '<span id="pos-val-AAPL">$600.00</span>' in await bob_ws.receive_from()
        assert await alice_ws.receive_nothing(0.6)
        await alice_ws.disconnect()
        await bob_ws.disconnect()

    async_to_sync(scenario)()


def test_wallets_go_only_to_online_players_whose_holdings_moved(make_stock):
    from market import groups

    aapl, msft = make_stock("AAPL"), make_stock("MSFT")
    holder, other, offline = UserFactory(), UserFactory(), UserFactory()
    buy(holder, aapl, 1)
    buy(other, msft, 1)
    buy(offline, aapl, 1)

    holder_cookie = session_cookie(holder)
    other_cookie = session_cookie(other)

    async def scenario():
        holder_ws, other_ws = communicator(holder_cookie), communicator(other_cookie)
        assert (await holder_ws.connect())[0]
        assert (await other_ws.connect())[0]
        online = await sync_to_async(groups.players_online)()
        assert online == {holder.pk, other.pk}
        await sync_to_async(run_tick)({"AAPL": "101.0000"})
        assert "hdr-networth" in ids(await holder_ws.receive_from())
        assert await other_ws.receive_nothing(0.8)
        await holder_ws.disconnect()
        assert await sync_to_async(groups.players_online)() == {other.pk}
        await other_ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.slow
def test_a_quiet_socket_survives_longer_than_the_redis_read_timeout(make_stock):
    # redis-py 8 cuts blocking reads after 5 s by default, which tore idle consumers
    # down under channels_redis's core layer (django/channels_redis#422).
    make_stock("AAPL")

    async def scenario():
        ws = communicator()
        assert (await ws.connect())[0]
        await subscribe(ws, quote=["AAPL"])
        assert await ws.receive_nothing(6.5)
        await sync_to_async(run_tick)({"AAPL": "103.0000"})
        assert "px-AAPL" in ids(await ws.receive_from())
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_socket_whose_session_ended_is_closed_and_gets_no_more_wallets(make_stock, monkeypatch):
    from django.contrib.sessions.models import Session

    from market import consumers, groups

    aapl = make_stock("AAPL")
    player = UserFactory()
    buy(player, aapl, 10)
    cookie = session_cookie(player)
    session_key = cookie.decode().split("=", 1)[1]
    # Every ping re-checks the session here (30 s of heartbeat in production).
    monkeypatch.setattr(consumers, "PING_HEARTBEAT_MIN_SECONDS", 0.0)

    async def scenario():
        ws = communicator(cookie)
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_nothing(0.4)  # still valid: nothing happens
        # "Log out everywhere" deletes the session rows.
        await sync_to_async(Session.objects.filter(session_key=session_key).delete)()
        await ws.send_json_to({"type": "ping"})
        closed = await ws.receive_output(timeout=2)
        assert closed == {"type": "websocket.close", "code": consumers.SESSION_ENDED_CLOSE_CODE}
        assert player.pk not in await sync_to_async(groups.players_online)()

    async_to_sync(scenario)()
