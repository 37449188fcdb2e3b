"""Server-side SVG charts for the console (pygal): no JavaScript, no CDN.

pygal's tooltips script is loaded from a CDN by default; ``js=[]`` turns it off, so the
SVG is self-contained and the page works on machines without internet.
"""

from __future__ import annotations

import pygal
from pygal.style import Style

_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    colors=("#417690", "#ba2121", "#79aec8", "#e8a33d", "#5b8a3c"),
    font_family="sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    title_font_size=14,
)
_COMMON = {
    "style": _STYLE,
    "js": [],
    "disable_xml_declaration": True,
    "height": 260,
    "width": 760,
    "show_y_guides": True,
    "legend_at_bottom": True,
    "print_values": False,
}


def deliveries_chart(series: list[tuple[str, int, int]], *, title: str) -> str:
    """Deliveries and failures over the window. A line without dots: one SVG path per
    series, so a 7-day window (168 points) renders in a few milliseconds, unlike bars."""
    chart = pygal.Line(
        title=title,
        x_label_rotation=30,
        show_dots=False,
        fill=False,
        show_minor_x_labels=False,
        truncate_label=9,
        **_COMMON,
    )
    labels = [label for label, _, _ in series]
    chart.x_labels = labels
    # Keep about 12 labels readable whatever the number of buckets.
    step = max(len(labels) // 12, 1)
    chart.x_labels_major = labels[::step]
    chart.add("deliveries", [d for _, d, _ in series])
    chart.add("failures", [f for _, _, f in series])
    if not series:
        chart.no_data_text = "No webhook deliveries in this window"
    return chart.render(is_unicode=True)


def runs_chart(counts: dict[str, int], *, title: str) -> str:
    chart = pygal.HorizontalBar(title=title, **{**_COMMON, "height": 220})
    for status, count in counts.items():
        chart.add(status, count)
    if not any(counts.values()):
        chart.no_data_text = "No handler runs in this window"
    return chart.render(is_unicode=True)
