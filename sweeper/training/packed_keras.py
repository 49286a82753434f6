"""The Keras pieces of packed trials (see :mod:`sweeper.training.packing`), in ``keras`` and ``keras.ops``.

* :class:`PackedOptimizer`: one Keras optimizer over the variables of K copies of a network; it
  hands each variable's gradient to the optimizer of the copy the variable belongs to (each copy's
  own SGD, Adam, ..., built with its own schedule), so every copy keeps its own slots (momentum,
  moments) and its own step count, hence its own learning rate;
* :class:`CopyLoss`: a copy's loss as ``fit`` reports the loss of a model trained alone (the
  per-output loss trackers of a multi-output model weigh every batch alike under TensorFlow,
  where the batch size is unknown while tracing, while the loss of a single model weighs each
  batch by its size: the two differ when the last batch is short);
* :class:`SwapScheduleFree`: validation at the averaged point of every schedule-free copy.

Like :mod:`sweeper.training.schedule_free`, this module imports Keras when it is imported; only
:mod:`sweeper.training.packing` imports it, inside its functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from sweeper.training.schedule_free import ScheduleFreeOptimizer

__all__ = ["CopyLoss", "PackedOptimizer", "SwapScheduleFree"]


class PackedOptimizer(keras.optimizers.Optimizer):
    """Routes each variable of a packed model to the optimizer of its copy.

    ``optimizers[k]`` updates the variables ``variables[k]`` (copy k's trainable variables) and
    nothing else; the copies share no variable. Each inner optimizer is built on its own copy's
    variables, counts its own ``iterations`` (the step its schedule is evaluated at) and keeps its
    own slots, so an update of the pack is, copy by copy, the update that copy's optimizer would
    make alone. This optimizer's own ``iterations`` counts the pack's updates.

    :attr:`variables` lists this optimizer's own variables, then every inner optimizer's: saving,
    loading and JAX's stateless update see the whole state.
    """

    def __init__(
        self,
        optimizers: Sequence[Any],
        variables: Sequence[Sequence[Any]],
        name: str = "packed_optimizer",
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

    @property
    def optimizers(self) -> list[Any]:
        """The copies' optimizers, in the order of the copies."""
        return list(self._inner)

    @property
    def variables(self) -> list[Any]:
        own = self._variables[:]
        for opt in getattr(self, "_inner", ()):
            own.extend(opt.variables)
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
