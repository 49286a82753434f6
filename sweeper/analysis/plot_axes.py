"""Matplotlib helpers of the study figures (:mod:`sweeper.analysis.plots`): a figure on the Agg backend,
log axes with few round labels that never overlap, an epoch axis over optimizer steps, the
parallel plot's lines kept visible on white, and Optuna's global restyling kept to a block.

Matplotlib is imported inside the functions; never Keras.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.figure import Figure


DPI = 110


LOG_TICKS = 6  # most labelled major ticks on a log axis of parallel / slice / contour


VISIBLE_FROM = 0.45  # share of the parallel plot's colour map cut off at its light end


LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601 weights: a colour's lightness, 0 to 1


def figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def positive_rates(rates: np.ndarray) -> np.ndarray:
    """Rates for a log axis: zeros (warm-up start, cosine end) left out of the line."""
    return np.where(rates > 0, rates, np.nan)


def log_floor(ax: Any, curves: Sequence[np.ndarray], decades: float = 4.0) -> None:
    """Keep the log axis to ``decades`` below the highest rate (cosine ends dive towards 0)."""
    rates = np.concatenate([np.asarray(c, dtype=np.float64).ravel() for c in curves])
    positive = rates[rates > 0]
    if positive.size:
        top = float(positive.max())
        low = max(float(positive.min()), top * 10**-decades)
        ax.set_ylim(low / 1.5, top * 1.5)


def epoch_axis(ax: Any, steps_per_epoch: int, epochs: int) -> None:
    sec = ax.secondary_xaxis(
        "top", functions=(lambda s: s / steps_per_epoch, lambda e: e * steps_per_epoch)
    )
    sec.set_xlabel("epoch")
    if epochs <= 30:
        for e in range(1, epochs):
            ax.axvline(e * steps_per_epoch, color="0.85", lw=0.6, zorder=0)


def horizontal() -> dict[str, Any]:
    """Boxplot keyword for horizontal boxes (``vert`` is deprecated from Matplotlib 3.10)."""
    import matplotlib

    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


@contextmanager
def optuna_style(width: float, height: float) -> Iterator[None]:
    """Optuna's matplotlib plots restyle matplotlib globally: keep that inside this block."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.exceptions import ExperimentalWarning

    rc = {"figure.figsize": (width, height), "figure.dpi": DPI}
    quiet = logging.getLogger("optuna.visualization")  # "too few values to draw" notes
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with matplotlib.rc_context(rc), warnings.catch_warnings():  # type: ignore[arg-type]
            warnings.simplefilter("ignore", ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # singular limits of one-value axes
            yield
    finally:
        quiet.setLevel(level)


def axes_figure(axes: Any) -> Figure:
    first = axes.flat[0] if hasattr(axes, "flat") else axes
    fig: Figure = first.figure
    return fig


def luma(rgba: Any) -> np.ndarray:
    """Lightness (0 black to 1 white) of colours, each laid over white at its alpha."""
    c = np.atleast_2d(np.asarray(rgba, dtype=np.float64))
    alpha = c[:, 3] if c.shape[1] == 4 else np.ones(len(c))
    return np.asarray(1.0 - alpha * (1.0 - c[:, :3] @ LUMA))


def visible_lines(lines: Any, many: bool) -> None:
    """The parallel plot's trial lines, all visible on white: its light end cut off the map.

    Optuna colours them with ``Blues`` (``Blues_r`` when minimizing): better is darker, and the
    worst trial is near-white. The same map from ``VISIBLE_FROM`` of the way on keeps that order
    (and the colour bar, which follows the lines); the best trials are drawn last, on top.
    """
    from matplotlib.colors import ListedColormap

    cmap = lines.get_cmap()
    light_low = luma(cmap(0.0))[0] > luma(cmap(1.0))[0]
    share = (
        np.linspace(VISIBLE_FROM, 1.0, 256)
        if light_low
        else np.linspace(0.0, 1 - VISIBLE_FROM, 256)
    )
    values = np.asarray(lines.get_array(), dtype=np.float64)
    order = np.argsort(values if light_low else -values, kind="stable")
    segments = lines.get_segments()
    lines.set_segments([segments[i] for i in order])
    lines.set_array(values[order])
    lines.set_cmap(ListedColormap(cmap(share), name=f"{cmap.name}_visible"))
    lines.set_linewidth(0.6 if many else 1.3)
    lines.set_alpha(0.85 if many else 1.0)


def log_ticks(low: float, high: float, most: int) -> list[float]:
    """At most ``most`` major ticks of a log axis from ``low`` to ``high``, at round values.

    1-2-5 in each decade if they fit, else 1-3, else powers of ten (every k-th, the most of
    them); a range too narrow for two of them gets evenly spaced round values.
    """
    from matplotlib.ticker import MaxNLocator

    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))

    def ticks(subs: Sequence[float], stride: int = 1, offset: int = 0) -> list[float]:
        exponents = [e for e in range(first, last + 1) if (e - offset) % stride == 0]
        found = (s * 10.0**e for e in exponents for s in subs)
        return [float(f"{t:.12g}") for t in found if low <= t <= high]

    if len(ticks((1.0, 2.0, 5.0))) < 2:
        linear = MaxNLocator(nbins=max(most - 1, 1), steps=[1, 2, 2.5, 5, 10])
        return [float(t) for t in linear.tick_values(low, high) if low <= t <= high]
    for subs in ((1.0, 2.0, 5.0), (1.0, 3.0)):
        if len(ticks(subs)) <= most:
            return ticks(subs)
    stride = 1
    while len(ticks((1.0,), stride)) > most:
        stride += 1
    # the powers of ten every ``stride`` decades: from the one that keeps the most in range
    return max((ticks((1.0,), stride, k) for k in range(stride)), key=len)


