"""The copies of a pack (:mod:`sweeper.training.packing`): each one's network, built and seeded as the
trial alone builds it, and the record of what it trained; the packed model of K copies.

Keras is imported inside the functions, never at module import time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeper.errors import ConfigError
from sweeper.training.backend import load_keras
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.train_trial import EpochRecord

if TYPE_CHECKING:
    from sweeper.training.schedule_base import Schedule

ModelBuilder = Callable[[tuple[int, ...], int], Any]


@dataclass(eq=False)
class PackedCopy:
    """One copy in a pack: its own network, optimizer and schedule, and the epochs it trained."""

    index: int
    seed: int
    schedule: Schedule
    spec: OptimizerSpec
    model: Any  # keras.Model: the copy's network, usable alone
    optimizer: Any  # the copy's own Keras optimizer
    learning_rate: Any  # schedule.keras(): what the optimizer applies
    records: list[EpochRecord] = field(default_factory=list)
    frozen: bool = False  # stopped, kept in the model (freeze), or its slot free (reuse)
    start: int = 0  # epochs trained before it joined the pack (restored from a checkpoint)
    twin: Any = None  # its network built alone, for checkpoints (Pack.twin)
    twin_optimizer: Any = None  # an optimizer built as the trial alone builds it, on the twin

    @property
    def name(self) -> str:
        return copy_name(self.index)

    @property
    def epoch(self) -> int:
        """Epochs trained (the 0-based index of the next one)."""
        return self.start + len(self.records)

    def step(self) -> int:
        """Optimizer updates this copy has taken."""
        import keras

        return int(keras.ops.convert_to_numpy(self.optimizer.iterations))

    def lr(self, step: int) -> float:
        """The rate applied in the copy's update ``step - 1`` (the last one), as run_trial reads it."""
        import keras

        if callable(self.learning_rate):
            value = self.learning_rate(max(step - 1, 0))
        else:
            value = self.optimizer.learning_rate
        return float(keras.ops.convert_to_numpy(value))


def copy_name(index: int) -> str:
    """The name of copy ``index``'s output (and its keys in ``fit``'s logs)."""
    return f"copy_{index}"


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` training examples in a pack's epoch ``epoch`` (0-based)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def build_copy(
    model: str | ModelBuilder,
    input_shape: tuple[int, ...],
    num_classes: int,
    seed: int,
    index: int,
    model_dir: str | None = None,
) -> Any:
    """Copy ``index`` of the network: built as a trial alone builds it after seeding ``seed``.

    ``model`` is a model name for :func:`sweeper.training.models.build_model` or a function
    ``(input_shape, num_classes) -> keras.Model``. The model is renamed ``copy_<index>``.
    """
    load_keras()
    import keras

    from sweeper.training.models import build_model

    keras.utils.set_random_seed(int(seed))
    if callable(model):
        net = model(tuple(input_shape), int(num_classes))
        if not isinstance(net, keras.Model):
            raise ConfigError(f"model builder returned {type(net).__name__}, not a keras.Model")
    else:
        net = build_model(model, input_shape, num_classes, model_dir)
    if net.losses:
        label = model if isinstance(model, str) else getattr(model, "__name__", "model")
        raise ConfigError(
            f"model {label!r} adds regularization losses, which packed trials cannot attribute "
            "to one copy; train its trials one at a time"
        )
    net.name = copy_name(index)
    return net


def pack_models(copies: Sequence[Any], input_shape: tuple[int, ...]) -> Any:
    """One ``keras.Model``: one input, every copy called on it, their outputs in order."""
    import keras

    inputs = keras.Input(shape=tuple(input_shape), name="pack_input")
    outputs = [net(inputs) for net in copies]
    return keras.Model(inputs, outputs, name="pack")


def build_packed_model(
    model: str | ModelBuilder,
    input_shape: tuple[int, ...],
    num_classes: int,
    seeds: Sequence[int],
    model_dir: str | None = None,
) -> tuple[Any, list[Any]]:
    """The packed model of ``len(seeds)`` copies of ``model`` (copy k seeded by ``seeds[k]``),
    and the copies themselves."""
    copies = [
        build_copy(model, input_shape, num_classes, seed, k, model_dir)
        for k, seed in enumerate(seeds)
    ]
    return pack_models(copies, input_shape), copies
