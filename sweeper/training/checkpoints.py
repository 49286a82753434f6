"""A trial's checkpoint on disk: written atomically, verified by a manifest before it is read
(and, with a shared store, copied there after each save: :mod:`sweeper.training.shared_checkpoints`).

The files are those of Keras's ``BackupAndRestore`` with ``double_checkpoint=True``, so that a
trial checkpointed alone resumes in a pack and the other way round: ``latest.weights.h5`` (the
network's weights and its optimizer's state), ``training_metadata.json`` (the epochs done) and
a ``.bkp`` copy of each, the previous epoch's. Beside them, ``checkpoint.json`` is the manifest
(and ``checkpoint.json.bkp`` the previous one's): its format, the trial and configuration it was
written for, the epochs done and the sha256 of each file.

:func:`save` writes the new weights under a temporary name and fsyncs them, makes the current
checkpoint the previous one (copies, each under a temporary name, fsynced, renamed), then renames
the new weights into place and writes the metadata and the manifest the same way, manifest last.
Whenever the process is killed, one of the two checkpoints verifies: the new one, or the one of
the epoch before.

:func:`recover` runs before a checkpoint is read: the current one verifies, or it is set aside
(moved, never deleted, to ``<checkpoint folder>/set-aside/<folder>-<time>/``) with one line to
the console logger, and the previous one takes its place if it verifies; otherwise everything
there is set aside and training starts from epoch 0. No Keras here: files, hashes and JSON.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sweeper.training.backend import CONSOLE

log = logging.getLogger(__name__)

FORMAT = "sweeper-checkpoint/1"  # manifest of Keras BackupAndRestore files (double_checkpoint)
WEIGHTS_FILE = "latest.weights.h5"
METADATA_FILE = "training_metadata.json"
MANIFEST_FILE = "checkpoint.json"
PREVIOUS = ".bkp"
# Keras saves weights only under a name ending in .weights.h5
INCOMING_WEIGHTS = ".incoming.weights.h5"
SET_ASIDE = "set-aside"


class Shared(Protocol):
    """A shared copy of the checkpoints (:class:`sweeper.training.shared_checkpoints.SharedCheckpoints`)."""

    def push(self, folder: Path, config: int, epoch: int, trial: int | None = None) -> None: ...

    def pull(self, folder: Path, config: int, have: int) -> int: ...

    def remove(self, config: int) -> None: ...


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder and what its manifest says it belongs to (None: not said); with
    ``shared``, each checkpoint saved is copied to the study's shared store, and one there that
    is ahead of the folder's is fetched before the folder is read
    (:mod:`sweeper.training.shared_checkpoints`)."""

    folder: Path
    trial: int | None = None
    config: int | None = None
    shared: Shared | None = field(default=None, compare=False)

    @classmethod
    def at(cls, where: str | Path | Checkpoint) -> Checkpoint:
        return where if isinstance(where, Checkpoint) else cls(Path(where))


@dataclass(frozen=True)
class Found:
    """What :func:`recover` found: the epochs done of the checkpoint to resume from (0: none,
    training starts from scratch); where what did not verify went, and why."""

    epoch: int
    set_aside: Path | None = None
    problem: str | None = None


class NoSpaceForCheckpoint(OSError):
    """The checkpoint folder's disk is full: an error of this machine (the trial is queued
    again, not counted), one line naming the folder and the fix."""

    def __init__(self, folder: Path, free: int | None, needed: int | None) -> None:
        sizes = (
            f" ({_size(free)} free, about {_size(needed)} needed)"
            if free is not None and needed is not None
            else ""
        )
        super().__init__(
            errno.ENOSPC,
            f"no space left on the disk of {folder} for the checkpoint{sizes}: free space there "
            "or give --checkpoint-dir a folder on another disk, then rerun the same command",
        )

    def __str__(self) -> str:
        return str(self.strerror)


# Folders where writing a checkpoint failed for space: the HDF5 file Keras was writing may hold
# buffers that its finalizers try to flush again at exit (and crash on); the command line ends
# the process without running them when this is not empty (sweeper.cli.console).
BROKEN_WRITES: list[Path] = []
HEADROOM = 1.25  # a checkpoint needs its weights file twice (the new one, the .bkp copy), + 25 %
MIN_FREE = 64 * 1024  # bytes, whatever the estimate: the metadata, the manifest, HDF5's own


