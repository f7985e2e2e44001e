"""The one websocket of every tab: /ws/live/.

The consumer authenticates (the session, through AuthMiddlewareStack; the Origin is
checked by AllowedHostsOriginValidator in config/asgi.py), joins groups, and forwards
fragments. It renders nothing itself: tick fragments come from the per-process cache
in market.live, wallets and events arrive already rendered from the worker.

Ticks reach a process once, through its _TickHub (the market group's only member in
the process), which hands them to each connection in turn; a player's wallets, fills
and offers come through the connection's own channel (its player's group).

Economy: one message per tick per connection. A player's wallet for a tick is sent by
the worker just before the tick's prices (portfolio.live runs before market.live in
MARKET_TICK_HOOKS), and the tick's message names the players who got one: whichever
of the two reaches the connection first waits (at most WALLET_HOLD_SECONDS) for the
other, and both leave in one frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from importlib import import_module
from typing import Any

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.template.loader import get_template

from market import groups, live
from market.models import Stock

logger = logging.getLogger(__name__)

# Incoming frames are tiny subscription messages; anything larger is abuse or a bug.
MAX_MESSAGE_CHARS = 8 * 1024
MAX_SYMBOLS = 200
# Views a wallet can carry positions for (portfolio.live renders them per player).
WALLET_VIEWS = ("position",)
# A wallet that arrived without its tick's prices (or prices without the wallet the tick
# announced) leaves on its own after this long.
WALLET_HOLD_SECONDS = 0.5
SYMBOL_RE = re.compile(r"^[A-Z0-9.\-]{1,12}$")
# Listed symbols, per process, refreshed this often: unknown ones are dropped on subscribe.
SYMBOLS_TTL_SECONDS = 60.0

# A ping refreshes presence (and re-checks the session) at most this often.
PING_HEARTBEAT_MIN_SECONDS = 5.0
# The process's tick receiver renews its membership of the market group this often.
HUB_REJOIN_SECONDS = 3600.0
# Application close code: the session behind this socket ended.
SESSION_ENDED_CLOSE_CODE = 4401

_known_symbols: tuple[float, frozenset[str]] = (0.0, frozenset())


def _session_holds(session_key: str | None, user_id: int | None) -> bool:
    """The session still exists, still belongs to this player, who may still log in."""
    if not session_key or user_id is None:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if str(store.get(SESSION_KEY)) != str(user_id):
        return False
    user = get_user_model().objects.filter(pk=user_id).first()
    return user is not None and user.can_log_in


def _listed_symbols() -> frozenset[str]:
    return frozenset(
        Stock.objects.filter(delisted_at__isnull=True).values_list("symbol", flat=True)
    )


async def known_symbols() -> frozenset[str]:
    global _known_symbols
    loaded_at, symbols = _known_symbols
    if time.monotonic() - loaded_at > SYMBOLS_TTL_SECONDS or not symbols:
        symbols = await database_sync_to_async(_listed_symbols)()
        _known_symbols = (time.monotonic(), symbols)
    return symbols


def known_symbols_forget() -> None:
    """Tests and listings changes: reload the listed symbols on the next subscribe."""
    global _known_symbols
    _known_symbols = (0.0, frozenset())


class _TickHub:
    """The market group's one member in this process: a single channel-layer channel
    receives each tick and hands it to every live connection of the process in turn.

    With each connection a member of the group, a tick was a thousand queue puts, task
    wake-ups, message decodes and dispatches before the first frame left; now it is
    one, and the fan-out is a loop over the connections (bench/live.py, docs/live.md).
    The players' own groups (wallets, fills, offers) stay per connection: rare, and
    addressed to one player. Per event loop: a new loop (tests) starts a new hub."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.consumers: dict[str, LiveConsumer] = {}
        self.started: asyncio.Future | None = None
        self.task: asyncio.Task | None = None

    async def join(self, consumer: LiveConsumer) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop, self.consumers, self.started = loop, {}, None
        started = self.started
        if started is None or (
            started.done() and (started.cancelled() or started.exception() is not None)
        ):
            # First connection, or the last start failed (Redis down): (re)start.
            self.started = asyncio.ensure_future(self._start(consumer.channel_layer))
        await asyncio.shield(self.started)
        self.consumers[consumer.channel_name] = consumer

    def leave(self, consumer: LiveConsumer) -> None:
        self.consumers.pop(consumer.channel_name, None)

    async def _start(self, layer: Any) -> None:
        # Load (and compile) the push templates now, not in the first tick's fan-out.
        for template_name in live.VIEWS.values():
            get_template(template_name)
        channel = await layer.new_channel()
        await layer.group_add(groups.market_group(), channel)
        # Kept on the hub: the loop holds tasks only weakly.
        self.task = asyncio.ensure_future(self._run(layer, channel))

    async def _run(self, layer: Any, channel: str) -> None:
        joined_at = time.monotonic()
        while True:
            if time.monotonic() - joined_at > HUB_REJOIN_SECONDS:
                # The core layer expires group members (group_expiry, a day); the
                # connections used to renew theirs by reconnecting, the hub never does.
                joined_at = time.monotonic()
                try:
                    await layer.group_add(groups.market_group(), channel)
                except Exception:
                    logger.exception("live: the hub could not renew its market group")
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("live: the tick channel failed; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            if message.get("type") == live.TICK_EVENT:
                try:
                    await self._deliver(message)
                except Exception:
                    logger.exception("live: tick %s not delivered", message.get("slot"))

    async def _deliver(self, message: dict[str, Any]) -> None:
        # Fetched once, before the fan-out; every connection then finds it cached.
        await live.tick_quotes(message)
        message["wallets"] = frozenset(message.get("wallets", ()))
        for consumer in list(self.consumers.values()):
            try:
                await consumer.market_tick(message)
            except Exception:
                logger.exception("live: tick not delivered to %s", consumer.channel_name)


_hub = _TickHub()


class LiveConsumer(AsyncWebsocketConsumer):
    user_id: int | None
    views: dict[str, tuple[str, ...]]

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.user_id = (
            user.pk if user is not None and user.is_authenticated and user.can_log_in else None
        )
        self.views = {}
        self.held_wallet: dict[str, Any] | None = None
        self.held_wallet_timer: asyncio.TimerHandle | None = None
        # A tick's prices waiting for the player's wallet of the same tick.
        self.held_prices: tuple[int, list[str]] | None = None
        self.held_prices_timer: asyncio.TimerHandle | None = None
        self.last_heartbeat = 0.0
        # Jittered, so the tabs that all reconnected after a restart do not all re-check
        # their sessions in the same tick.
        self.heartbeat_every = groups.PRESENCE_HEARTBEAT_SECONDS * random.uniform(0.6, 1.0)
        self.heartbeat_task: asyncio.Task | None = None
        await _hub.join(self)
        if self.user_id is not None:
            await self.channel_layer.group_add(groups.user_group(self.user_id), self.channel_name)
            # AuthMiddleware has just read the session: no second look now.
            await self._heartbeat(recheck=False)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.held_wallet_timer is not None:
            self.held_wallet_timer.cancel()
        if self.held_prices_timer is not None:
            self.held_prices_timer.cancel()
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
        _hub.leave(self)
        if self.user_id is not None:
            await self.channel_layer.group_discard(
                groups.user_group(self.user_id), self.channel_name
            )
            await sync_to_async(groups.presence_clear, thread_sensitive=False)(
                user_id=self.user_id, channel_name=self.channel_name
            )

    async def _heartbeat(self, *, recheck: bool = True) -> None:
        """Refresh presence; on the way, check the session still stands, so "log out"
        elsewhere or a revoked device stops the wallet pushes within a heartbeat."""
        self.last_heartbeat = time.monotonic()
        if recheck:
            session_key = getattr(self.scope.get("session"), "session_key", None)
            if not await database_sync_to_async(_session_holds)(session_key, self.user_id):
                logger.info("live: session of user %s ended; socket closed", self.user_id)
                user_id, self.user_id = self.user_id, None
                await self.channel_layer.group_discard(
                    groups.user_group(user_id), self.channel_name
                )
                await sync_to_async(groups.presence_clear, thread_sensitive=False)(
                    user_id=user_id, channel_name=self.channel_name
                )
                # The page reconnects (static/js/live.js) as whoever its cookie says now.
                await self.close(code=SESSION_ENDED_CLOSE_CODE)
                return
        await sync_to_async(groups.presence_mark, thread_sensitive=False)(
            user_id=self.user_id, channel_name=self.channel_name
        )

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch runs close_old_connections through sync_to_async before
        # every handler: a hop to the one thread-sensitive executor thread, per message
        # and per connection, which was most of a tick's fan-out (bench/live.py). This
        # consumer touches the database only through database_sync_to_async, which
        # closes old connections itself on its own thread, so the hop buys nothing.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- from the page ---------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Bad input is dropped with a log line; the socket stays open, so a buggy or
        # hostile page only ever affects itself.
        if text_data is None:
            logger.info("live: binary frame ignored (%s bytes)", len(bytes_data or b""))
            return
        if len(text_data) > MAX_MESSAGE_CHARS:
            logger.info("live: oversized message ignored (%s chars)", len(text_data))
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            logger.info("live: malformed message ignored")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "subscribe":
            await self._subscribe(message.get("views"))
        elif kind == "ping":
            if (
                self.user_id is not None
                and time.monotonic() - self.last_heartbeat > PING_HEARTBEAT_MIN_SECONDS
            ):
                await self._heartbeat()
        else:
            logger.info("live: unknown message ignored (type %r)", str(kind)[:40])

    async def _subscribe(self, requested: Any) -> None:
        """Replace this page's subscription: {"views": {"quote": ["AAPL", ...], ...}}.
        Unknown views and symbols are dropped; the total is capped."""
        if not isinstance(requested, dict):
            logger.info("live: subscribe without views ignored")
            return
        listed = await known_symbols()
        budget = MAX_SYMBOLS
        views: dict[str, tuple[str, ...]] = {}
        for view, symbols in requested.items():
            if (view not in live.VIEWS and view not in WALLET_VIEWS) or not isinstance(
                symbols, list
            ):
                continue
            kept = []
            for symbol in symbols:
                if budget <= 0:
                    break
                if isinstance(symbol, str) and SYMBOL_RE.match(symbol) and symbol in listed:
                    kept.append(symbol)
                    budget -= 1
            views[view] = tuple(dict.fromkeys(kept))
        if budget <= 0:
            logger.info("live: subscription capped at %s symbols", MAX_SYMBOLS)
        self.views = views

    # --- from the channel layer ------------------------------------------------

    async def market_tick(self, event: dict[str, Any]) -> None:
        """A tick, from the process's _TickHub: must not wait on anything but the (cached)
        quotes, or every connection after this one waits too."""
        parts: list[str] = []
        if any(view in live.VIEWS for view in self.views):
            quotes = await live.tick_quotes(event)
            for view, symbols in self.views.items():
                if view in live.VIEWS:
                    parts.extend(live.tick_fragments(event, quotes, view, symbols))
        wallet = self.held_wallet
        if wallet is not None and wallet["slot"] == event["slot"]:
            self._release_held_wallet()
            parts.extend(self._wallet_parts(wallet))
        elif self.user_id is not None and self.user_id in event.get("wallets", ()):
            # This player's wallet for the tick was sent before the tick but has not
            # reached this connection yet (the hub's channel is not this one's): the
            # prices wait for it, at most WALLET_HOLD_SECONDS.
            self._hold_prices(event["slot"], parts)
            parts = []
        if parts:
            await self.send(text_data="".join(parts))
        if (
            self.user_id is not None
            and time.monotonic() - self.last_heartbeat > self.heartbeat_every
            and (self.heartbeat_task is None or self.heartbeat_task.done())
        ):
            # In the background: it reaches the database and Redis.
            self.last_heartbeat = time.monotonic()
            self.heartbeat_task = asyncio.ensure_future(self._heartbeat())

    async def wallet_update(self, event: dict[str, Any]) -> None:
        """A player's wallet (portfolio.live). A tick's wallet waits for the tick's
        prices; one after a fill (slot None) goes at once."""
        if event.get("slot") is None:
            await self.send(text_data="".join(self._wallet_parts(event)))
            return
        held = self.held_prices
        if held is not None and held[0] == event["slot"]:
            self._release_held_prices()
            await self.send(text_data="".join(held[1] + self._wallet_parts(event)))
            return
        if self.held_wallet is not None:
            await self._send_held_wallet()
        self.held_wallet = event
        self.held_wallet_timer = asyncio.get_running_loop().call_later(
            WALLET_HOLD_SECONDS, lambda: asyncio.ensure_future(self._send_held_wallet())
        )

    async def live_event(self, event: dict[str, Any]) -> None:
        """A fill, an order or an offer event, rendered by its app: forward it."""
        await self.send(text_data=event["html"])

    def _wallet_parts(self, wallet: dict[str, Any]) -> list[str]:
        parts = [wallet["summary"], wallet.get("extra", "")]
        positions = wallet.get("positions", {})
        for view in WALLET_VIEWS:
            parts.extend(
                positions[symbol] for symbol in self.views.get(view, ()) if symbol in positions
            )
        return parts

    def _hold_prices(self, slot: int, parts: list[str]) -> None:
        if self.held_prices is not None:
            self._release_held_prices()
        self.held_prices = (slot, parts)
        self.held_prices_timer = asyncio.get_running_loop().call_later(
            WALLET_HOLD_SECONDS, lambda: asyncio.ensure_future(self._send_held_prices())
        )

    def _release_held_prices(self) -> None:
        self.held_prices = None
        if self.held_prices_timer is not None:
            self.held_prices_timer.cancel()
            self.held_prices_timer = None

    async def _send_held_prices(self) -> None:
        held = self.held_prices
        if held is None:
            return
        self._release_held_prices()
        if held[1]:
            await self.send(text_data="".join(held[1]))

    def _release_held_wallet(self) -> None:
        self.held_wallet = None
        if self.held_wallet_timer is not None:
            self.held_wallet_timer.cancel()
            self.held_wallet_timer = None

    async def _send_held_wallet(self) -> None:
        wallet = self.held_wallet
        if wallet is None:
            return
        self._release_held_wallet()
        await self.send(text_data="".join(self._wallet_parts(wallet)))
