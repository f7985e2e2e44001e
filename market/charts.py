"""Server-drawn pictures: sparklines and the sector heat map are inline SVG, so they
need no JavaScript and obey the CSP (SVG attributes are not inline styles)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

SPARK_WIDTH = 100
SPARK_HEIGHT = 24


def sparkline_points(values: Sequence[Decimal]) -> str:
    """The `points` of an SVG polyline drawing `values` left to right, scaled to fit."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = high - low
    step = SPARK_WIDTH / (len(values) - 1)
    points = []
    for index, value in enumerate(values):
        ratio = float((value - low) / span) if span else 0.5
        y = (SPARK_HEIGHT - 2) * (1 - ratio) + 1
        points.append(f"{index * step:.1f},{y:.1f}")
    return " ".join(points)


# Red through grey to green, by daily change in percent: the buckets of the heat map.
_HEAT = (
    (Decimal("-3"), "#9f1d23"),
    (Decimal("-1.5"), "#c8393f"),
    (Decimal("-0.5"), "#e07b7f"),
    (Decimal("0.5"), "#8a939f"),
    (Decimal("1.5"), "#5fb98a"),
    (Decimal("3"), "#24934f"),
)
_HEAT_TOP = "#0d6b34"


def heat_colour(change_pct: Decimal) -> str:
    for bound, colour in _HEAT:
        if change_pct < bound:
            return colour
    return _HEAT_TOP


@dataclass(frozen=True, slots=True)
class Tile:
    x: float
    y: float
    width: float
    height: float
    colour: str


HEAT_WIDTH = 800
HEAT_ROW_HEIGHT = 96


def heat_tiles(
    weights: Sequence[float], changes: Sequence[Decimal], *, columns: int = 4
) -> list[Tile]:
    """Tiles on rows of `columns`, each as wide as its share of its row's `weights`
    (the sectors' traded volume), in a HEAT_WIDTH wide picture."""
    tiles: list[Tile] = []
    for row_index, start in enumerate(range(0, len(weights), columns)):
        indices = range(start, min(start + columns, len(weights)))
        total = sum(max(weights[index], 1.0) for index in indices)
        x = 0.0
        for index in indices:
            width = HEAT_WIDTH * max(weights[index], 1.0) / total
            tiles.append(
                Tile(
                    x,
                    row_index * HEAT_ROW_HEIGHT,
                    width,
                    HEAT_ROW_HEIGHT,
                    heat_colour(changes[index]),
                )
            )
            x += width
    return tiles
