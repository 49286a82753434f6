"""A tuned configuration handed over to the user's own training: its schedule and optimizer as
Keras objects or as Keras code, for the run it was tuned on or rebuilt for another one.

A trial trains its schedule over ``epochs`` epochs of ``steps_per_epoch`` updates; the user's
final run is often longer, or sees more data (training and validation together). :class:`Tuned`
rebuilds the schedule for that run under a rule of :data:`RESCALE_RULES` (see
:class:`~sweeper.training.schedule_base.Horizon` and each family's ``_rescale``): ``fraction``
keeps every warm-up, drop and decay end at the same share of the run; ``epochs`` keeps what is
stated in epochs in epochs. With no argument nothing is rebuilt: the trial's own schedule.

Nothing here imports Keras until a Keras object is asked for (:meth:`Tuned.learning_rate`,
:meth:`Tuned.optimizer`), so the read-only commands can print :meth:`Tuned.code`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from sweeper.errors import RescaleError
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.schedule_base import Horizon, Schedule

__all__ = ["DEFAULT_RULE", "Tuned", "keras_objects", "steps_for"]

DEFAULT_RULE = "fraction"
"""The rule used when none is named: measured best by ``scripts/bench_horizon.py``
(docs/benchmarks.md §11)."""


def keras_objects() -> dict[str, Any]:
    """sweeper's Keras classes (schedules, schedule-free optimizers) by registered name, for
    ``keras.models.load_model(path, custom_objects=sweeper.keras_objects())`` in a process that
    has not used them yet (imports Keras)."""
    import importlib

    from sweeper.training.backend import load_keras

    load_keras()
    import keras

    for module in ("keras_schedules", "schedule_free"):  # imported for their registrations
        importlib.import_module(f"sweeper.training.{module}")
    return {
        name: obj
        for name, obj in keras.saving.get_custom_objects().items()
        if name.startswith("sweeper>")
    }


def steps_for(examples: int, batch_size: int) -> int:
    """Optimizer updates per epoch of ``examples`` in batches of ``batch_size`` (the last batch
    may be short), as ``model.fit`` does them."""
    for name, value in (("examples", examples), ("batch size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RescaleError(f"{name} must be a whole number >= 1, got {value!r}")
    return math.ceil(examples / batch_size)


@dataclass(frozen=True)
class Tuned:
    """A tuned schedule and optimizer, and the run they were tuned on."""

    schedule: Schedule
    optimizer_spec: OptimizerSpec
    steps_per_epoch: int
    epochs: int

    def horizon(
        self,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        rule: str | None = None,
    ) -> Horizon:
        """The tuned run and the run asked for (the tuned one for what is not given)."""
        return Horizon(
            self.steps_per_epoch,
            self.epochs,
            self.steps_per_epoch if steps_per_epoch is None else steps_per_epoch,
            self.epochs if epochs is None else epochs,
            DEFAULT_RULE if rule is None else rule,
        )

    def schedule_for(self, horizon: Horizon) -> Schedule:
        """The schedule rebuilt for ``horizon``'s run (the tuned one for the same run)."""
        return self.schedule.rescaled(horizon)

    def optimizer_spec_for(self, horizon: Horizon) -> OptimizerSpec:
        """The optimizer's settings for ``horizon``'s run: a schedule-free warm-up, a share of
        the run, keeps its share (``fraction``) or its length in epochs (``epochs``)."""
        spec = self.optimizer_spec
        if not spec.warmup or horizon.same or horizon.rule == "fraction":
            return spec
        share = spec.warmup * horizon.tuned_steps * horizon.factor / horizon.steps
        if share >= 1:
            raise RescaleError(
                f"the {spec.name} warm-up of {spec.warmup * horizon.tuned_epochs:g} epochs does "
                f"not fit a run of {horizon.epochs} epochs under the 'epochs' rule; use the "
                "'fraction' rule or a longer run"
            )
        return dataclasses.replace(spec, warmup=share)

    def learning_rate(
        self,
        steps_per_epoch: int | None = None,
        epochs: int | None = None,
        rule: str | None = None,
    ) -> Any:
        """The Keras ``LearningRateSchedule`` (a float for a constant rate) for the run of
        ``epochs`` epochs of ``steps_per_epoch`` updates (imports Keras)."""
        return self.schedule_for(self.horizon(epochs, steps_per_epoch, rule)).keras()

    def optimizer(
        self,
        steps_per_epoch: int | None = None,
        epochs: int | None = None,
        rule: str | None = None,
    ) -> Any:
        """A new Keras optimizer with every tuned setting, applying :meth:`learning_rate`
        (imports Keras)."""
        horizon = self.horizon(epochs, steps_per_epoch, rule)
        spec = self.optimizer_spec_for(horizon)
        return spec.build(self.schedule_for(horizon).keras(), total_steps=horizon.steps)

    def code(
        self,
        steps_per_epoch: int | None = None,
        epochs: int | None = None,
        rule: str | None = None,
        *,
        title: str = "",
    ) -> str:
        """Python code that builds the same ``learning_rate`` and ``optimizer`` with Keras alone
        (schedule-free optimizers excepted: Keras has none), to paste into a training script."""
        from sweeper.training.schedule_code import keras_code

        horizon = self.horizon(epochs, steps_per_epoch, rule)
        comment = [title] if title else []
        comment.append(self.length_line(horizon))
        comment.append(
            f"for model.fit(..., epochs={horizon.epochs}) with {horizon.spe} batches per epoch"
        )
        return keras_code(
            self.schedule_for(horizon),
            self.optimizer_spec_for(horizon),
            total_steps=horizon.steps,
            comment=comment,
        )

    def length_line(self, horizon: Horizon) -> str:
        """What the rebuild did, in one line: ``cosine over 27 epochs of 34 steps (tuned over 9
        epochs of 34 steps, rule 'fraction'): decay_steps 272 -> 816``."""
        run = f"{horizon.epochs} epochs of {horizon.spe} steps"
        family = self.schedule.family
        if horizon.same:
            return f"{family} as tuned: {run}"
        new = self.schedule_for(horizon)
        changes = []
        for f in dataclasses.fields(new):
            before, after = getattr(self.schedule, f.name), getattr(new, f.name)
            if before != after:
                changes.append(f"{f.name} {_text(before)} -> {_text(after)}")
        spec = self.optimizer_spec_for(horizon)
        if spec.warmup:
            steps = round(spec.warmup * horizon.steps)
            changes.append(f"{spec.name} warm-up {steps} steps")
        tuned = f"{horizon.tuned_epochs} epochs of {horizon.tuned_spe} steps"
        what = ", ".join(changes) if changes else "unchanged"
        return f"{family} over {run} (tuned over {tuned}, rule '{horizon.rule}'): {what}"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    return str(value)
