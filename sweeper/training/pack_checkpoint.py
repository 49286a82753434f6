"""Checkpoints of packed trials: one copy's training state, in the files Keras's
``BackupAndRestore`` writes for a model trained alone.

The network's weights and its optimizer's state go in one ``.weights.h5`` file, the epochs done
in a JSON file, each with a ``.bkp`` of the previous epoch's, so a trial checkpointed in a pack
resumes alone (``run_trial`` with the same ``backup_dir``) and the other way round. They are
written and read through a *twin* of the copy's network built alone: a network called inside the
pack (once per rebuild of the pack) is saved by Keras with another layout than the same network
alone. The files' names and layout are Keras's; the reading and writing here is hand-written
because ``BackupAndRestore`` is a ``fit`` callback of one model, while a pack trains many.
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


def save_copy(copy: PackedCopy, twin: Any, folder: str | Path) -> None:
    """Write ``copy``'s training state (weights, optimizer state, epochs done) to ``folder``,
    through ``twin``, the same network built alone."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights, metadata = folder / WEIGHTS_FILE, folder / METADATA_FILE
    for path in (weights, metadata):  # the previous epoch's state, should this write be cut
        if path.exists():
            shutil.copyfile(path, path.with_name(path.name + PREVIOUS))
    twin.set_weights(copy.model.get_weights())
    twin.optimizer = copy.optimizer  # saved with the network, as a compiled model's is
    twin.save_weights(str(weights), overwrite=True)
    metadata.write_text(json.dumps({"epoch": copy.epoch, "batch": 0}))


def restore_copy(copy: PackedCopy, twin: Any, folder: str | Path) -> int:
    """Load a checkpoint (of a copy, or of the trial trained alone) into ``copy``, which has not
    trained yet, through ``twin``; the epochs it had done (0 when ``folder`` holds none)."""
    folder = Path(folder)
    weights, metadata = folder / WEIGHTS_FILE, folder / METADATA_FILE
    if not weights.exists():
        return 0
    if not copy.optimizer.built:
        copy.optimizer.build(copy.model.trainable_variables)
    twin.optimizer = copy.optimizer  # its state is loaded into the copy's optimizer
    try:
        twin.load_weights(str(weights))
    except OSError:  # cut while written: the previous epoch's state, as BackupAndRestore does
        previous = weights.with_name(weights.name + PREVIOUS)
        if not previous.exists():
            raise
        twin.load_weights(str(previous))
        metadata = metadata.with_name(metadata.name + PREVIOUS)
    copy.model.set_weights(twin.get_weights())
    epoch = int(json.loads(metadata.read_text())["epoch"]) if metadata.exists() else 0
    copy.start = epoch
    return epoch
