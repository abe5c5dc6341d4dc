"""Server-rendered SVG charts (pygal): no script, no network, so the page works offline and under the CSP."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal

import pygal
from markupsafe import Markup
from pygal.style import Style

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1d2733",
    foreground_strong="#1d2733",
    foreground_subtle="#dfe4ea",
    opacity=".9",
    opacity_hover="1",
    colors=("#2c7a4b", "#e0a526", "#d9822b", "#c0532f", "#9b1c1c", "#5b6776"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=12,
    value_font_size=11,
    tooltip_font_size=12,
    title_font_size=14,
)

_COMMON = dict(style=STYLE, js=[], disable_xml_declaration=True, height=280, width=720,
               margin=8, margin_bottom=28, legend_at_bottom=True, legend_at_bottom_columns=3, show_y_guides=True,
               print_values=False, explicit_size=False, truncate_legend=-1, truncate_label=-1,
               show_minor_y_labels=False, y_labels_major_count=6)


_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)


def _svg(chart: pygal.graph.graph.Graph) -> Markup:
    # pygal embeds its tooltip configuration as an inline script even with js=[]; the page
    # runs no script (and the CSP would refuse it), so it is dropped.
    return Markup(_SCRIPT.sub("", chart.render(is_unicode=True)))  # noqa: S704 - pygal escapes the labels it writes


def aging(buckets: Sequence[tuple[str, Decimal]], formatter: Callable[[float], str], title: str) -> Markup:
    chart = pygal.Bar(**_COMMON, show_legend=False, title=title, value_formatter=formatter)
    chart.x_labels = [label for label, _ in buckets]
    chart.add(title, [{"value": float(v), "color": STYLE.colors[i]} for i, (_, v) in enumerate(buckets)])
    return _svg(chart)


def dso_trend(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
              formatter: Callable[[float], str]) -> Markup:
    chart = pygal.Line(**_COMMON, show_legend=True, value_formatter=formatter, dots_size=3, allow_interruptions=True)
    chart.x_labels = list(labels)
    for i, (name, values) in enumerate(series):
        if name.endswith("*"):  # the target: a flat dashed line
            chart.add(name.rstrip("*"), list(values), stroke_style={"dasharray": "6,4", "width": 2}, show_dots=False)
        else:
            chart.add(name, list(values))
    return _svg(chart)


def weekly_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
                formatter: Callable[[float], str], *, legend: bool = True) -> Markup:
    chart = pygal.Bar(**{**_COMMON, "legend_at_bottom_columns": 2}, show_legend=legend, value_formatter=formatter,
                      x_labels_major_every=2 if len(labels) > 9 else None, show_minor_x_labels=len(labels) <= 9)
    chart.x_labels = list(labels)
    for name, values in series:
        chart.add(name, list(values))
    return _svg(chart)
