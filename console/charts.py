"""Server-side SVG charts for the console (pygal): no JavaScript, no CDN.

pygal's tooltips script is loaded from a CDN by default; ``js=[]`` turns it off, so the
SVG is self-contained and the page works on machines without internet.
"""

from __future__ import annotations

import re

import pygal
from pygal.style import Style

# Drawn at 480 px and scaled to the column (at most 600 px wide, console.css): the labels
# are 13-16 px on a 390 px phone and never blow up on a desktop.
_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    colors=("#2f6f8f", "#b42318", "#79aec8", "#e8a33d", "#5b8a3c"),
    foreground="#333",
    foreground_strong="#222",
    foreground_subtle="#767676",
    font_family="sans-serif",
    label_font_size=15,
    major_label_font_size=15,
    legend_font_size=16,
    title_font_size=17,
    value_font_size=14,
    no_data_font_size=18,
)
_COMMON = {
    "style": _STYLE,
    "js": [],
    "disable_xml_declaration": True,
    "height": 300,
    "width": 480,
    "show_y_guides": True,
    "legend_at_bottom": True,
    "print_values": False,
}
MAX_X_LABELS = 6

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S)


def csp_safe(svg: str, *, nonce: str) -> str:
    """The chart as the page's Content-Security-Policy allows it inline: pygal's inline
    config script removed (its tooltip script is never loaded, ``js=[]``), its one
    ``<style>`` given the request's nonce, and its inline ``style`` attribute turned into
    the SVG presentation attribute it stands for."""
    svg = _SCRIPT.sub("", svg)
    svg = svg.replace("<style", f'<style nonce="{nonce}"', 1)
    return svg.replace('style="opacity: 0"', 'opacity="0"')


def deliveries_chart(series: list[tuple[str, int, int]], *, title: str) -> str:
    """Deliveries and failures per bucket, as bars on a time axis: every bucket of the
    window is there (quiet ones are zero), so one busy bucket is one visible bar — a line
    needs two points to draw anything."""
    chart = pygal.Bar(
        title=title,
        x_label_rotation=0,
        show_minor_x_labels=False,
        truncate_label=-1,
        min_scale=1,
        max_scale=5,  # a handful of y labels, readable on a phone
        spacing=2,
        **_COMMON,
    )
    labels = [label for label, _, _ in series]
    chart.x_labels = labels
    step = max((len(labels) + MAX_X_LABELS - 1) // MAX_X_LABELS, 1)
    chart.x_labels_major = labels[::step]
    chart.add("deliveries", [d for _, d, _ in series])
    chart.add("failures", [f for _, _, f in series])
    if not any(d or f for _, d, f in series):
        chart.no_data_text = "No webhook deliveries in this window"
    return chart.render(is_unicode=True)


def runs_chart(counts: dict[str, int], *, title: str) -> str:
    chart = pygal.HorizontalBar(title=title, **{**_COMMON, "height": 260})
    for status, count in counts.items():
        chart.add(status, count)
    if not any(counts.values()):
        chart.no_data_text = "No handler runs in this window"
    return chart.render(is_unicode=True)
