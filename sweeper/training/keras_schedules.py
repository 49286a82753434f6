"""Keras-side schedules that Keras does not ship (imports Keras; training side only)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="sweeper")
class EpochStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The tutorials' drop decay by epoch, applied per step.

    ``lr0 * decay_rate ** floor((1 + epoch) / drop_every)`` with ``epoch = floor(step /
    steps_per_epoch)``: the same rate a ``LearningRateScheduler`` callback would set at the start
    of each epoch, but evaluated by the optimizer itself, so it is exact under every backend and
    survives a checkpoint like any built-in schedule.
    """

    # configs saved before the rename (old key -> new), read by from_config
    renamed: ClassVar[dict[str, str]] = {"drop": "decay_rate", "epochs_drop": "drop_every"}

    def __init__(
        self,
        initial_learning_rate: float,
        decay_rate: float,
        drop_every: float,
        steps_per_epoch: int,
        name: str = "EpochStepDecay",
    ) -> None:
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_rate = decay_rate
        self.drop_every = drop_every
        self.steps_per_epoch = steps_per_epoch
        self.name = name

    def __call__(self, step: Any) -> Any:
        lr = ops.convert_to_tensor(self.initial_learning_rate)
        dtype = lr.dtype
        epoch = ops.floor(ops.cast(step, dtype) / ops.cast(self.steps_per_epoch, dtype))
        exponent = ops.floor((1.0 + epoch) / ops.cast(self.drop_every, dtype))
        return ops.multiply(lr, ops.power(ops.cast(self.decay_rate, dtype), exponent))

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_rate": self.decay_rate,
            "drop_every": self.drop_every,
            "steps_per_epoch": self.steps_per_epoch,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EpochStepDecay:
        config = dict(config)
        for old, new in cls.renamed.items():
            if old in config:
                config.setdefault(new, config.pop(old))
        return cls(**config)


def _decay_profile(profile: str, v: Any, exponent: float) -> Any:
    """``sweeper.training.warmup_decay.decay_profile`` in ``keras.ops``: the decay's height over
    its remaining fraction ``v``, in forms that keep their relative precision as ``v`` -> 0."""
    if profile == "polynomial":
        return ops.power(v, ops.cast(exponent, v.dtype))
    if profile == "linear":
        return v
    if profile == "cosine":
        return ops.square(ops.sin((0.5 * math.pi) * v))
    if profile == "1-sqrt":
        return v / (1.0 + ops.sqrt(1.0 - v))
    if profile == "rex":
        return v / (0.5 + 0.5 * v)
    raise ValueError(f"unknown decay profile {profile!r}")


@keras.saving.register_keras_serializable(package="sweeper")
class WarmupStableDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0, a hold at the peak, then a decay to an end rate.

    The rate is ``initial_learning_rate * step / warmup_steps`` below ``warmup_steps``,
    ``initial_learning_rate`` below ``decay_start``, then
    ``end + (initial - end) * profile(v)`` with ``v = (decay_steps - step) / (decay_steps -
    decay_start)`` clipped to [0, 1]: ``end_learning_rate`` from ``decay_steps`` on. ``profile``
    is ``polynomial`` (``v ** exponent``), ``linear``, ``cosine``, ``1-sqrt`` or ``rex``. The
    Keras side of sweeper's linear, wsd, rex and shape families (Keras ships none of them with a
    warm-up, and its PolynomialDecay loses the relative precision of a decay to zero in float32).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        decay_start: float = 0.0,
        warmup_steps: float = 0.0,
        end_learning_rate: float = 0.0,
        profile: str = "linear",
        exponent: float = 1.0,
        name: str = "WarmupStableDecay",
    ) -> None:
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_start = decay_start
        self.warmup_steps = warmup_steps
        self.end_learning_rate = end_learning_rate
        self.profile = profile
        self.exponent = exponent
        self.name = name

    def __call__(self, step: Any) -> Any:
        lr = ops.convert_to_tensor(self.initial_learning_rate)
        dtype = lr.dtype
        t = ops.cast(step, dtype)
        end = ops.cast(self.end_learning_rate, dtype)
        span = float(self.decay_steps) - float(self.decay_start)
        if span > 0:
            v = ops.clip((ops.cast(self.decay_steps, dtype) - t) / span, 0.0, 1.0)
        else:  # no decay: the peak up to decay_steps, the end rate after it
            v = ops.cast(ops.less_equal(t, ops.cast(self.decay_steps, dtype)), dtype)
        out = end + (lr - end) * _decay_profile(self.profile, v, self.exponent)
        out = ops.where(ops.less(t, ops.cast(self.decay_start, dtype)), lr, out)
        if self.warmup_steps > 0:
            warm = lr * t / ops.cast(self.warmup_steps, dtype)
            out = ops.where(ops.less(t, ops.cast(self.warmup_steps, dtype)), warm, out)
        return out

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_start": self.decay_start,
            "warmup_steps": self.warmup_steps,
            "end_learning_rate": self.end_learning_rate,
            "profile": self.profile,
            "exponent": self.exponent,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="sweeper")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's 1cycle with cosine annealing, step for step as PyTorch's ``OneCycleLR``
    (two phases): from ``max_learning_rate / div_factor`` up to ``max_learning_rate`` at step
    ``pct_start * total_steps - 1``, then down to ``max_learning_rate / (div_factor *
    final_div_factor)`` at step ``total_steps - 1``."""

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: float,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        name: str = "OneCycle",
    ) -> None:
        super().__init__()
        self.max_learning_rate = max_learning_rate
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.name = name

    def __call__(self, step: Any) -> Any:
        peak = ops.convert_to_tensor(self.max_learning_rate)
        dtype = peak.dtype
        t = ops.cast(step, dtype)
        start = float(self.max_learning_rate) / float(self.div_factor)
        end = start / float(self.final_div_factor)
        e1 = float(self.pct_start) * float(self.total_steps) - 1.0
        e2 = float(self.total_steps) - 1.0
        half_pi = 0.5 * math.pi
        # each phase written from its low end (sin^2 form of the cosine anneal): exact ends
        up = start + (peak - start) * ops.square(ops.sin(half_pi * ops.clip(t / e1, 0.0, 1.0)))
        q = ops.clip((e2 - t) / (e2 - e1), 0.0, 1.0)
        down = end + (peak - end) * ops.square(ops.sin(half_pi * q))
        return ops.where(ops.less_equal(t, e1), up, down)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "name": self.name,
        }
