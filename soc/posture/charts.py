"""Small inline SVG charts (bars and a line) for posture pages and reports: numbers in, markup out, no script.
Labels pass through html.escape, so a chart never carries markup from the data."""

from __future__ import annotations

import html

WIDTH, HEIGHT, PAD = 480, 140, 24


def bar_chart(points: list[tuple[str, float]], title: str) -> str:
    if not points:
        return ""
    top = max(v for _, v in points) or 1
    step = (WIDTH - 2 * PAD) / len(points)
    bars = []
    for i, (label, value) in enumerate(points):
        h = (HEIGHT - 2 * PAD) * value / top
        x, y = PAD + i * step, HEIGHT - PAD - h
        bars.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="#3b6ea5">'
                    f"<title>{html.escape(label)}: {value:g}</title></rect>")
    return _frame(title, "".join(bars), points[0][0], points[-1][0], top)


def line_chart(points: list[tuple[str, float]], title: str, top: float = 100) -> str:
    if not points:
        return ""
    step = (WIDTH - 2 * PAD) / max(len(points) - 1, 1)
    xy = [(PAD + i * step, HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#2a7a2a"><title>{html.escape(label)}: {v:g}'
                   f"</title></circle>" for (x, y), (label, v) in zip(xy, points, strict=True))
    body = f'<polyline points="{path}" fill="none" stroke="#2a7a2a" stroke-width="2"/>{dots}'
    return _frame(title, body, points[0][0], points[-1][0], top)


def _frame(title: str, body: str, first: str, last: str, top: float) -> str:
    e = html.escape
    return (f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{e(title)}</title>'
            f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>{body}'
            f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="10">{e(first)}</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" font-size="10" text-anchor="end">{e(last)}</text>'
            f'<text x="2" y="{PAD - 8}" font-size="10">{top:g}</text></svg>')
