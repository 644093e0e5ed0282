"""Counts per hour as a bar chart the page draws as inline SVG (no chart library, no script needed)."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 480, 120  # the chart's own units; it scales to the screen
AXIS = 18  # room under the bars for the hour labels
TICK_EVERY = 6  # hours between labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    hour: str  # ISO UTC start of the hour (the page shows it in the viewer's time zone)


@dataclass(frozen=True)
class Tick:
    x: float
    hour: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    base: float  # the bars' bottom
    top: int  # the largest count (the scale)
    bars: list[Bar]
    ticks: list[Tick]


def bar_chart(hours: list[str], counts: list[int]) -> BarChart:
    top = max(counts, default=0)
    slot = WIDTH / max(1, len(counts))
    base = HEIGHT - AXIS
    bars = []
    for i, (hour, n) in enumerate(zip(hours, counts)):
        h = 0.0 if top == 0 else (base - 4) * n / top
        bars.append(Bar(i * slot + 1, base - h, slot - 2, h, n, hour))
    ticks = [Tick(i * slot + slot / 2, hour) for i, hour in enumerate(hours) if i % TICK_EVERY == 0]
    return BarChart(WIDTH, HEIGHT, base, top, bars, ticks)
