"""Inline SVG charts: a length histogram over scan.BIN_EDGES and a scatter plot. Every label is escaped."""

from __future__ import annotations

from html import escape

from tpt.inspect.scan import BIN_EDGES, Histogram

W, H, PAD_L, PAD_B, PAD_T = 360, 150, 40, 30, 18


def _fmt(v: float) -> str:
    if v >= 1024:
        return f"{v / 1024:g}k"
    return f"{v:g}"


def _span(low: int) -> str:
    """The bin whose lower edge is `low`, as 'low-high' (tokens)."""
    i = BIN_EDGES.index(low)
    if i + 1 == len(BIN_EDGES):
        return f"{low}+"
    high = BIN_EDGES[i + 1] - 1
    return f"{low}" if high == low else f"{low}-{high}"


def histogram(h: Histogram, title: str, unit: str = "tokens") -> str:
    """Bars of the non-empty range of bins; x labels at a few bin edges; y: records."""
    t = escape(title)
    if not h.n:
        return f'<figure class="chart"><figcaption>{t}</figcaption><p class="empty">no records</p></figure>'
    nz = [i for i, c in enumerate(h.counts) if c]
    lo, hi = nz[0], nz[-1]
    bins = list(range(lo, hi + 1))
    top = max(h.counts[i] for i in bins)
    bw = (W - PAD_L - 8) / len(bins)
    plot_h = H - PAD_B - PAD_T
    parts = [
        f'<svg class="hist" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}">',
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - 4}" y2="{H - PAD_B}" class="axis"/>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + 4}" class="tick" text-anchor="end">{top}</text>',
        f'<text x="{PAD_L - 4}" y="{H - PAD_B}" class="tick" text-anchor="end">0</text>',
    ]
    step = max(1, len(bins) // 6)
    for k, i in enumerate(bins):
        c = h.counts[i]
        bh = plot_h * c / top
        x = PAD_L + k * bw
        span = _span(BIN_EDGES[i])
        parts.append(
            f'<rect x="{x + 0.5:.1f}" y="{H - PAD_B - bh:.1f}" width="{max(bw - 1, 0.5):.1f}" '
            f'height="{bh:.1f}" class="bar"><title>{escape(span)} {unit}: {c}</title></rect>'
        )
        if k % step == 0:
            parts.append(f'<text x="{x:.1f}" y="{H - PAD_B + 12}" class="tick">{_fmt(BIN_EDGES[i])}</text>')
    parts.append(
        f'<text x="{W / 2:.0f}" y="{H - 4}" class="label" text-anchor="middle">{unit} (bins double every 2)</text>'
    )
    parts.append("</svg>")
    stats = (
        f"n {h.n:,}, mean {h.total / h.n:,.1f}, median in bin {_span(h.quantile(0.5))}, "
        f"p90 in bin {_span(h.quantile(0.9))}, max {h.max:,}"
    )
    return f'<figure class="chart"><figcaption>{t}</figcaption>{"".join(parts)}<div class="stats">{escape(stats)}</div></figure>'


def scatter(points: list[tuple[float, int]], title: str, xlabel: str, ylabel: str, seen: int) -> str:
    t = escape(title)
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y1 = max(ys) or 1
    x1 = x1 if x1 > x0 else x0 + 1
    w, h = 480, 260
    pw, ph = w - PAD_L - 10, h - PAD_B - PAD_T
    parts = [
        f'<svg class="scatter" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">',
        f'<line x1="{PAD_L}" y1="{h - PAD_B}" x2="{w - 4}" y2="{h - PAD_B}" class="axis"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{h - PAD_B}" class="axis"/>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + 4}" class="tick" text-anchor="end">{_fmt(y1)}</text>',
        f'<text x="{PAD_L}" y="{h - PAD_B + 12}" class="tick">{x0:.3g}</text>',
        f'<text x="{w - 10}" y="{h - PAD_B + 12}" class="tick" text-anchor="end">{x1:.3g}</text>',
        f'<text x="{w / 2:.0f}" y="{h - 4}" class="label" text-anchor="middle">{escape(xlabel)}</text>',
        f'<text x="10" y="{PAD_T - 6}" class="label">{escape(ylabel)}</text>',
    ]
    for x, y in points:
        cx = PAD_L + pw * (x - x0) / (x1 - x0)
        cy = h - PAD_B - ph * y / y1
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2" class="dot"/>')
    parts.append("</svg>")
    note = f"{len(points):,} points" + (
        f" (a uniform sample of {seen:,} records)" if seen > len(points) else ""
    )
    return f'<figure class="chart wide"><figcaption>{t}</figcaption>{"".join(parts)}<div class="stats">{escape(note)}</div></figure>'
