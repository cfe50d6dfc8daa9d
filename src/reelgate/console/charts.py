"""Small charts drawn on the server as SVG: no script, no library, readable by a screen reader through a title and
a summary, and the same on a phone as on a laptop (the drawing scales to its box)."""

from __future__ import annotations

from markupsafe import Markup, escape

# Colours chosen for contrast on white (each at least 3:1, as WCAG asks of graphics) and told apart without hue
# by the legend's order, which is the stacking order from the bottom.
COLOURS = {"completed": "#1a7f37", "failed": "#c62828", "processing": "#0550ae", "pending": "#8a6100"}
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 600, 180, 34, 22, 8


def _nice_top(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at or above ``value``: a round top for the y axis."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def stacked_bars(series: dict[str, list[int]], *, title: str, labels: tuple[str, str, str]) -> Markup:
    """Bars per bucket, one colour per series stacked in ``series`` order; ``labels`` name the left, middle and
    right ends of the time axis."""
    count = max((len(v) for v in series.values()), default=0)
    totals = [sum(v[i] for v in series.values()) for i in range(count)]
    top = _nice_top(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(count, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(_summary(series))}</desc>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 4}" y2="{TOP + plot_h}" class="axis"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end" class="tick">{top}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" class="tick">0</text>',
    ]
    for i in range(count):
        y = float(TOP + plot_h)
        for name, values in series.items():
            if not values[i]:
                continue
            h = values[i] / top * plot_h
            y -= h
            parts.append(f'<rect x="{LEFT + i * slot + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
                         f'height="{h:.1f}" fill="{COLOURS.get(name, "#555")}"><title>{values[i]} {escape(name)}'
                         "</title></rect>")  # fmt: skip
    for x, anchor, text in ((LEFT, "start", labels[0]), (LEFT + plot_w / 2, "middle", labels[1]),
                            (WIDTH - 4, "end", labels[2])):  # fmt: skip
        parts.append(f'<text x="{x:.0f}" y="{HEIGHT - 6}" text-anchor="{anchor}" class="tick">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _summary(series: dict[str, list[int]]) -> str:
    counts = ", ".join(f"{sum(v)} {name}" for name, v in series.items())
    return f"In all: {counts}."
