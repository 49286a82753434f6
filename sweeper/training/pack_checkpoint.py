"""Checkpoints of packed trials: one copy's training state, in the files Keras's
``BackupAndRestore`` writes for a model trained alone.

The network's weights and its optimizer's state go in one ``.weights.h5`` file, the epochs done
in a JSON file, each with a ``.bkp`` of the previous epoch's, and the manifest that verifies them
(:mod:`sweeper.training.checkpoints`, shared with the trial alone), so a trial checkpointed in a
pack resumes alone (``run_trial`` with the same ``backup_dir``) and the other way round. They are
written and read through a *twin* of the copy's network built alone: a network called inside the
pack (once per rebuild of the pack) is saved by Keras with another layout than the same network
alone, and its optimizer's state through an optimizer built as a trial alone builds it (a copy
whose rate is read from a table keeps no learning-rate variable, a trial alone at a constant
rate does). The files' names and layout are Keras's; the reading and writing here is
hand-written because ``BackupAndRestore`` is a ``fit`` callback of one model, while a pack
trains many.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from sweeper.training import checkpoints
from sweeper.training.checkpoints import Checkpoint


class PackedCopy(Protocol):
    """What a checkpoint reads and writes of a copy (:class:`sweeper.training.packing.PackedCopy`)."""

    model: Any  # the copy's network, as called inside the pack
    optimizer: Any  # its own Keras optimizer
    start: int  # epochs trained before it joined the pack

    @property
    def epoch(self) -> int: ...


def save_copy(copy: PackedCopy, twin: Any, optimizer: Any, where: str | Path | Checkpoint) -> None:
    """Write ``copy``'s training state (weights, optimizer state, epochs done) to ``where``,
    through ``twin``, the same network built alone, and ``optimizer``, built on the twin's
    variables as the trial alone builds its own; atomically, with its manifest, the previous
    epoch's checkpoint kept as the ``.bkp`` files (:func:`sweeper.training.checkpoints.save`)."""
    from sweeper.training.packed_keras import transfer_state

    twin.set_weights(copy.model.get_weights())
    if not copy.optimizer.built:
        copy.optimizer.build(copy.model.trainable_variables)
    transfer_state(copy.optimizer, optimizer)
    twin.optimizer = optimizer  # saved with the network, as a compiled model's is
    checkpoints.save(
        where,
        lambda path: twin.save_weights(str(path), overwrite=True),
        copy.epoch,
        checkpoints.state_bytes(twin),
    )


def restore_copy(
    copy: PackedCopy, twin: Any, optimizer: Any, where: str | Path | Checkpoint
) -> int:
    """Load a checkpoint (of a copy, or of the trial trained alone) into ``copy``, which has not
    trained yet, through ``twin`` and ``optimizer`` (see :func:`save_copy`); the epochs it had
    done (0 when ``where`` holds none that verifies: what does not is set aside by
    :func:`sweeper.training.checkpoints.recover`)."""
    from sweeper.training.packed_keras import transfer_state

    found = checkpoints.recover(where)
    if not found.epoch:
        return 0
    if not copy.optimizer.built:
        copy.optimizer.build(copy.model.trainable_variables)
    twin.optimizer = optimizer  # the checkpoint's optimizer state is loaded into it
    twin.load_weights(str(Checkpoint.at(where).folder / checkpoints.WEIGHTS_FILE))
    copy.model.set_weights(twin.get_weights())
    transfer_state(optimizer, copy.optimizer)
    copy.start = found.epoch
    return found.epoch
