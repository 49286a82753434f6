"""Packed trials: K trials of one network trained at once, as one Keras model fed the same batches.

A trial of the tutorials' CNNs is too little work to keep a machine busy: every batch pays the
framework's fixed costs (a traced function call, the input pipeline, the callbacks) for small
operations that leave cores idle. Horizontal fusion (HFTA, Wang et al., MLSys 2021) trains K
trials of the same network in one model: those costs are paid once per batch for all of them,
and the K copies' independent operations can run side by side (``scripts/bench_pack.py``
measures the gain).

The packed model (:class:`Pack`) has one input and K outputs, one per *copy* of the network:

* **copies** share no weight: copy k is the network built alone (``build_model``), called on the
  pack's input, its output named ``copy_<k>``;
* **initialisation**: right before building copy k, ``keras.utils.set_random_seed(seed_k)``, as
  a trial alone starts (``training.reset_keras``). An initialiser given no seed draws one from
  Python's ``random`` when its layer is created (``keras.random.make_default_seed``), so copy k's
  initial weights are bit for bit those of the network built alone with seed k, whatever was
  built before it;
* **loss**: one sparse categorical cross-entropy per output, each weighted 1; Keras sums them.
  The copies share no weight, so the gradient of the sum with respect to copy k's weights is the
  gradient of copy k's loss alone;
* **optimizer**: a :class:`~sweeper.training.packed_keras.PackedOptimizer` routes each variable's gradient
  to copy k's own optimizer (``OptimizerSpec.build`` with copy k's schedule), so slots, step
  count and learning rate are per copy;
* **metrics**: per copy, accuracy and :class:`~sweeper.training.packed_keras.CopyLoss` (the loss averaged
  over batches as Keras averages a single model's loss); an :class:`~sweeper.training.train_trial.EpochRecord`
  per copy per epoch, with the learning rate read back from the copy's own schedule at its own
  step, as ``run_trial`` records it; schedule-free copies are validated at their averaged point,
  as alone.

Every copy sees the same batches in the same order. The order of an epoch is
:func:`epoch_order` (a permutation drawn from the pack's seed and its epoch count), the same for
every backend; ``fit`` itself is told not to shuffle.

**A copy that stops** (complete, pruned, paused, stalled, diverged) leaves the pack between two
epochs: by default the pack is rebuilt from the remaining copies, the same layer and optimizer
objects (so their weights and slots as they are), and compiled again: the next epoch is traced
anew and costs only the remaining copies (``scripts/bench_pack.py`` measures this against
freezing: the stopped copy stays in the model with its loss weighted 0 and its variables not
trainable, which costs a new trace as well, and its forward pass at every batch). A copy can also
join a running pack (:meth:`Pack.add`), so a trial loop can fill a freed slot.

**Reusing slots** (``Pack(stop="reuse")``, what the study's trial loop uses): every copy reads its
rate from a table (:class:`~sweeper.training.packed_keras.RateTable`, the schedule's rates at each
step), and a stopped copy leaves its slot (its layers, its optimizer, its table) in the model. A
copy added with the same optimizer settings takes a free slot: the slot's weights are set to the
new copy's initial weights (its network built and seeded alone), its optimizer's state to that
of a new optimizer, its table to the new schedule, all new values of the same variables, so the
traced training step goes on unchanged. Only a slot still free when the next epoch starts makes
the pack rebuild without it. The rates are the schedules' NumPy twins stored in float32, within
one float32 rounding of the Keras schedule a trial alone applies.

Fused layers (one grouped convolution for the K copies' convolutions, a batched matmul for their
dense layers) measured many times slower than K separate copies under TensorFlow on CPU (grouped
convolutions have no fast CPU kernel), so each copy keeps its own layers.

Limits: a network with regularisation losses (``kernel_regularizer``, ``add_loss``) is refused,
since the per-copy loss would miss its share of them. ``EpochRecord.seconds`` of a packed copy is
its share of the pack's epoch: the epoch's wall time divided by the copies trained in it, so that
seconds summed over trials are the machine time they took.

Keras is imported inside the functions, never at module import time.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.interrupts import INTERRUPTS
from sweeper.training.backend import load_keras
from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.pack_copies import (
    ModelBuilder,
    PackedCopy,
    build_copy,
    epoch_order,
    pack_models,
)
from sweeper.training.train_trial import EpochRecord, TrainSettings, steps_per_epoch

if TYPE_CHECKING:
    from sweeper.training.checkpoints import Checkpoint
    from sweeper.training.data import Dataset
    from sweeper.training.schedule_base import Schedule

log = logging.getLogger(__name__)

LOSS = "sparse_categorical_crossentropy"
STOP_MODES = ("rebuild", "freeze", "reuse")
COPY_LOSS = "copy_loss"  # the name of the per-copy loss metric (see packed_keras.CopyLoss)

__all__ = ["COPY_LOSS", "LOSS", "STOP_MODES", "Pack"]


class Pack:
    """Copies of one network trained together, epoch by epoch, on one dataset.

    ``add`` puts a copy in (its network built and seeded as alone, its optimizer built with its
    schedule), ``train_epoch`` trains every live copy one epoch and returns their records, and
    ``stop`` takes a copy out. The packed model is rebuilt, lazily, whenever the set of copies
    changed. ``stop="freeze"`` keeps stopped copies in the model instead (loss weight 0, not
    trainable), for measuring that alternative; ``stop="reuse"`` gives a stopped copy's slot to
    the next copy added with the same optimizer settings, without rebuilding (see the module's
    notes).
    """

    def __init__(
        self,
        dataset: Dataset,
        settings: TrainSettings | None = None,
        *,
        model: str | ModelBuilder | None = None,
        shuffle: bool = True,
        stop: str = "rebuild",
        verbose: int = 0,
    ) -> None:
        if stop not in STOP_MODES:
            raise ValueError(f"stop must be one of {', '.join(STOP_MODES)}, got {stop!r}")
        load_keras()
        self.dataset = dataset
        self.settings = settings or TrainSettings()
        self.model_source: str | ModelBuilder = model or self.settings.model
        self.shuffle = shuffle
        self.stop_mode = stop
        self.verbose = verbose
        self.copies: list[PackedCopy] = []  # every copy in the model, frozen ones included
        self.epochs = 0  # epochs the pack trained (seeds the order of the next one)
        self.compiles = 0  # how many times a packed model was built and compiled
        self.reused = 0  # how many copies took the slot of a stopped one (stop="reuse")
        self._model: Any = None
        self._total_steps = self.settings.epochs * steps_per_epoch(
            len(dataset.x_train), self.settings.batch_size
        )

    # -- the copies -----------------------------------------------------------------------
    @property
    def live(self) -> list[PackedCopy]:
        """The copies that train."""
        return [c for c in self.copies if not c.frozen]

    def add(
        self,
        schedule: Schedule,
        optimizer: OptimizerSpec | None = None,
        *,
        seed: int | None = None,
        index: int | None = None,
    ) -> PackedCopy:
        """Put a new copy in the pack and return it; it trains from the next epoch on.

        ``seed`` (default: the settings' seed, as every trial of a study has) seeds its initial
        weights; ``index`` (default: the next free number) names it.
        """
        spec = optimizer or OptimizerSpec()
        seed = self.settings.seed if seed is None else int(seed)
        free = self._free_slot(spec, index)
        if free is not None:
            return self._refill(free, schedule, spec, seed)
        used = {c.index for c in self.copies}
        if index is None:
            index = max(used, default=-1) + 1
        elif index in used:
            raise ValueError(f"the pack already has a copy {index}")
        net = self._network(seed, index)
        if self.stop_mode == "reuse":
            from sweeper.training.packed_keras import RateTable

            learning_rate: Any = RateTable(self._total_steps, name=f"rates_{index}")
            learning_rate.fill(schedule)
        else:
            learning_rate = schedule.keras()
        copy = PackedCopy(
            index=index,
            seed=seed,
            schedule=schedule,
            spec=spec,
            model=net,
            optimizer=spec.build(learning_rate, total_steps=self._total_steps),
            learning_rate=learning_rate,
        )
        self.copies.append(copy)
        self._model = None
        return copy

    def _network(self, seed: int, index: int) -> Any:
        return build_copy(
            self.model_source,
            self.dataset.input_shape,
            self.dataset.num_classes,
            seed,
            index,
            self.settings.model_dir,
        )

    def _free_slot(self, spec: OptimizerSpec, index: int | None) -> PackedCopy | None:
        """A stopped copy whose slot a copy trained with ``spec`` can take (stop="reuse")."""
        if self.stop_mode != "reuse" or spec.schedule_free:
            return None
        for c in self.copies:
            if c.frozen and c.spec == spec and index in (None, c.index):
                return c
        return None

    def _refill(
        self, old: PackedCopy, schedule: Schedule, spec: OptimizerSpec, seed: int
    ) -> PackedCopy:
        """A new copy in ``old``'s slot: new values in its variables, the same traced model."""
        from sweeper.training.packed_keras import transfer_state

        copy = PackedCopy(
            index=old.index,
            seed=seed,
            schedule=schedule,
            spec=spec,
            model=old.model,
            optimizer=old.optimizer,
            learning_rate=old.learning_rate,
        )
        # its twin (its network built and seeded alone, and a new optimizer on it, as the trial
        # alone starts) gives the slot its initial weights and state, and serves its checkpoints
        net, fresh = self.twin(copy)
        if not old.optimizer.built:  # stopped before it ever trained
            old.optimizer.build(old.model.trainable_variables)
        old.model.set_weights(net.get_weights())
        transfer_state(fresh, old.optimizer)  # a step count of 0, momenta and moments as new
        old.learning_rate.fill(schedule)
        self.copies[self.copies.index(old)] = copy
        self.reused += 1
        return copy

    def twin(self, copy: PackedCopy) -> tuple[Any, Any]:
        """The network of ``copy`` built alone, outside the pack, and an optimizer built on it
        as the trial alone builds its own (for its checkpoints)."""
        if copy.twin is None:
            copy.twin = self._network(copy.seed, copy.index)
        if copy.twin_optimizer is None:
            optimizer = copy.spec.build(copy.schedule.keras(), total_steps=self._total_steps)
            optimizer.build(copy.twin.trainable_variables)
            copy.twin_optimizer = optimizer
        return copy.twin, copy.twin_optimizer

    def save(self, copy: PackedCopy, folder: str | Path | Checkpoint) -> None:
        """Checkpoint ``copy`` in ``folder`` (see :func:`sweeper.training.pack_checkpoint.save_copy`)."""
        from sweeper.training.pack_checkpoint import save_copy

        save_copy(copy, *self.twin(copy), folder)

    def save_model(self, copy: PackedCopy, path: str | Path) -> None:
        """Save ``copy`` as the trial alone would be saved (``model.save``, a ``.keras`` file):
        its twin (the network built alone) with the copy's weights, compiled as ``run_trial``
        compiles it, with an optimizer built as the trial alone builds its own (its schedule,
        not the pack's rate table) holding the copy's optimizer state. A schedule-free copy
        is saved as it stands after its last epoch: at its averaged point x."""
        from sweeper.training.packed_keras import transfer_state

        twin, optimizer = self.twin(copy)
        twin.set_weights(copy.model.get_weights())
        if not copy.optimizer.built:
            copy.optimizer.build(copy.model.trainable_variables)
        transfer_state(copy.optimizer, optimizer)
        twin.compile(
            optimizer=optimizer,
            loss=LOSS,
            metrics=["accuracy"],
            jit_compile=self.settings.jit_compile,
        )
        twin.save(str(path))

    def restore(self, copy: PackedCopy, folder: str | Path | Checkpoint) -> int:
        """Resume ``copy`` from the checkpoint in ``folder``; its epochs done (0: none there
        that verifies)."""
        from sweeper.training.pack_checkpoint import restore_copy

        return restore_copy(copy, *self.twin(copy), folder)

    def stop(self, copy: PackedCopy) -> None:
        """Take ``copy`` out of training (rebuild: out of the model; freeze: frozen in it;
        reuse: its slot free for the next copy added)."""
        if copy not in self.copies or copy.frozen:
            raise ValueError(f"copy {copy.index} is not training in this pack")
        if self.stop_mode == "rebuild":
            self.copies.remove(copy)
            self._model = None
        else:
            copy.frozen = True
            if self.stop_mode == "freeze":
                self._model = None

    # -- the packed model -----------------------------------------------------------------
    def _compile(self) -> Any:
        from sweeper.training.packed_keras import CopyLoss, PackedOptimizer

        if self.stop_mode == "reuse":  # slots still free as an epoch starts leave the model
            self.copies = self.live
        live = self.live
        for c in self.copies:
            if c.frozen:
                c.model.trainable = False
        model = pack_models([c.model for c in self.copies], self.dataset.input_shape)
        tables = [c.learning_rate for c in live] if self.stop_mode == "reuse" else []
        optimizer = PackedOptimizer(
            [c.optimizer for c in live], [c.model.trainable_variables for c in live], tables=tables
        )
        weights = [0.0 if c.frozen else 1.0 for c in self.copies]
        model.compile(
            optimizer=optimizer,
            loss=[LOSS] * len(self.copies),
            loss_weights=weights if len(live) < len(self.copies) else None,
            metrics=[["accuracy", CopyLoss(COPY_LOSS)] for _ in self.copies],
            jit_compile=self.settings.jit_compile,
        )
        self.compiles += 1
        self._model = model
        return model

    def _request_stop(self) -> None:  # the signal handler: fit ends after the batch in progress
        if self._model is not None:
            self._model.stop_training = True

    def _key(self, logs: dict[str, Any], copy: PackedCopy, metric: str, prefix: str = "") -> Any:
        # one output: Keras names the logs after the metric alone; several: "<output>_<metric>"
        for key in (f"{prefix}{copy.name}_{metric}", f"{prefix}{metric}"):
            if key in logs:
                return logs[key]
        return None

    def train_epoch(self) -> list[tuple[PackedCopy, EpochRecord]]:
        """Train every live copy one epoch; each copy's record, in the order of the copies.

        Ctrl-C (see :mod:`sweeper.interrupts`) ends ``fit`` after the batch in progress and
        raises here: the epoch cut short counts for nothing (no record).
        """
        live = self.live
        if not live:
            return []
        INTERRUPTS.check()
        if self.stop_mode == "reuse" and len(live) < len(self.copies):
            self._model = None  # a slot left free: the pack goes on without it
        model = self._model if self._model is not None else self._compile()
        ds = self.dataset
        x, y = ds.x_train, ds.y_train
        if self.shuffle:
            order = epoch_order(len(y), self.settings.seed, self.epochs)
            x, y = x[order], y[order]
        n = len(self.copies)
        callbacks = []
        if any(c.spec.schedule_free for c in live):
            from sweeper.training.packed_keras import SwapScheduleFree

            callbacks.append(SwapScheduleFree([c.optimizer for c in live]))
        start = time.perf_counter()
        with INTERRUPTS.on_stop(self._request_stop):
            history = model.fit(
                x,
                [y] * n,
                batch_size=self.settings.batch_size,
                epochs=1,
                validation_data=(ds.x_val, [ds.y_val] * n),
                shuffle=False,
                callbacks=callbacks,
                verbose=self.verbose,
            )
        INTERRUPTS.check()
        share = (time.perf_counter() - start) / len(live)
        self.epochs += 1
        logs = {k: v[-1] for k, v in history.history.items() if v}
        out = []
        for c in live:
            step = c.step()
            record = EpochRecord(
                epoch=c.epoch,
                step=step,
                lr=c.lr(step),
                loss=float(self._key(logs, c, COPY_LOSS)),
                accuracy=_finite_or_none(self._key(logs, c, "accuracy")),
                val_loss=_finite_or_none(self._key(logs, c, COPY_LOSS, "val_")),
                val_accuracy=_finite_or_none(self._key(logs, c, "accuracy", "val_")),
                seconds=share,
            )
            c.records.append(record)
            out.append((c, record))
        return out


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
