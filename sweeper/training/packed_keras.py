"""The Keras pieces of packed trials (see :mod:`sweeper.training.packing`), in ``keras`` and ``keras.ops``.

* :class:`PackedOptimizer`: one Keras optimizer over the variables of K copies of a network; it
  hands each variable's gradient to the optimizer of the copy the variable belongs to (each copy's
  own SGD, Adam, ..., built with its own schedule), so every copy keeps its own slots (momentum,
  moments) and its own step count, hence its own learning rate;
* :class:`CopyLoss`: a copy's loss as ``fit`` reports the loss of a model trained alone (the
  per-output loss trackers of a multi-output model weigh every batch alike under TensorFlow,
  where the batch size is unknown while tracing, while the loss of a single model weighs each
  batch by its size: the two differ when the last batch is short);
* :class:`SwapScheduleFree`: validation at the averaged point of every schedule-free copy;
* :class:`RateTable`: a copy's learning rate read from a table of rates (a variable), so that a
  slot of the pack can take another trial's schedule without a new trace.

Like :mod:`sweeper.training.schedule_free`, this module imports Keras when it is imported; only
:mod:`sweeper.training.packing` imports it, inside its functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from sweeper.training.schedule_free import ScheduleFreeOptimizer

if TYPE_CHECKING:
    from sweeper.training.schedule_base import Schedule

__all__ = ["CopyLoss", "PackedOptimizer", "RateTable", "SwapScheduleFree", "transfer_state"]

LEARNING_RATE = "learning_rate"  # the name of the variable a Keras optimizer keeps a float rate in


class PackedOptimizer(keras.optimizers.Optimizer):
    """Routes each variable of a packed model to the optimizer of its copy.

    ``optimizers[k]`` updates the variables ``variables[k]`` (copy k's trainable variables) and
    nothing else; the copies share no variable. Each inner optimizer is built on its own copy's
    variables, counts its own ``iterations`` (the step its schedule is evaluated at) and keeps its
    own slots, so an update of the pack is, copy by copy, the update that copy's optimizer would
    make alone. This optimizer's own ``iterations`` counts the pack's updates.

    :attr:`variables` lists this optimizer's own variables, then every inner optimizer's, then
    the rate tables of the copies (``tables``, see :class:`RateTable`): saving, loading and
    JAX's stateless update see the whole state.
    """

    def __init__(
        self,
        optimizers: Sequence[Any],
        variables: Sequence[Sequence[Any]],
        name: str = "packed_optimizer",
        *,
        tables: Sequence[RateTable] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        if len(optimizers) != len(variables):
            raise ValueError(
                f"{len(optimizers)} optimizers for {len(variables)} groups of variables"
            )
        owner: dict[int, int] = {}
        for k, group in enumerate(variables):
            for variable in group:
                if id(variable) in owner:
                    raise ValueError(f"variable {variable.path} belongs to two copies")
                owner[id(variable)] = k
        self._inner = list(optimizers)
        self._owner = owner
        self._tables = list(tables)

    @property
    def optimizers(self) -> list[Any]:
        """The copies' optimizers, in the order of the copies."""
        return list(self._inner)

    @property
    def variables(self) -> list[Any]:
        own = self._variables[:]
        for opt in getattr(self, "_inner", ()):
            own.extend(opt.variables)
        own.extend(table.rates for table in getattr(self, "_tables", ()))
        return own

    def split(self, values: Sequence[Any], variables: Sequence[Any]) -> list[tuple[list, list]]:
        """``values`` (one per variable) grouped by copy: ``[(values_k, variables_k), ...]``."""
        groups: list[tuple[list, list]] = [([], []) for _ in self._inner]
        for value, variable in zip(values, variables, strict=True):
            k = self._owner.get(id(variable))
            if k is None:
                raise ValueError(f"variable {variable.path} belongs to no copy of the pack")
            groups[k][0].append(value)
            groups[k][1].append(variable)
        return groups

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        for opt, (group, _) in zip(self._inner, self.split(variables, variables), strict=True):
            if not opt.built and group:
                with keras.name_scope(opt.name):
                    opt.build(group)
        super().build(variables)

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> None:
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                self.build(trainable_variables)
        for opt, (group_grads, group_vars) in zip(
            self._inner, self.split(grads, trainable_variables), strict=True
        ):
            if group_vars:
                opt.apply(group_grads, group_vars)
        self.iterations.assign_add(1)

    def finalize_variable_values(self, var_list: Sequence[Any]) -> None:
        for opt, (group, _) in zip(self._inner, self.split(var_list, var_list), strict=True):
            if group:
                opt.finalize_variable_values(group)


class CopyLoss(keras.metrics.Mean):
    """One copy's sparse categorical cross-entropy, as ``fit`` reports a single model's loss.

    The loss of each batch is computed as the model's compiled loss computes it (the mean over
    the batch), and the epoch's value is the mean of the batches' losses weighted by their sizes,
    which is how Keras's loss tracker averages them.
    """

    def __init__(self, name: str = "copy_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self._loss = keras.losses.SparseCategoricalCrossentropy()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        value = self._loss(y_true, y_pred, sample_weight=sample_weight)
        super().update_state(value, sample_weight=ops.shape(y_pred)[0])


class SwapScheduleFree(keras.callbacks.Callback):
    """Validation inside ``fit`` at the averaged point of every schedule-free copy of a pack
    (what :class:`sweeper.training.schedule_free.EvaluateAtAverage` does for a single model)."""

    def __init__(self, optimizers: Sequence[Any]) -> None:
        super().__init__()
        self._optimizers = [opt for opt in optimizers if isinstance(opt, ScheduleFreeOptimizer)]
        self._training = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._training = True
        for opt in self._optimizers:
            opt.swap_to_y()

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        for opt in self._optimizers:
            opt.swap_to_x()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._training:
            for opt in self._optimizers:
                opt.swap_to_y()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._training = False
        for opt in self._optimizers:
            opt.swap_to_x()


class RateTable(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate read from a table: ``rates[min(step, n_steps - 1)]``.

    The table is a non-trainable variable holding a schedule's rate at each of the run's
    ``n_steps`` updates, computed by the schedule's NumPy twin (``Schedule.curve``, float64,
    stored in float32: within one float32 rounding of the Keras schedule a trial alone applies).
    :meth:`fill` puts another schedule in place, a new value of the same variable: a traced
    training step goes on reading it, where a new schedule object would need a new trace.
    """

    def __init__(self, n_steps: int, name: str = "rates") -> None:
        super().__init__()
        if n_steps < 1:
            raise ValueError(f"a rate table needs at least one step, got {n_steps}")
        self.n_steps = int(n_steps)
        self.rates = keras.Variable(
            np.zeros(self.n_steps, dtype=np.float32), trainable=False, name=name
        )

    def fill(self, schedule: Schedule) -> None:
        """Hold ``schedule``'s rates from step 0."""
        self.rates.assign(schedule.curve(self.n_steps).astype(np.float32))

    def __call__(self, step: Any) -> Any:
        index = ops.minimum(ops.cast(step, "int32"), self.n_steps - 1)
        return ops.take(self.rates, index)

    def get_config(self) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "name": self.rates.name}


def _state(optimizer: Any) -> list[Any]:
    # a rate given as a float lives in a variable of the optimizer; a schedule does not: the
    # state that moves between optimizers of one kind is everything else
    return [v for v in optimizer.variables if v.name != LEARNING_RATE]


def transfer_state(source: Any, target: Any) -> None:
    """Give the built optimizer ``target`` the state of ``source``, an optimizer of the same
    kind built on variables of the same shapes (step count, momenta, moments, ...).

    Their learning rates are left as they are: one may take a float, the other a schedule.
    """
    a, b = _state(source), _state(target)
    if len(a) != len(b) or any(tuple(x.shape) != tuple(y.shape) for x, y in zip(a, b, strict=True)):
        raise ValueError(
            f"optimizer {source.name} ({len(a)} variables) and {target.name} ({len(b)}) do not "
            "hold the same state"
        )
    for x, y in zip(a, b, strict=True):
        y.assign(x)