def save(
    where: str | Path | Checkpoint,
    write_weights: Callable[[Path], None],
    epoch: int,
    state_bytes: int | None = None,
) -> None:
    """Checkpoint ``epoch`` epochs done: ``write_weights(path)`` writes the weights file
    (``model.save_weights``); the previous checkpoint is kept as the ``.bkp`` files.

    ``state_bytes`` (the weights' and the optimizer state's size) or the current weights file
    tells how much room it needs: a disk without it raises :class:`NoSpaceForCheckpoint` before
    anything is written; one that fills while writing raises it too, the partial file removed."""
    ck = Checkpoint.at(where)
    folder = ck.folder
    folder.mkdir(parents=True, exist_ok=True)
    _check_space(folder, state_bytes)
    incoming = folder / INCOMING_WEIGHTS
    try:
        write_weights(incoming)
        _fsync(incoming)
        _install(ck, incoming, epoch)
        if ck.shared is not None and ck.config is not None:
            ck.shared.push(folder, ck.config, epoch, ck.trial)
    except OSError as exc:
        if isinstance(exc, NoSpaceForCheckpoint) or not _no_space(exc):
            raise
        if not BROKEN_WRITES:
            _quiet_broken_hdf5()
        BROKEN_WRITES.append(folder)
        for partial in (incoming, *folder.glob(".*.tmp")):  # what the full disk cut short
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        raise NoSpaceForCheckpoint(folder, None, None) from None


def state_bytes(model: Any) -> int:
    """The bytes of a Keras model's weights and its optimizer's state: what a checkpoint holds
    (read off the variables' shapes and dtypes; Keras is not imported here)."""
    import numpy as np

    variables = [*model.weights, *getattr(getattr(model, "optimizer", None), "variables", [])]
    return sum(int(np.prod(v.shape)) * np.dtype(str(v.dtype)).itemsize for v in variables)


def _install(ck: Checkpoint, incoming: Path, epoch: int) -> None:
    """The new weights written: they become the checkpoint, the current one the previous."""
    folder = ck.folder
    weights_sum = _sha256(incoming)
    current = [folder / name for name in (WEIGHTS_FILE, METADATA_FILE, MANIFEST_FILE)]
    if all(p.exists() for p in current):  # the current checkpoint becomes the previous one
        for path in current:  # the manifest last: the .bkp set verifies only once all are there
            _copy_atomic(path, path.with_name(path.name + PREVIOUS))
    os.replace(incoming, folder / WEIGHTS_FILE)
    metadata = json.dumps({"epoch": int(epoch), "batch": 0}).encode()
    _write_atomic(folder / METADATA_FILE, metadata)
    manifest = {
        "format": FORMAT,
        "trial": ck.trial,
        "config": ck.config,
        "epoch": int(epoch),
        "sha256": {WEIGHTS_FILE: weights_sum, METADATA_FILE: hashlib.sha256(metadata).hexdigest()},
    }
    _write_atomic(folder / MANIFEST_FILE, json.dumps(manifest, indent=1).encode())
    _fsync_dir(folder)


def verify(where: str | Path | Checkpoint, suffix: str = "") -> tuple[int, str | None]:
    """(epochs done, None) when the checkpoint (``suffix=".bkp"``: the previous one) verifies
    against its manifest; (0, why not) otherwise."""
    ck = Checkpoint.at(where)
    folder = ck.folder
    manifest_path = folder / (MANIFEST_FILE + suffix)
    if not manifest_path.exists():
        weights = folder / (WEIGHTS_FILE + suffix)
        return 0, f"{weights.name} has no manifest" if weights.exists() else f"no {weights.name}"
    try:
        manifest = json.loads(manifest_path.read_text())
        sums: dict[str, Any] = manifest["sha256"]
        epoch = int(manifest["epoch"])
        if manifest.get("format") != FORMAT:
            return 0, f"{manifest_path.name} is of format {manifest.get('format')!r}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return 0, f"{manifest_path.name} cannot be read ({type(exc).__name__})"
    written_for = manifest.get("config")
    if ck.config is not None and written_for is not None and written_for != ck.config:
        return 0, f"written for configuration {written_for}"
    for name in (WEIGHTS_FILE, METADATA_FILE):
        path = folder / (name + suffix)
        if not path.exists():
            return 0, f"{path.name} is missing"
        if _sha256(path) != sums.get(name):
            return 0, f"{path.name} does not match its checksum"
    if epoch < 1:
        return 0, f"{manifest_path.name} says {epoch} epochs"
    return epoch, None


