"""Channel-layer group names, and who is online to receive a wallet push.

One function per kind of group, so a name is spelled in exactly one place. Presence
is a Redis sorted set of live connections scored by their last heartbeat: the tick
asks it which players are worth rendering a wallet for. A crashed web process
cannot remove its members, so readers ignore entries older than PRESENCE_TTL.
"""

from __future__ import annotations

import time

from market.state import market_redis

PRESENCE_KEY = "live:online"
# A connection refreshes its entry at least this often (see market.consumers) ...
PRESENCE_HEARTBEAT_SECONDS = 30
# ... and counts as gone once its entry is this old.
PRESENCE_TTL_SECONDS = 90


def market_group() -> str:
    """Every live connection: the prices of each tick."""
    return "market"


def user_group(user_id: int) -> str:
    """Every open tab of one player: their wallet, fills and offers."""
    return f"user.{user_id}"


def _member(user_id: int, channel_name: str) -> str:
    return f"{user_id}:{channel_name}"


def presence_mark(*, user_id: int, channel_name: str) -> None:
    """Record (or refresh) one live connection of a logged-in player."""
    market_redis().zadd(PRESENCE_KEY, {_member(user_id, channel_name): time.time()})


def presence_clear(*, user_id: int, channel_name: str) -> None:
    market_redis().zrem(PRESENCE_KEY, _member(user_id, channel_name))


def players_online() -> set[int]:
    """Ids of the players with at least one live connection."""
    client = market_redis()
    cutoff = time.time() - PRESENCE_TTL_SECONDS
    pipe = client.pipeline()
    pipe.zremrangebyscore(PRESENCE_KEY, "-inf", cutoff)
    pipe.zrange(PRESENCE_KEY, 0, -1)
    _, members = pipe.execute()
    return {int(member.split(b":", 1)[0]) for member in members}
