"""The figure of range tests: the loss (raw and smoothed) against the rate on a log axis, with
the suggested range shaded, one panel per optimizer. Matplotlib is imported when it draws."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sweeper.errors import LrFindError
from sweeper.training.lr_curve import LrFindResult

if TYPE_CHECKING:
    pass


class LrFindPlot(NamedTuple):
    title: str
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steepest_lr: float
    min_loss_lr: float
    diverged_lr: float | None
    low: float
    high: float
    y_limits: tuple[float, float]


def plot_data(result: LrFindResult) -> LrFindPlot:
    """What :func:`draw` shows for one range test; the y axis ignores the final blow-up."""
    lrs = np.asarray(result.lrs, dtype=np.float64)
    losses = np.asarray(result.losses, dtype=np.float64)
    smoothed = np.asarray(result.smoothed, dtype=np.float64)
    start = float(np.median(losses[: min(len(losses), 10)]))
    lowest = float(min(losses.min(), smoothed.min()))
    span = max(start - lowest, 0.05 * abs(start), 1e-6)
    y_limits = (max(0.0, lowest - 0.08 * span), max(start, lowest) + 0.3 * span)
    title = (
        f"LR range test: {result.optimizer}, {result.model}, batch {result.batch_size}, "
        f"{len(lrs)} steps"
    )
    return LrFindPlot(
        title=title,
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        steepest_lr=result.steepest_lr,
        min_loss_lr=result.min_loss_lr,
        diverged_lr=result.diverged_lr,
        low=result.low,
        high=result.high,
        y_limits=y_limits,
    )


def check_plot_path(path: str | Path) -> Path:
    """``path`` as a Path; LrFindError unless its folder exists (checked before any training)."""
    out = Path(path)
    if not out.expanduser().absolute().parent.is_dir():
        raise LrFindError(f"cannot write the plot {str(out)!r}: its folder does not exist")
    return out


def draw(plots: Sequence[LrFindPlot], path: str | Path) -> Path:
    """Draw one panel per range test into a PNG (or any format matplotlib knows) at ``path``."""
    out = check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(plots), 1, figsize=(9, 4.6 * len(plots)), squeeze=False, constrained_layout=True
    )
    for ax, p in zip(axes[:, 0], plots, strict=True):
        ax.axvspan(
            p.low,
            p.high,
            color="tab:green",
            alpha=0.12,
            label=f"suggested {p.low:.2g} - {p.high:.2g}",
        )
        ax.plot(p.lrs, p.losses, color="0.6", linewidth=0.8, alpha=0.8, label="batch loss")
        ax.plot(p.lrs, p.smoothed, color="tab:blue", linewidth=2, label="smoothed loss")
        ax.axvline(
            p.steepest_lr, color="tab:orange", linestyle="--", label=f"steepest {p.steepest_lr:.2g}"
        )
        ax.axvline(
            p.min_loss_lr, color="tab:red", linestyle="--", label=f"min loss {p.min_loss_lr:.2g}"
        )
        if p.diverged_lr is not None:
            ax.axvline(
                p.diverged_lr, color="black", linestyle=":", label=f"stopped {p.diverged_lr:.2g}"
            )
        ax.set_xscale("log")
        ax.set_ylim(*p.y_limits)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        ax.set_title(p.title, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
