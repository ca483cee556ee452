"""Stacked bar charts for settings fragments, drawn by the template as inline SVG.

Only geometry is computed here (numbers, no markup): a template turns it into ``<rect>``
and ``<text>`` elements, escaped like everything else, with no script and no external
asset.  Every vendor with per-interval counts can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: the drawing area of the chart's viewBox
WIDTH, HEIGHT = 640.0, 200.0
#: room below the bars for the axis labels, and left of them for the scale
BOTTOM, LEFT = 24.0, 40.0


@dataclass(frozen=True)
class Segment:
    series: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Bar:
    label: str
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    #: the largest stacked total, the top of the scale
    peak: int
    #: (x, label) of the axis labels shown (at most about eight, evenly spread)
    ticks: tuple[tuple[float, str], ...]
    width: float = WIDTH + LEFT
    height: float = HEIGHT + BOTTOM
    base: float = HEIGHT
    left: float = LEFT


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[int]]], series: Sequence[str], max_ticks: int = 8
) -> Chart:
    """A chart of one bar per ``(label, values)`` row, each bar stacking its values (in the
    order of *series*, bottom up), scaled so the tallest bar fills the height."""
    peak = max((sum(values) for _, values in rows), default=0)
    slot = WIDTH / len(rows) if rows else WIDTH
    gap = min(2.0, slot * 0.2)
    bars = []
    for i, (label, values) in enumerate(rows):
        x, top, segments = LEFT + i * slot + gap / 2, HEIGHT, []
        for name, value in zip(series, values, strict=True):
            height = HEIGHT * value / peak if peak else 0.0
            top -= height
            segments.append(Segment(name, value, x, top, slot - gap, height))
        bars.append(Bar(label, sum(values), tuple(segments)))
    step = max(1, -(-len(rows) // max_ticks))
    ticks = tuple(
        (LEFT + i * slot + slot / 2, label) for i, (label, _) in enumerate(rows) if i % step == 0
    )
    return Chart(tuple(bars), peak, ticks)
