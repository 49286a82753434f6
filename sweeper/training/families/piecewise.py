"""The piecewise family: Keras's PiecewiseConstantDecay."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.schedule_base import Horizon, Schedule, check_positive
from sweeper.training.schedule_code import KERAS_SCHEDULES, assignment, list_literal, literal


@dataclass(frozen=True)
class Piecewise(Schedule):
    """values[0] up to and including step boundaries[0], values[i] on (boundaries[i-1], boundaries[i]].

    Dimensions: ``drop_every`` (epochs: the boundaries' spacing, none at or after the run's
    end), ``decay_rate`` (the factor applied at each boundary); or a baseline's own
    ``boundaries`` (steps) and ``values``.
    """

    family: ClassVar[str] = "piecewise"
    formula: ClassVar[str] = "values[i] for boundaries[i-1] < step <= boundaries[i]"
    order: ClassVar[int] = 50
    dimensions: ClassVar[tuple[str, ...]] = ("initial_lr", "decay_rate", "drop_every")

    boundaries: tuple[int, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "boundaries", tuple(int(b) for b in self.boundaries))
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        if not self.values:
            object.__setattr__(self, "values", (float(self.initial_lr),))
        if len(self.values) != len(self.boundaries) + 1:
            raise ConfigError(
                "schedule 'piecewise': values must have one more entry than boundaries, "
                f"got {len(self.values)} values for {len(self.boundaries)} boundaries"
            )
        if any(b2 <= b1 for b1, b2 in zip(self.boundaries, self.boundaries[1:], strict=False)):
            raise ConfigError(
                f"schedule 'piecewise': boundaries must increase, got {list(self.boundaries)}"
            )
        check_positive(self.family, **{f"values[{i}]": v for i, v in enumerate(self.values)})
        if self.values[0] != self.initial_lr:
            raise ConfigError(
                f"schedule 'piecewise': values[0] ({self.values[0]!r}) must equal initial_lr "
                f"({self.initial_lr!r})"
            )

    @classmethod
    def from_dimensions(cls, dims: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Self:
        lr = float(dims["initial_lr"])
        if "boundaries" in dims:
            boundaries = tuple(int(b) for b in dims["boundaries"])
            values = tuple(float(v) for v in dims["values"])
            return cls(lr, boundaries=boundaries, values=values)
        every = float(dims.get("drop_every", 1.0))
        factor = float(dims.get("decay_rate", 0.5))
        check_positive(cls.family, drop_every=every)
        bounds: list[int] = []
        k = 1
        while k * every < epochs:
            step = round(k * every * steps_per_epoch) - 1
            if not bounds or step > bounds[-1]:
                bounds.append(step)
            k += 1
        return cls(
            lr,
            boundaries=tuple(bounds),
            values=tuple(lr * factor**i for i in range(len(bounds) + 1)),
        )

    @classmethod
    def plot_default(cls, n_steps: int, initial_lr: float) -> dict[str, Any]:
        return {
            "boundaries": [round(n_steps * f) for f in (0.3, 0.6, 0.85)],
            "values": [float(f"{initial_lr * 0.3**i:.6g}") for i in range(4)],
        }

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        index = np.searchsorted(np.asarray(self.boundaries, dtype=np.float64), steps, side="left")
        return np.asarray(self.values, dtype=np.float64)[index]

    def _rescale(self, horizon: Horizon) -> dict[str, Any]:
        # each drop at the same share of the run (or epoch); drops that would fall on one step
        # of a much shorter run are one step apart
        bounds: list[int] = []
        for b in self.boundaries:
            bounds.append(max(horizon.boundary(b), bounds[-1] + 1 if bounds else 0))
        return {"boundaries": tuple(bounds)}

    def keras(self) -> Any:
        import keras

        if not self.boundaries:
            return float(self.initial_lr)
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            list(self.boundaries), list(self.values)
        )

    def learning_rate_code(self, total_steps: int) -> list[str]:
        if not self.boundaries:
            return [f"learning_rate = {literal(self.initial_lr)}"]
        return assignment(
            "learning_rate",
            f"{KERAS_SCHEDULES}.PiecewiseConstantDecay",
            {
                "boundaries": list_literal([repr(int(b)) for b in self.boundaries]),
                "values": list_literal([literal(v) for v in self.values]),
            },
        )
