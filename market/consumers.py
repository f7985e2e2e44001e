"""The one websocket of every tab: /ws/live/.

The consumer authenticates (the session, through AuthMiddlewareStack; the Origin is
checked by AllowedHostsOriginValidator in config/asgi.py), joins groups, and forwards
fragments. It renders nothing itself: tick fragments come from the per-process cache
in market.live, wallets and events arrive already rendered from the worker.

Economy: one message per tick per connection. A player's wallet for a tick is sent by
the worker just before the tick's prices (portfolio.live runs before market.live in
MARKET_TICK_HOOKS), so it is held back and leaves in the same frame as the prices.
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

from market import groups, live
from market.models import Stock

logger = logging.getLogger(__name__)

# Incoming frames are tiny subscription messages; anything larger is abuse or a bug.
MAX_MESSAGE_CHARS = 8 * 1024
MAX_SYMBOLS = 200
# Views a wallet can carry positions for (portfolio.live renders them per player).
WALLET_VIEWS = ("position",)
# A wallet that arrived without its tick's prices leaves on its own after this long.
WALLET_HOLD_SECONDS = 0.5
SYMBOL_RE = re.compile(r"^[A-Z0-9.\-]{1,12}$")
# Listed symbols, per process, refreshed this often: unknown ones are dropped on subscribe.
SYMBOLS_TTL_SECONDS = 60.0

# A ping refreshes presence (and re-checks the session) at most this often.
PING_HEARTBEAT_MIN_SECONDS = 5.0
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
        self.last_heartbeat = 0.0
        # Jittered, so the tabs that all reconnected after a restart do not all re-check
        # their sessions in the same tick.
        self.heartbeat_every = groups.PRESENCE_HEARTBEAT_SECONDS * random.uniform(0.6, 1.0)
        await self.channel_layer.group_add(groups.market_group(), self.channel_name)
        if self.user_id is not None:
            await self.channel_layer.group_add(groups.user_group(self.user_id), self.channel_name)
            # AuthMiddleware has just read the session: no second look now.
            await self._heartbeat(recheck=False)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.held_wallet_timer is not None:
            self.held_wallet_timer.cancel()
        await self.channel_layer.group_discard(groups.market_group(), self.channel_name)
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
        if parts:
            await self.send(text_data="".join(parts))
        if (
            self.user_id is not None
            and time.monotonic() - self.last_heartbeat > self.heartbeat_every
        ):
            await self._heartbeat()

    async def wallet_update(self, event: dict[str, Any]) -> None:
        """A player's wallet (portfolio.live). A tick's wallet waits for the tick's
        prices; one after a fill (slot None) goes at once."""
        if event.get("slot") is None:
            await self.send(text_data="".join(self._wallet_parts(event)))
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
