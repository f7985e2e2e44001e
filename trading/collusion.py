"""Collusion signals between pairs of players, for moderators (CollusionFlag, in the admin).

Two patterns, both over the takes of offers between the same two players within
COLLUSION_WINDOW_DAYS:

- Round trips: a stock goes from A to B and comes back from B to A. Each take that sends
  a stock back the way an earlier take of the window brought it is one *return*; a pair
  with COLLUSION_ROUND_TRIPS returns or more is flagged. Washing shares back and forth
  between friends inflates activity or shifts cash through the prices.
- One-way transfer of value: every take between the pair (at least
  COLLUSION_ONE_WAY_TAKES of them) trades at the edge of the band (at least
  COLLUSION_EDGE_FRACTION of OFFER_PRICE_BAND away from the quote) and always in favour
  of the same player: a second account feeding a main one.

The evidence (offers, takes, amounts, the value moved) is stored on the flag. Flags
inform; nothing is done to the players automatically. A scan runs after every settled
take (for that pair only) and can run from beat over every recently active pair
(`trading.tasks.scan_collusion`). Re-running a scan updates the flag in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from trading.models import CollusionFlag, CollusionKind, CollusionStatus, OfferTake

ZERO = Decimal("0")

# Pairs that traded with each other at least `min_takes` times since `since`.
ACTIVE_PAIRS_SQL = """
SELECT LEAST(seller_id, buyer_id), GREATEST(seller_id, buyer_id)
FROM trading_offertake
WHERE created_at >= %(since)s
GROUP BY 1, 2
HAVING count(*) >= %(min_takes)s
"""


@dataclass(frozen=True)
class Finding:
    kind: str
    occurrences: int
    value_moved: Decimal
    beneficiary_id: int | None
    takes: list[OfferTake]


def _window() -> timedelta:
    return timedelta(days=settings.COLLUSION_WINDOW_DAYS)


def _is_edge(take: OfferTake) -> bool:
    """Traded at least COLLUSION_EDGE_FRACTION of the band away from the quote."""
    edge = settings.OFFER_PRICE_BAND * settings.COLLUSION_EDGE_FRACTION
    return abs(take.price - take.quote_price) >= take.quote_price * edge


def round_trips_find(takes: list[OfferTake]) -> Finding | None:
    """Returns in a pair's takes (oldest first) within the window of what they reverse."""
    window = _window()
    returns: list[OfferTake] = []
    involved: dict[int, OfferTake] = {}
    for index, take in enumerate(takes):
        reversed_ = [
            earlier
            for earlier in takes[:index]
            if earlier.stock_id == take.stock_id
            and earlier.seller_id == take.buyer_id
            and earlier.buyer_id == take.seller_id
            and take.created_at - earlier.created_at <= window
        ]
        if reversed_:
            returns.append(take)
            involved[take.pk] = take
            involved.update((earlier.pk, earlier) for earlier in reversed_)
    if len(returns) < settings.COLLUSION_ROUND_TRIPS:
        return None
    evidence = sorted(involved.values(), key=lambda take: (take.created_at, take.pk))
    # Net value shifted to the lower-id player by the prices of these trades.
    low_id = min(takes[0].seller_id, takes[0].buyer_id)
    net = sum(
        (take.value_moved if take.seller_id == low_id else -take.value_moved for take in evidence),
        ZERO,
    )
    return Finding(CollusionKind.ROUND_TRIP, len(returns), abs(net), None, evidence)


def one_way_find(takes: list[OfferTake]) -> Finding | None:
    """All of a pair's takes at the band's edge, each favouring the same player."""
    if len(takes) < settings.COLLUSION_ONE_WAY_TAKES or not all(map(_is_edge, takes)):
        return None
    # The player each take favours: the seller when the buyer overpaid, else the buyer.
    favoured = {
        take.seller_id if take.price > take.quote_price else take.buyer_id for take in takes
    }
    if len(favoured) != 1:
        return None
    beneficiary = favoured.pop()
    value = sum((abs(take.value_moved) for take in takes), ZERO)
    return Finding(CollusionKind.ONE_WAY, len(takes), value, beneficiary, takes)


