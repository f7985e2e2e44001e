"""The simulated market: the offline default provider and the history generator.

Each step of `dt` minutes moves every stock's log price by

    r_i = mu*dt + beta_i*(e_m + J_m) + gamma_i*(e_s(i) + J_s(i)) + e_i + J_i

where e_m, e_s, e_i are the market, sector and idiosyncratic innovations and J the
jumps. Each innovation is e = sqrt(h*dt) * season(t) * z with z a unit-variance
Student-t draw and h its own GARCH(1,1)-style variance (volatility clusters per
factor and per stock). Jumps arrive as Poisson events and come with a made-up news
story (market.providers.news); after a jump the variance of that factor or stock is
raised, as real news is followed by busy trading. docs/providers.md has the
equations and the parameters.

Determinism: the random numbers of one live tick depend only on (MARKET_SEED, the
tick's time slot, the set of symbols). The variances and the unrounded prices carried
from one tick to the next live in one Redis hash, because consecutive ticks may run
in different worker processes; when the hash is missing each variance starts at its
long-run value.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from functools import lru_cache

import numpy as np
from django.conf import settings

from market.providers import news
from market.providers.base import Bar, GeneratedEvent, Listing, Quote, QuoteBatch, Resolution
from market.state import market_redis

MINUTES_PER_DAY = 1440

# --- The model's parameters. Variances are per minute. -------------------------
DAILY_VOL = 0.018  # a typical stock's daily volatility (the market trades round the clock)
# Shares of a typical stock's variance: market, its sector, its own.
MARKET_SHARE, SECTOR_SHARE, OWN_SHARE = 0.25, 0.33, 0.42
PERSISTENCE = 0.985  # GARCH alpha+beta per minute: a volatility burst halves in ~45 min
ARCH = 0.1  # GARCH alpha per minute: how strongly one surprise raises the variance
T_DOF = 5.0  # Student-t degrees of freedom of the innovations (fat tails)
Z2_CAP = 30.0  # one extreme draw may raise the variance only so far
VARIANCE_BOUNDS = (0.1, 25.0)  # h stays within these multiples of its long-run value
DRIFT_PER_YEAR = 0.05
# Poisson jump intensities per day, the median absolute log jump, and its spread.
JUMPS_PER_DAY = {"market": 0.2, "sector": 0.12, "stock": 0.08}
JUMP_MEDIAN = {"market": 0.012, "sector": 0.02, "stock": 0.045}
JUMP_SPREAD = 0.5
JUMP_MAX = 0.20
POST_JUMP_VARIANCE = 4.0  # the variance multiplier right after a jump
NEWS_ABSORPTION = 0.5  # fraction of a jump's remaining move priced in per minute
# Sector character: volatility of the sector factor and the typical market beta.
SECTOR_VOL = {
    "technology": 1.25,
    "energy": 1.35,
    "health_care": 1.1,
    "financials": 1.1,
    "consumer_discretionary": 1.05,
    "communication": 1.0,
    "industrials": 0.95,
    "materials": 1.05,
    "real_estate": 0.95,
    "consumer_staples": 0.7,
    "utilities": 0.7,
}
SECTOR_BETA = {
    "technology": 1.25,
    "consumer_discretionary": 1.15,
    "financials": 1.1,
    "communication": 1.05,
    "industrials": 1.0,
    "materials": 1.0,
    "energy": 0.95,
    "health_care": 0.85,
    "real_estate": 0.85,
    "consumer_staples": 0.65,
    "utilities": 0.55,
}
# Intraday shape (u = fraction of the 24 h cycle since the session close): volatility
# and volume are highest around the close and lowest half a day later. Mean 1.
VOL_SEASON = (0.5, 1.5)  # variance multiplier 0.5 + 1.5*(2u-1)^2
VOLUME_SEASON = (0.55, 1.35)  # volume multiplier 0.55 + 1.35*(2u-1)^2
VOLUME_ACTIVITY_CAP = 30.0

_T_SCALE = math.sqrt((T_DOF - 2.0) / T_DOF)  # makes the t draws unit variance
_LEVELS = ("market", "sector", "stock")


def _unit_hash(seed: int, salt: str, symbol: str, count: int) -> list[float]:
    digest = hashlib.blake2b(f"{seed}:{salt}:{symbol}".encode(), digest_size=4 * count).digest()
    return [int.from_bytes(digest[4 * k : 4 * k + 4], "little") / 2**32 for k in range(count)]


def initial_price(symbol: str, seed: int) -> Decimal:
    """A plausible starting price ($16 to $316) for a stock that has none yet."""
    (u,) = _unit_hash(seed, "price", symbol, 1)
    return Decimal(round(10 ** (1.2 + 1.3 * u) * 100)).scaleb(-2)


@dataclass(frozen=True, eq=False)
class Universe:
    """Everything about a set of stocks that does not change from tick to tick."""

    symbols: tuple[str, ...]
    sectors: tuple[str, ...]  # per stock
    sector_names: tuple[str, ...]  # the distinct sectors, sorted
    sector_index: np.ndarray  # (N,) into sector_names
    columns: np.ndarray  # (M,) draw column of each state entry: market, sectors, stocks
    beta: np.ndarray
    gamma: np.ndarray
    long_run: np.ndarray  # (M,) long-run variance of market, each sector, each stock
    stock_variance: np.ndarray  # (N,) long-run total variance of each stock's return
    daily_volume: np.ndarray  # (N,) shares on an average day
    set_hash: int
    state_names: bytes  # the state entries' names, newline-separated: m, s:<sector>, p:<symbol>

    @property
    def size(self) -> int:
        return len(self.long_run)


@lru_cache(maxsize=16)
def universe(seed: int, symbols: tuple[str, ...], sectors: tuple[str, ...]) -> Universe:
    n = len(symbols)
    sector_names = tuple(sorted(set(sectors)))
    where = {name: k for k, name in enumerate(sector_names)}
    sector_index = np.fromiter((where[s] for s in sectors), dtype=np.intp, count=n)
    units = np.array([_unit_hash(seed, "params", s, 4) for s in symbols]).reshape(n, 4)
    sector_beta = np.array([SECTOR_BETA.get(s, 1.0) for s in sectors])
    beta = sector_beta * (0.75 + 0.5 * units[:, 0])
    gamma = 0.7 + 0.6 * units[:, 1]
    own_scale = 0.75 + 0.6 * units[:, 2]
    daily_volume = 10 ** (5.3 + 1.7 * units[:, 3])

    total = DAILY_VOL**2 / MINUTES_PER_DAY
    market_var = np.array([MARKET_SHARE * total])
    sector_var = np.array(
        [SECTOR_SHARE * total * SECTOR_VOL.get(s, 1.0) ** 2 for s in sector_names]
    )
    own_var = OWN_SHARE * total * own_scale**2
    stock_variance = beta**2 * market_var[0] + gamma**2 * sector_var[sector_index] + own_var

    # Draws are made in the sorted-symbol order, so the order the caller passes the
    # listings in changes nothing; only the set of symbols matters.
    rank = np.empty(n, dtype=np.intp)
    rank[np.argsort(np.array(symbols, dtype=object), kind="stable")] = np.arange(n)
    s = len(sector_names)
    columns = np.concatenate([np.arange(1 + s), 1 + s + rank])
    set_digest = hashlib.blake2b("\n".join(sorted(symbols)).encode(), digest_size=8).digest()
    names = ["m"] + [f"s:{name}" for name in sector_names] + [f"p:{sym}" for sym in symbols]
    return Universe(
        symbols=symbols,
        sectors=sectors,
        sector_names=sector_names,
        sector_index=sector_index,
        columns=columns,
        beta=beta,
        gamma=gamma,
        long_run=np.concatenate([market_var, sector_var, own_var]),
        stock_variance=stock_variance,
        daily_volume=daily_volume,
        set_hash=int.from_bytes(set_digest, "little"),
        state_names="\n".join(names).encode(),
    )


def universe_for(listings: Sequence[Listing], seed: int) -> Universe:
    return universe(seed, tuple(x.symbol for x in listings), tuple(x.sector for x in listings))


def session_phase(epoch_seconds: np.ndarray, session_close: time) -> np.ndarray:
    """Fraction of the 24 h cycle elapsed since the last session close (0..1)."""
    close = session_close.hour * 3600 + session_close.minute * 60 + session_close.second
    return ((epoch_seconds - close) % 86400) / 86400


@dataclass
class Path:
    returns: np.ndarray  # (T, N) log returns of each step
    volume: np.ndarray  # (T, N) shares traded in each step
    step_sd: np.ndarray  # (T, N) the step's volatility (for the intra-step bridge)
    variance_end: np.ndarray  # (M,) the state after the last step
    pending_end: np.ndarray  # (M,) log move of news not yet priced in
    jumps: list[tuple[int, int, float]]  # (step, state entry, log jump)


def simulate(
    uni: Universe,
    rng: np.random.Generator,
    variance: np.ndarray,
    pending: np.ndarray,
    dt: float,
    phase: np.ndarray,
) -> Path:
    """Advance T = len(phase) steps of dt minutes from the variances `variance` (M,)
    and the jumps not yet priced in `pending` (M,)."""
    steps, m, s = len(phase), uni.size, len(uni.sector_names)
    cols = uni.columns
    z = (rng.standard_t(T_DOF, size=(steps, m)) * _T_SCALE)[:, cols]
    jump_u = rng.random((steps, m))[:, cols]
    jump_z = rng.standard_normal((steps, m))[:, cols]
    volume_z = rng.standard_normal((steps, m))[:, cols[1 + s :]]

    level = np.full(m, 2)
    level[0], level[1 : 1 + s] = 0, 1
    intensity = np.array([JUMPS_PER_DAY[name] for name in _LEVELS])[level]
    median = np.array([JUMP_MEDIAN[name] for name in _LEVELS])[level]
    p_jump = -np.expm1(-intensity * dt / MINUTES_PER_DAY)
    jumped = jump_u < p_jump
    # Conditional on a jump, jump_u / p_jump is uniform: below one half means up.
    sign = np.where(jump_u < p_jump / 2, 1.0, -1.0)
    jumps = np.where(
        jumped, sign * np.minimum(median * np.exp(JUMP_SPREAD * jump_z), JUMP_MAX), 0.0
    )

    # GARCH(1,1) per state entry, rescaled to a step of dt minutes:
    # h' = V(1-phi) + h*(phi + a*(min(z^2, cap) - 1)), then x4 after a jump.
    phi = PERSISTENCE**dt
    arch = min(ARCH * math.sqrt(dt), phi / 2)
    growth = phi + arch * (np.minimum(z * z, Z2_CAP) - 1.0)
    base = np.broadcast_to(uni.long_run * (1.0 - phi), (steps, m))
    bump = np.where(jumped, POST_JUMP_VARIANCE, 1.0)
    growth, base = growth * bump, base * bump
    low, high = uni.long_run * VARIANCE_BOUNDS[0], uni.long_run * VARIANCE_BOUNDS[1]
    # News is priced in over a few minutes, not in one step: each step moves the
    # price by a fixed fraction of the jump still pending.
    absorb = 1.0 - (1.0 - NEWS_ABSORPTION) ** dt
    h_path = np.empty((steps, m))
    absorbed = np.empty((steps, m))
    h = np.clip(variance, low, high)
    waiting = pending.copy()
    for t in range(steps):  # the recursions; everything else is vectorised over time
        h_path[t] = h
        h = np.clip(h * growth[t] + base[t], low, high)
        waiting += jumps[t]
        absorbed[t] = waiting * absorb
        waiting -= absorbed[t]

    season = np.sqrt(VOL_SEASON[0] + VOL_SEASON[1] * (2 * phase - 1) ** 2)[:, None]
    moves = np.sqrt(h_path * dt) * season * z + absorbed
    stocks = slice(1 + s, None)
    sector_of = 1 + uni.sector_index
    returns = (
        DRIFT_PER_YEAR / (365 * MINUTES_PER_DAY) * dt
        + uni.beta * moves[:, :1]
        + uni.gamma * moves[:, sector_of]
        + moves[:, stocks]
    )
    step_var = uni.beta**2 * h_path[:, :1] + uni.gamma**2 * h_path[:, sector_of] + h_path[:, stocks]
    step_sd = np.sqrt(step_var * dt) * season

    expected_sd = np.sqrt(uni.stock_variance * dt) * season
    activity = np.minimum(0.5 + 0.5 * np.abs(returns) / expected_sd, VOLUME_ACTIVITY_CAP)
    shape = VOLUME_SEASON[0] + VOLUME_SEASON[1] * (2 * phase - 1) ** 2
    volume = (
        uni.daily_volume
        * (dt / MINUTES_PER_DAY)
        * shape[:, None]
        * activity
        * np.exp(0.3 * volume_z - 0.045)
    )
    where = np.nonzero(jumped)
    jump_list = [(int(t), int(k), float(jumps[t, k])) for t, k in zip(*where, strict=True)]
    return Path(returns, volume, step_sd, h, waiting, jump_list)


def jump_events(
    uni: Universe, rng: np.random.Generator, path: Path, step_time
) -> list[GeneratedEvent]:
    """A news story for each jump. step_time(t) is when step t ended."""
    s = len(uni.sector_names)
    events = []
    for step, entry, jump in path.jumps:
        impact = Decimal(f"{math.expm1(jump) * 100:.2f}")
        at = step_time(step)
        if entry == 0:
            events.append(news.market_event(rng, impact_pct=impact, at=at))
        elif entry <= s:
            sector = uni.sector_names[entry - 1]
            events.append(news.sector_event(rng, sector=sector, impact_pct=impact, at=at))
        else:
            i = entry - 1 - s
            events.append(
                news.stock_event(
                    rng,
                    symbol=uni.symbols[i],
                    sector=uni.sectors[i],
                    impact_pct=impact,
                    at=at,
                )
            )
    return events


def _start_prices(listings: Sequence[Listing], seed: int) -> np.ndarray:
    prices = []
    for x in listings:
        if x.last_price > 0:
            prices.append(float(x.last_price))
        elif x.previous_close > 0:
            prices.append(float(x.previous_close))
        else:
            prices.append(float(initial_price(x.symbol, seed)))
    return np.array(prices)


def to_cents(prices: np.ndarray) -> np.ndarray:
    """Prices rounded to the cent, as integer cents, never below one cent."""
    return np.maximum(np.rint(prices * 100.0), 1).astype(np.int64)


class _CentCache(dict):
    """int cents -> Decimal with two places; histories repeat the same prices a lot."""

    def __missing__(self, cents: int) -> Decimal:
        value = self[cents] = Decimal(cents).scaleb(-2)
        return value


_shared_cents = _CentCache()


def _decimal_cents() -> _CentCache:
    # Shared across ticks: a tick's prices are mostly ones seen before. Bounded so a
    # long-running worker's cache cannot grow without end.
    if len(_shared_cents) > 200_000:
        _shared_cents.clear()
    return _shared_cents


# --- History -------------------------------------------------------------------
_HISTORY_STEP = {"1m": (1.0, 1, 6), "1d": (15.0, 96, 3)}  # dt, steps per bar, bridge points
_CHUNK_STEPS = 1440


def generate_history(
    listings: Sequence[Listing],
    start: datetime,
    end: datetime,
    resolution: Resolution,
    seed: int,
    events: list[GeneratedEvent] | None = None,
    session_close: time | None = None,
) -> dict[str, list[Bar]]:
    """Bars for the listings from `start` to `end`, made up by the same model as the
    live ticks. Pure: the same arguments give the same bars.

    Every bar whose start lies in [start floored to the resolution, end) is made in
    full. Each path starts at the listing's last price (else its previous close, else
    `initial_price`); the caller sets the stock's quote from the last bar. 1-minute bars
    take their high and low from a Brownian bridge within the minute; daily bars from
    15-minute steps. The jumps' news is appended to `events` when given.
    """
    if resolution not in _HISTORY_STEP:
        raise ValueError(f"unknown resolution {resolution!r}")
    result: dict[str, list[Bar]] = {x.symbol: [] for x in listings}
    if not listings:
        return result
    dt, per_bar, bridge = _HISTORY_STEP[resolution]
    bar_seconds = int(dt * per_bar * 60)
    first = int(start.timestamp()) // bar_seconds * bar_seconds
    n_bars = max(0, -(-(int(end.timestamp()) - first) // bar_seconds))
    if n_bars == 0:
        return result
    close_time = session_close or settings.SESSION_CLOSE_UTC
    uni = universe_for(listings, seed)
    rng = np.random.default_rng([seed, first, bar_seconds, uni.set_hash])
    variance = uni.long_run.copy()
    pending = np.zeros(uni.size)
    log_price = np.log(_start_prices(listings, seed))
    chunk_bars = max(1, _CHUNK_STEPS // per_bar)
    cents = _CentCache()
    step_seconds = dt * 60

    for chunk_start in range(0, n_bars, chunk_bars):
        count = min(chunk_bars, n_bars - chunk_start)
        t0 = first + chunk_start * bar_seconds
        step_starts = t0 + step_seconds * np.arange(count * per_bar)
        path = simulate(uni, rng, variance, pending, dt, session_phase(step_starts, close_time))
        variance, pending = path.variance_end, path.pending_end
        closes = log_price + np.cumsum(path.returns, axis=0)
        opens = np.vstack([log_price[None, :], closes[:-1]])
        log_price = closes[-1]
        # Brownian bridge from each step's open to its close for the path in between.
        steps = len(step_starts)
        n = len(listings)
        walk = np.cumsum(
            rng.standard_normal((steps, n, bridge)) * (path.step_sd / math.sqrt(bridge))[..., None],
            axis=2,
        )
        frac = np.arange(1, bridge) / bridge
        inner = (
            opens[..., None]
            + frac * path.returns[..., None]
            + walk[..., :-1]
            - frac * walk[..., -1:]
        )
        step_high = np.maximum(np.maximum(opens, closes), inner.max(axis=2))
        step_low = np.minimum(np.minimum(opens, closes), inner.min(axis=2))

        shape = (count, per_bar, n)
        bar_open = to_cents(np.exp(opens.reshape(shape)[:, 0]))
        bar_close = to_cents(np.exp(closes.reshape(shape)[:, -1]))
        bar_high = to_cents(np.exp(step_high.reshape(shape).max(axis=1)))
        bar_low = to_cents(np.exp(step_low.reshape(shape).min(axis=1)))
        bar_volume = np.rint(path.volume.reshape(shape).sum(axis=1)).astype(np.int64)
        starts = [datetime.fromtimestamp(t0 + b * bar_seconds, tz=UTC) for b in range(count)]
        for i, symbol in enumerate(uni.symbols):
            bars = result[symbol]
            for b, (o, h, lo, c, v) in enumerate(
                zip(
                    bar_open[:, i].tolist(),
                    bar_high[:, i].tolist(),
                    bar_low[:, i].tolist(),
                    bar_close[:, i].tolist(),
                    bar_volume[:, i].tolist(),
                    strict=True,
                )
            ):
                bars.append(Bar(symbol, starts[b], cents[o], cents[h], cents[lo], cents[c], v))
        if events is not None and path.jumps:
            events.extend(
                jump_events(
                    uni,
                    rng,
                    path,
                    lambda step, t0=t0: datetime.fromtimestamp(
                        t0 + (step + 1) * step_seconds, tz=UTC
                    ),
                )
            )
    return result


# --- The live provider -------------------------------------------------------
# The carried state is one Redis hash with two fields: "names" (the entries, one per
# line) and "state" (per entry three little-endian doubles: variance, unrounded price
# for stocks, log move of news not yet priced in). Two bulk values instead of a field
# per stock keep a 5,000-stock round trip to a couple of milliseconds.
_MISSING = (np.nan, np.nan, 0.0)


class SimulatedProvider:
    name = "simulated"

    def __init__(self, *, seed: int | None = None, tick_seconds: int | None = None) -> None:
        self.seed = settings.MARKET_SEED if seed is None else seed
        self.tick_seconds = tick_seconds or settings.MARKET_TICK_SECONDS
        self.state_key = f"market:sim:{self.seed}:state"

    def _load_state(self, uni: Universe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        names, blob = market_redis().hmget(self.state_key, [b"names", b"state"])
        state = np.full((uni.size, 3), _MISSING)
        if names is not None and blob is not None:
            stored = np.frombuffer(blob, dtype="<f8").reshape(-1, 3)
            if names == uni.state_names:
                state = stored.copy()
            else:  # the listings changed: carry over the entries that are still there
                row = {name: k for k, name in enumerate(names.split(b"\n"))}
                for k, name in enumerate(uni.state_names.split(b"\n")):
                    if (j := row.get(name)) is not None and j < len(stored):
                        state[k] = stored[j]
        variance = np.where(np.isnan(state[:, 0]), uni.long_run, state[:, 0])
        return variance, state[:, 1], state[:, 2]

    def _save_state(self, uni: Universe, path: Path, prices: np.ndarray) -> None:
        s = 1 + len(uni.sector_names)
        carried = np.concatenate([np.zeros(s), prices])
        state = np.column_stack([path.variance_end, carried, path.pending_end])
        market_redis().hset(
            self.state_key,
            mapping={b"names": uni.state_names, b"state": state.astype("<f8").tobytes()},
        )

    def quotes(
        self,
        listings: Sequence[Listing],
        at: datetime,
        shocks: Mapping[str, Decimal] | None = None,
    ) -> QuoteBatch:
        if not listings:
            return QuoteBatch(quotes={})
        uni = universe_for(listings, self.seed)
        dt = self.tick_seconds / 60.0
        slot = int(at.timestamp()) // self.tick_seconds
        rng = np.random.default_rng([self.seed, slot, uni.set_hash])
        variance, carried, pending = self._load_state(uni)

        # The unrounded price carried in Redis keeps small moves from being rounded
        # away tick after tick; it is used only while it still agrees with the
        # stock's price (a moderator or a reseed may have changed that).
        listed = _start_prices(listings, self.seed)
        s = 1 + len(uni.sector_names)
        stock_carried = carried[s:]
        agrees = np.abs(stock_carried - listed) <= 0.005 + 1e-9
        previous = np.where(agrees, stock_carried, listed)

        phase = session_phase(np.array([at.timestamp()]), settings.SESSION_CLOSE_UTC)
        path = simulate(uni, rng, variance, pending, dt, phase)
        returns = path.returns[0]
        volume = path.volume[0]
        if shocks:
            index = {sym: i for i, sym in enumerate(uni.symbols)}
            for symbol, pct in shocks.items():
                i = index.get(symbol)
                if i is not None:
                    move = math.log1p(max(float(pct), -95.0) / 100.0)
                    returns[i] += move
                    volume[i] *= 1.0 + min(abs(move) * 60.0, VOLUME_ACTIVITY_CAP)
        prices = np.maximum(previous * np.exp(returns), 0.01)
        self._save_state(uni, path, prices)

        cents = to_cents(prices).tolist()
        shares = np.rint(volume).astype(np.int64).tolist()
        decimal = _decimal_cents()
        quotes = {
            symbol: Quote(symbol, decimal[c], v, at)
            for symbol, c, v in zip(uni.symbols, cents, shares, strict=True)
        }
        events = jump_events(uni, rng, path, lambda step: at)
        return QuoteBatch(quotes=quotes, events=events)

    def bars(
        self, symbol: str, start: datetime, end: datetime, resolution: Resolution
    ) -> list[Bar]:
        """A made-up history for one symbol on its own (the stored history is in PriceBar)."""
        listing = Listing(symbol, "", Decimal("0"), Decimal("0"))
        return generate_history([listing], start, end, resolution, self.seed)[symbol]
