"""What a learning-rate schedule family is, and the code the families share.

:class:`Schedule` is a frozen dataclass over optimizer steps that gives its rate in NumPy
(``rates``, ``lr_at``, ``curve``), builds its Keras schedule (``keras``), writes itself as Keras
code (``learning_rate_code``), describes itself (``to_dict``, ``describe``) and rebuilds itself
for another run (``rescaled``, through a :class:`Horizon`). Each family is one subclass in a
module of its own in :mod:`sweeper.training.families`, which declares on the class its name, its
place in the list of families, the study dimensions it takes, how it is built from them and the
curve it shows in plots (see that package). The ``check_*`` functions are the one-line checks the
families' fields go through; :func:`interval_in_steps` reads a study's interval in epochs.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError, RescaleError

RESCALE_RULES: tuple[str, ...] = ("fraction", "epochs")
"""How a tuned schedule is carried to a run of another length or another data size.

``fraction``: every point of the schedule keeps its share of the run: a warm-up, a drop, a
restart, a decay's end fall at the same fraction of training (time decay's rate per step is
scaled so that the rate at each fraction is the same). ``epochs``: what the study file states in
epochs stays in epochs (warm-ups, drop intervals, decay intervals, restart periods, in steps of
the new data size), what it states per step stays per step (time decay), and a decay that ended
where the tuned run ended still ends where the new run ends; what is declared as a share (a
cooldown's, 1cycle's warm-up, ``shape``'s fractions) stays a share. This is the study's own
rebuild: ``from_dimensions`` at the new length gives the same schedule (piecewise excepted: no
drop is invented past the tuned run's)."""


@dataclass(frozen=True)
class Horizon:
    """The run a schedule was tuned for and the run it is rebuilt for, and the rule between.

    Lengths are in optimizer steps: ``tuned_steps = tuned_epochs * tuned_spe`` updates, the
    first at step 0 and the last at ``tuned_steps - 1``.
    """

    tuned_spe: int
    tuned_epochs: int
    spe: int
    epochs: int
    rule: str = "fraction"

    def __post_init__(self) -> None:
        for name in ("tuned_spe", "tuned_epochs", "spe", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                what = {"spe": "steps per epoch", "tuned_spe": "the tuned steps per epoch"}
                raise RescaleError(
                    f"{what.get(name, name.replace('_', ' '))} must be a whole number >= 1, "
                    f"got {value!r}"
                )
        if self.rule not in RESCALE_RULES:
            raise RescaleError(
                f"unknown rescaling rule {self.rule!r}; choose one of: {', '.join(RESCALE_RULES)}"
            )

    @property
    def tuned_steps(self) -> int:
        return self.tuned_epochs * self.tuned_spe

    @property
    def steps(self) -> int:
        return self.epochs * self.spe

    @property
    def same(self) -> bool:
        """The run the schedule was tuned for: nothing to rebuild."""
        return (self.spe, self.epochs) == (self.tuned_spe, self.tuned_epochs)

    @property
    def factor(self) -> float:
        """What an interval in steps is multiplied by under the rule."""
        if self.rule == "fraction":
            return self.steps / self.tuned_steps
        return self.spe / self.tuned_spe

    def interval(self, steps: float) -> float:
        """An interval in steps (a warm-up, a decay period, a restart period) under the rule."""
        return steps * self.factor

    def in_epochs(self, epochs: float) -> float:
        """An interval in epochs: kept under ``epochs``, a share of the run under ``fraction``."""
        if self.rule == "fraction":
            return epochs * self.epochs / self.tuned_epochs
        return epochs

    def _ends_run(self, value: float, end: int) -> bool:
        return abs(value - end) < 0.5

    def to_end(self, steps: float) -> float:
        """A length counted from step 0 (a decay over ``tuned_steps`` updates): one that spanned
        the tuned run spans the new run; any other is an interval."""
        if self._ends_run(steps, self.tuned_steps):
            return float(self.steps)
        return self.interval(steps)

    def to_last(self, step: float) -> float:
        """A last step (a decay ending at the run's last update, ``tuned_steps - 1``): the new
        run's last update when it ended the tuned run; otherwise an interval from step 0."""
        if self._ends_run(step, self.tuned_steps - 1):
            return float(max(self.steps - 1, 1))
        return self.interval(step)

    def boundary(self, step: int) -> int:
        """A boundary step (the last update at the old value): its count of updates before the
        change, ``step + 1``, is an interval."""
        return max(round((step + 1) * self.factor) - 1, 0)


def check_positive(family: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(
                f"schedule '{family}': {name} must be a positive number, got {value!r}"
            )


def check_in_unit(family: str, name: str, value: float, *, closed_low: bool = False) -> None:
    ok = (0 <= value <= 1) if closed_low else (0 < value <= 1)
    if not ok:
        rng = "[0, 1]" if closed_low else "(0, 1]"
        raise ConfigError(f"schedule '{family}': {name} must lie in {rng}, got {value!r}")


@dataclass(frozen=True)
class Schedule(abc.ABC):
    """Base class: a learning-rate schedule over optimizer steps, one family.

    A family declares, on its class: ``family`` (its name in study files and stores),
    ``formula`` (one line, for ``sweeper families``), ``order`` (its place in
    :data:`~sweeper.training.schedules.FAMILIES`, the order of a study's default choice of
    families: never changed once released, a new family takes a number past the last),
    ``dimensions`` (the study dimensions it takes, ``initial_lr`` first: which families take a
    dimension is read from them), and ``renamed`` (fields stored under an earlier name, old ->
    new: ``from_dict`` reads old stores through it); and the methods below.
    """

    family: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    order: ClassVar[int] = 0
    dimensions: ClassVar[tuple[str, ...]] = ()
    renamed: ClassVar[Mapping[str, str]] = MappingProxyType({})

    initial_lr: float

    @classmethod
    @abc.abstractmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        """The schedule a study's dimension values ``dims`` give for a run of ``epochs`` epochs
        of ``steps_per_epoch`` updates (intervals in epochs become steps; a baseline's settings
        in steps, such as ``decay_steps``, are taken as they are)."""

    @classmethod
    @abc.abstractmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        """The fields besides ``initial_lr`` that show the family's shape over ``n_steps`` (at
        least 10) steps, for ``sweeper schedules`` and its plots (a dict for ``from_dict``)."""

    @abc.abstractmethod
    def _rates(self, steps: np.ndarray) -> np.ndarray:
        """The rate at each of ``steps`` (float64), in NumPy."""

    @abc.abstractmethod
    def keras(self) -> Any:
        """The Keras object the optimizer takes as ``learning_rate`` (imports Keras, inside the
        method: importing a family imports no Keras)."""

    @abc.abstractmethod
    def learning_rate_code(self, total_steps: int) -> list[str]:
        """The lines of Python, Keras alone, that define ``learning_rate`` as this schedule for a
        run of ``total_steps`` updates (:func:`sweeper.training.schedule_code.keras_code`)."""

    def rates(self, steps: np.ndarray | list[int] | range) -> np.ndarray:
        """The learning rate at each of ``steps`` (float64)."""
        return np.asarray(self._rates(np.asarray(steps, dtype=np.float64)), dtype=np.float64)

    def lr_at(self, step: int) -> float:
        """The learning rate applied in update number ``step`` (0-based)."""
        return float(self.rates(np.array([step]))[0])

    def curve(self, n_steps: int) -> np.ndarray:
        """The learning rate of steps ``0 .. n_steps - 1``."""
        return self.rates(np.arange(n_steps))

    def rescaled(self, horizon: Horizon) -> Schedule:
        """This schedule rebuilt for ``horizon``'s run under its rule (itself for the same run)."""
        if horizon.same:
            return self
        changes = self._rescale(horizon)
        return dataclasses.replace(self, **changes) if changes else self

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        """The fields that change for ``horizon``'s run (a different run than the tuned one)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description; ``from_dict(s.to_dict()) == s``."""
        out: dict[str, Any] = {"family": self.family}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def describe(self) -> str:
        """One line such as ``exponential(initial_lr=0.001, decay_steps=500, ...)``."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                value = f"{value:.4g}"
            elif isinstance(value, tuple):
                value = (
                    "("
                    + ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
                    + ")"
                )
            parts.append(f"{f.name}={value}")
        return f"{self.family}({', '.join(parts)})"


def check_nonneg(family: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"schedule '{family}': {name} must be >= 0, got {value!r}")


def check_end_lr(family: str, end_lr: float, initial_lr: float) -> None:
    if not (math.isfinite(end_lr) and 0 <= end_lr <= initial_lr):
        raise ConfigError(
            f"schedule '{family}': end_lr must lie in [0, initial_lr={initial_lr!r}], "
            f"got {end_lr!r}"
        )


def interval_in_steps(
    dims: Mapping[str, Any], steps_per_epoch: int, epoch_key: str, default_epochs: float
) -> float:
    """An interval in steps: a baseline's ``decay_steps`` when given, else ``epoch_key`` epochs."""
    if "decay_steps" in dims:
        return float(dims["decay_steps"])
    return float(dims.get(epoch_key, default_epochs)) * steps_per_epoch