def recover(where: str | Path | Checkpoint) -> Found:
    """Make the checkpoint in the folder one that verifies, before anything reads it.

    The current checkpoint verifies: nothing to do. Otherwise it is set aside, with the previous
    one when that does not verify either, and the previous one, verified, takes its place. One
    line to the console logger names what was set aside and what training does next.
    """
    ck = Checkpoint.at(where)
    folder = ck.folder
    epoch, problem = verify(ck) if folder.is_dir() else (0, "no folder")
    if ck.shared is not None and ck.config is not None:
        have = epoch if problem is None else verify(ck, PREVIOUS)[0] if folder.is_dir() else 0
        if ck.shared.pull(folder, ck.config, have):  # it installed one ahead: check it
            epoch, problem = verify(ck)
    if not folder.is_dir():
        return Found(0)
    if problem is None:
        return Found(epoch)
    present = [p for p in folder.iterdir() if p.is_file()]
    if not any(p.name.startswith((WEIGHTS_FILE, METADATA_FILE, MANIFEST_FILE)) for p in present):
        return Found(0)  # no checkpoint written yet (a leftover temporary file at most)
    previous, _ = verify(ck, PREVIOUS)
    kept = {name + PREVIOUS for name in (WEIGHTS_FILE, METADATA_FILE, MANIFEST_FILE)}
    moved = [p for p in present if not (previous and p.name in kept)]
    dest = _set_aside(folder, moved)
    if previous:
        for name in (WEIGHTS_FILE, METADATA_FILE, MANIFEST_FILE):  # the manifest last
            _copy_atomic(folder / (name + PREVIOUS), folder / name)
        _fsync_dir(folder)
    who = f"configuration {ck.config}" if ck.config is not None else "training"
    then = (
        f"{who} continues from the previous checkpoint, after epoch {previous}"
        if previous
        else f"{who} restarts from epoch 0"
    )
    CONSOLE.warning(
        "checkpoint %s does not verify (%s): set aside in %s; %s", folder, problem, dest, then
    )
    return Found(previous, dest, problem)


def install_verified(folder: Path, source: Path) -> None:
    """Make the checkpoint files in ``source`` (verified) the checkpoint of ``folder``; the
    current one there becomes the previous one, as :func:`save` does."""
    names = (WEIGHTS_FILE, METADATA_FILE, MANIFEST_FILE)  # the manifest last, each time
    current = [folder / name for name in names]
    if all(p.exists() for p in current):
        for path in current:
            _copy_atomic(path, path.with_name(path.name + PREVIOUS))
    for name in names:
        _copy_atomic(source / name, folder / name)
    _fsync_dir(folder)


def remove(where: str | Path | Checkpoint) -> None:
    """Delete the checkpoint folder (its trial's outcome is stored: nothing resumes from it),
    and its shared copy."""
    ck = Checkpoint.at(where)
    folder = ck.folder
    if ck.shared is not None and ck.config is not None:
        ck.shared.remove(ck.config)
    # the manifest goes first: a removal cut short leaves files that do not verify, never a
    # checkpoint that resumes a finished trial
    try:
        for name in (MANIFEST_FILE, MANIFEST_FILE + PREVIOUS):
            (folder / name).unlink(missing_ok=True)
    except OSError:  # what is left is set aside when something resumes from it
        log.debug("could not remove the manifests in %s", folder, exc_info=True)
    shutil.rmtree(folder, ignore_errors=True)


def _set_aside(folder: Path, files: list[Path]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    base = folder.parent / SET_ASIDE / f"{folder.name}-{stamp}"
    dest, n = base, 1
    while dest.exists():
        n += 1
        dest = base.with_name(f"{base.name}-{n}")
    dest.mkdir(parents=True)
    for path in files:
        os.replace(path, dest / path.name)
    _fsync_dir(folder)
    return dest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = _temporary(path)
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = _temporary(dst)
    shutil.copyfile(src, tmp)
    _fsync(tmp)
    os.replace(tmp, dst)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        _fsync(folder)
    except OSError:  # a file system that cannot fsync a directory: the renames stand
        log.debug("could not fsync %s", folder, exc_info=True)


def _quiet_broken_hdf5() -> None:
    """After a write the full disk cut short, h5py's objects of that file report the failure
    again as they are freed ("Exception ignored in ... __dealloc__", one traceback each): the
    failure is reported once, by :class:`NoSpaceForCheckpoint`, so those are logged, not shown."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if _no_space(unraisable.exc_value) and "h5py" in repr(unraisable.object):
            log.debug("after a full disk: %s", unraisable.exc_value)
            return
        previous(unraisable)

    sys.unraisablehook = hook


def _no_space(exc: BaseException) -> bool:
    """A write that failed because the disk (or the quota) is full; HDF5 reports the errno
    only in its message."""
    text = str(exc)
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or any(
        s in text for s in ("errno = 28", "errno = 122", "No space left on device")
    )


def _check_space(folder: Path, state_bytes: int | None) -> None:
    """Raise :class:`NoSpaceForCheckpoint` when ``folder``'s disk cannot hold a new checkpoint:
    twice the weights file (the new one, and the current one copied to ``.bkp``) with headroom."""
    current = folder / WEIGHTS_FILE
    size = current.stat().st_size if current.exists() else (state_bytes or 0)
    needed = int(2 * size * HEADROOM) + MIN_FREE
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # nothing to measure with: the write itself will tell
    if free < needed:
        raise NoSpaceForCheckpoint(folder, free, needed)


def _size(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