def log_axes(fig: Figure) -> Iterator[Any]:
    for ax in fig.axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            low, high = sorted(axis.get_view_interval())
            if scale == "log" and 0 < low < high:
                yield axis


def readable_log_axes(fig: Figure) -> None:
    """Log axes of ``fig`` with few, round, unrotated major labels that never overlap.

    Optuna's slices and contours keep Matplotlib's default log ticks, which label minor ticks
    too on a range of a decade or two (``2x10^-2 3x10^-2 ...``): they run into each other on
    small subplots. Here: at most ``LOG_TICKS`` labels (fewer on a short axis), plain numbers,
    unlabelled minor ticks; then every other label goes while two of them still touch.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axes = list(log_axes(fig))
    if not axes:
        return
    for axis in axes:
        low, high = sorted(axis.get_view_interval())
        box = axis.axes.get_position()
        width, height = fig.get_size_inches()
        inches = box.width * width if axis.axis_name == "x" else box.height * height
        per_label = 0.5 if axis.axis_name == "x" else 0.3  # inches
        most = int(np.clip(inches // per_label, 2, LOG_TICKS))
        axis.set_major_locator(FixedLocator(log_ticks(low, high, most)))
        axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
        axis.set_minor_formatter(NullFormatter())
    for _ in range(4):  # labels' sizes are known once drawn
        fig.draw_without_rendering()
        crowded = False
        for axis in axes:
            boxes = [label.get_window_extent().padded(2) for label in shown_tick_labels(axis)]
            if any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)):
                crowded = True
                axis.set_major_locator(FixedLocator(list(axis.get_majorticklocs())[::2]))
        if not crowded:
            return


def shown_tick_labels(axis: Any) -> list[Any]:
    """The major tick labels of ``axis`` drawn with a text, in tick order."""
    low, high = sorted(axis.get_view_interval())
    return [
        label
        for tick in axis.get_major_ticks()
        if low <= tick.get_loc() <= high
        for label in (tick.label1, tick.label2)
        if label.get_visible() and label.get_text()
    ]
