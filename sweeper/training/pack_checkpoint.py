"""Checkpoints of packed trials: one copy's training state, in the files Keras's
``BackupAndRestore`` writes for a model trained alone.

The network's weights and its optimizer's state go in one ``.weights.h5`` file, the epochs done
in a JSON file, each with a ``.bkp`` of the previous epoch's, so a trial checkpointed in a pack
resumes alone (``run_trial`` with the same ``backup_dir``) and the other way round. They are
written and read through a *twin* of the copy's network built alone: a network called inside the
pack (once per rebuild of the pack) is saved by Keras with another layout than the same network
alone, and its optimizer's state through an optimizer built as a trial alone builds it (a copy
whose rate is read from a table keeps no learning-rate variable, a trial alone at a constant
rate does). The files' names and layout are Keras's; the reading and writing here is
hand-written because ``BackupAndRestore`` is a ``fit`` callback of one model, while a pack
trains many.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Protocol


class PackedCopy(Protocol):
    """What a checkpoint reads and writes of a copy (:class:`sweeper.training.packing.PackedCopy`)."""

    model: Any  # the copy's network, as called inside the pack
    optimizer: Any  # its own Keras optimizer
    start: int  # epochs trained before it joined the pack

    @property
    def epoch(self) -> int: ...


WEIGHTS_FILE = "latest.weights.h5"
METADATA_FILE = "training_metadata.json"
PREVIOUS = ".bkp"


def save_copy(copy: PackedCopy, twin: Any, optimizer: Any, folder: str | Path) -> None:
    """Write ``copy``'s training state (weights, optimizer state, epochs done) to ``folder``,
    through ``twin``, the same network built alone, and ``optimizer``, built on the twin's
    variables as the trial alone builds its own."""
    from sweeper.training.packed_keras import transfer_state

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights, metadata = folder / WEIGHTS_FILE, folder / METADATA_FILE
    for path in (weights, metadata):  # the previous epoch's state, should this write be cut
        if path.exists():
            shutil.copyfile(path, path.with_name(path.name + PREVIOUS))
    twin.set_weights(copy.model.get_weights())
    if not copy.optimizer.built:
        copy.optimizer.build(copy.model.trainable_variables)
    transfer_state(copy.optimizer, optimizer)
    twin.optimizer = optimizer  # saved with the network, as a compiled model's is
    twin.save_weights(str(weights), overwrite=True)
    metadata.write_text(json.dumps({"epoch": copy.epoch, "batch": 0}))


def restore_copy(copy: PackedCopy, twin: Any, optimizer: Any, folder: str | Path) -> int:
    """Load a checkpoint (of a copy, or of the trial trained alone) into ``copy``, which has not
    trained yet, through ``twin`` and ``optimizer`` (see :func:`save_copy`); the epochs it had
    done (0 when ``folder`` holds none)."""
    from sweeper.training.packed_keras import transfer_state

    folder = Path(folder)
    weights, metadata = folder / WEIGHTS_FILE, folder / METADATA_FILE
    if not weights.exists():
        return 0
    if not copy.optimizer.built:
        copy.optimizer.build(copy.model.trainable_variables)
    twin.optimizer = optimizer  # the checkpoint's optimizer state is loaded into it
    try:
        twin.load_weights(str(weights))
    except OSError:  # cut while written: the previous epoch's state, as BackupAndRestore does
        previous = weights.with_name(weights.name + PREVIOUS)
        if not previous.exists():
            raise
        twin.load_weights(str(previous))
        metadata = metadata.with_name(metadata.name + PREVIOUS)
    copy.model.set_weights(twin.get_weights())
    transfer_state(optimizer, copy.optimizer)
    epoch = int(json.loads(metadata.read_text())["epoch"]) if metadata.exists() else 0
    copy.start = epoch
    return epoch