def _evidence(finding: Finding) -> dict:
    handles = {}
    for take in finding.takes:
        handles[take.seller_id] = take.seller.handle
        handles[take.buyer_id] = take.buyer.handle
    return {
        "window_days": settings.COLLUSION_WINDOW_DAYS,
        "offers": sorted({take.offer_id for take in finding.takes}),
        "takes": [
            {
                "offer": take.offer_id,
                "take": take.number,
                "at": take.created_at.isoformat(timespec="seconds"),
                "symbol": take.stock.symbol,
                "seller": handles[take.seller_id],
                "buyer": handles[take.buyer_id],
                "quantity": take.quantity,
                "price": str(take.price),
                "quote": str(take.quote_price),
                "notional": str(take.notional),
                "value_moved_to_seller": str(take.value_moved),
            }
            for take in finding.takes
        ],
        "value_moved": str(finding.value_moved),
    }


def _flag_save(pair: tuple[int, int], finding: Finding, *, now: datetime) -> CollusionFlag:
    with transaction.atomic():
        flag = (
            CollusionFlag.objects.select_for_update()
            .filter(player_a_id=pair[0], player_b_id=pair[1], kind=finding.kind)
            .first()
        )
        if flag is None:
            flag = CollusionFlag(player_a_id=pair[0], player_b_id=pair[1], kind=finding.kind)
        elif finding.occurrences > flag.occurrences and flag.status == CollusionStatus.DISMISSED:
            # New evidence after a dismissal deserves another look.
            flag.status = CollusionStatus.OPEN
        flag.occurrences = finding.occurrences
        flag.value_moved = finding.value_moved
        flag.beneficiary_id = finding.beneficiary_id
        flag.evidence = _evidence(finding)
        flag.last_seen_at = now
        flag.save()
    return flag


def collusion_scan_pair(
    *, user_ids: Iterable[int], now: datetime | None = None
) -> list[CollusionFlag]:
    """Check the recent takes between two players; create or update their flags."""
    first, second = sorted(set(user_ids))
    now = now or timezone.now()
    takes = list(
        OfferTake.objects.filter(
            Q(seller_id=first, buyer_id=second) | Q(seller_id=second, buyer_id=first),
            created_at__gte=now - _window(),
        )
        .select_related("stock", "seller", "buyer")
        .order_by("created_at", "id")
    )
    flags = []
    for finding in (round_trips_find(takes), one_way_find(takes)):
        if finding is not None:
            flags.append(_flag_save((first, second), finding, now=now))
    return flags


def collusion_scan(*, now: datetime | None = None) -> int:
    """Scan every pair that traded with each other enough within the window to match
    a rule (one GROUP BY over the window's takes). Returns how many flags it wrote."""
    now = now or timezone.now()
    min_takes = min(settings.COLLUSION_ROUND_TRIPS + 1, settings.COLLUSION_ONE_WAY_TAKES)
    with connection.cursor() as cursor:
        cursor.execute(ACTIVE_PAIRS_SQL, {"since": now - _window(), "min_takes": min_takes})
        pairs = cursor.fetchall()
    return sum(len(collusion_scan_pair(user_ids=pair, now=now)) for pair in pairs)


def collusion_flag_review(*, flag: CollusionFlag, status: str, note: str, by: object) -> int:
    """A moderator's verdict on a flag: "reviewed" (a concern) or "dismissed", with a
    note. The note is appended, so earlier verdicts stay readable. Returns 1 if the flag
    was updated."""
    if status not in (CollusionStatus.REVIEWED, CollusionStatus.DISMISSED):
        raise ValueError(f"Unknown review status {status!r}.")
    note = (note or "").strip()
    if not note:
        raise ValueError("A review needs a note.")
    stamp = f"[{timezone.now():%Y-%m-%d %H:%M} UTC, {by}: {status}] {note}"
    with transaction.atomic():
        locked = CollusionFlag.objects.select_for_update().get(pk=flag.pk)
        locked.note = f"{locked.note}\n{stamp}".strip()
        locked.status = status
        locked.save(update_fields=["note", "status"])
    flag.note, flag.status = locked.note, locked.status
    return 1
