"""How read results show in a notebook and a console: short cells, HTML tables and bars.

Plain text in, HTML or lines out; escaped here, so a schedule's or a reason's text never becomes
markup. No Keras, no store, no IPython: the ``_repr_html_`` and ``_repr_pretty_`` methods of the
results call these.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SHORT = 60  # characters of a reason shown in a table
BAR_WIDTH = 40  # characters of a bar at 100 % in text
STYLE = "font-family: monospace; text-align: left; padding: 1px 8px"


def shorten(text: str | None, limit: int = SHORT) -> str | None:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis when longer."""
    if text is None:
        return None
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 1].rstrip() + "…"


def cell(value: Any) -> str:
    """A value as a table shows it: a fraction with four decimals (an accuracy, a rate), other
    floats with four significant digits, None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1 else f"{value:.4g}"
    return str(value)


def table(rows: Iterable[Sequence[Any]], header: Sequence[str] = ()) -> str:
    """An HTML table of ``rows`` (each value through :func:`cell`, escaped)."""

    def tr(values: Sequence[Any], tag: str) -> str:
        inner = "".join(f'<{tag} style="{STYLE}">{html.escape(cell(v))}</{tag}>' for v in values)
        return f"<tr>{inner}</tr>"

    head = tr(header, "th") if header else ""
    return f"<table>{head}{''.join(tr(r, 'td') for r in rows)}</table>"


def block(title: str, body: str, notes: Sequence[str] = ()) -> str:
    """A titled HTML block: ``title`` in bold, ``body`` (HTML), then ``notes`` (text) in lines."""
    extra = "".join(f"<div>{html.escape(n)}</div>" for n in notes)
    return f"<div><div><b>{html.escape(title)}</b></div>{body}{extra}</div>"


def bar_lines(groups: Sequence[tuple[str, Mapping[str, float]]]) -> list[str]:
    """Shares as text: each group's caption, then one line per name, its percentage and a bar."""
    lines = []
    for caption, values in groups:
        lines.append(caption)
        width = max((len(n) for n in values), default=0)
        lines += [
            f"  {n:<{width}}  {v:6.1%}  {'#' * round(v * BAR_WIDTH)}" for n, v in values.items()
        ]
    return lines


def bars_html(groups: Sequence[tuple[str, Mapping[str, float]]]) -> str:
    """Shares as HTML: per group its caption, then a table of names, percentages and bars."""
    parts = []
    for caption, values in groups:
        rows = "".join(
            f'<tr><td style="{STYLE}">{html.escape(name)}</td>'
            f'<td style="{STYLE}">{value:.1%}</td><td style="{STYLE}">'
            f'<div style="background: #4c72b0; height: 0.8em; width: {value * 12:.2f}em"></div>'
            "</td></tr>"
            for name, value in values.items()
        )
        parts.append(f"<div>{html.escape(caption)}</div><table>{rows}</table>")
    return "".join(parts)
