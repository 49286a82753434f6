"""The best model of a study, kept on disk: the trained network of its best complete
configuration, one ``.keras`` file per study, and where the read side finds it.

Where it lives: ``<checkpoint folder of the study>/best-model.keras`` (:data:`MODEL_FILE`, in
``checkpoint_root/file_stem(name)``, beside the trials' ``trial-<config>`` folders), with its
record :data:`RECORD_FILE` (``best-model.json``: trial, value, config, epochs, host, time, the
file's path, size, modification time and SHA-256) and the lock file :data:`LOCK_FILE`.

Keeping (:func:`keep_best`, called by :class:`~sweeper.search.attempt.Attempt` when a trial
completes, packed or alone): the candidate is compared with the record first, without a lock, so
a trial that is not better costs one small read. A better one is saved to a temporary file of this
process in the same folder (``save``, e.g. ``model.save``), then, under an inter-process lock
(``fcntl.flock`` on the lock file, for every worker sharing the folder), compared again, moved
over the kept file (``os.replace``) and recorded (the record replaced the same way). A crash
leaves either the previous file or the new one, never half of one; a failed save leaves the
previous file and removes its temporary. At most one file and one temporary per writer are
on disk (the temporaries of dead local processes are removed under the lock).

Order: the better value wins; of two equal values, the earlier trial (smaller number), as the
read side's ``best`` ranks them. After a replacement the study's user attribute
:data:`BEST_MODEL_ATTR` names the kept file (``{"trial", "value", "path", "host"}``) unless it
already names a better one: workers on other hosts keep their own best in their own folder, and
the attribute names the overall best and its host. (The attribute's compare-and-set is atomic
among the writers of one folder, under the lock; two hosts replacing at the same instant could
leave it naming the second-best, a race of milliseconds.)

Reading (:func:`kept_model`, :func:`kept_model_path`) needs no Keras and no store: the study's
user attributes and the checkpoint root in, the kept file's record and path out (verified against
its record), or a :class:`BestModelError` saying why there is none. :func:`load_kept` loads it
with sweeper's Keras classes registered.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.environment import host_name
from sweeper.errors import BestModelError
from sweeper.search.liveness import pid_alive, process_scope
from sweeper.studyfile.names import file_stem

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

# study user attribute: {"trial": n, "value": v, "path": <absolute path>, "host": <hostname>}
BEST_MODEL_ATTR = "best_model"
MODEL_FILE = "best-model.keras"
RECORD_FILE = "best-model.json"
LOCK_FILE = "best-model.lock"
# + <host>-<scope>-<pid>.keras (Keras saves only to a .keras name); <scope>: a digest of the
# boot and PID namespace (liveness.process_scope), so only a process that sees the pid judges it
TEMP_PREFIX = ".best-model.tmp-"

_UNSAFE = re.compile(r"[^A-Za-z0-9.]+")


@dataclass(frozen=True)
class KeptModel:
    """The record of a kept model (``best-model.json``)."""

    trial: int
    value: float
    config: int
    epochs: int
    host: str
    time: str  # when it was kept, ISO 8601 UTC
    path: str  # absolute
    size: int  # the file's bytes, modification time and SHA-256, to verify it is this file
    mtime_ns: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeptModel:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def attribute(self) -> dict[str, Any]:
        """The study user attribute naming this file (:data:`BEST_MODEL_ATTR`)."""
        return {"trial": self.trial, "value": self.value, "path": self.path, "host": self.host}

    def describes(self, path: Path) -> bool:
        """Whether ``path`` is the file this record was written for (its size and time)."""
        try:
            stat = path.stat()
        except OSError:
            return False
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


def beats(value: float, trial: int, kept: KeptModel | Mapping[str, Any] | None) -> bool:
    """Whether trial ``trial``'s ``value`` replaces ``kept`` (a record, an attribute, or None):
    a greater value, or an equal one of an earlier trial. A value that is not finite never does."""
    if not math.isfinite(value):
        return False
    if kept is None:
        return True
    if isinstance(kept, KeptModel):
        kept_value, kept_trial = kept.value, kept.trial
    else:
        kept_value, kept_trial = float(kept["value"]), int(kept["trial"])
    return value > kept_value or (value == kept_value and trial < kept_trial)


def hostname() -> str:
    return host_name()


def temporary(folder: Path, pid: int | None = None) -> Path:
    """The temporary file that process ``pid`` of this host (default: this process) saves a
    model to in ``folder`` before it replaces the kept one."""
    return folder / f"{_temporary_prefix()}{os.getpid() if pid is None else pid}.keras"


def _temporary_prefix() -> str:
    scope = hashlib.sha256(process_scope().encode()).hexdigest()[:8]
    return f"{TEMP_PREFIX}{_UNSAFE.sub('_', hostname())}-{scope}-"


def study_folder(checkpoint_root: str | Path, name: str) -> Path:
    """The checkpoint folder of study ``name`` under ``checkpoint_root`` (where its model is
    kept), as the workers name it."""
    return Path(checkpoint_root) / file_stem(name)


def read_record(folder: Path) -> KeptModel | None:
    """The record of the model kept in ``folder``; None when there is none (or it cannot be
    read: the next better trial then replaces the file)."""
    try:
        text = (folder / RECORD_FILE).read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("record of the best model %s cannot be read: %s", folder / RECORD_FILE, exc)
        return None
    try:
        return KeptModel.from_dict(json.loads(text))
    except (ValueError, TypeError) as exc:
        log.warning("record of the best model %s is not valid: %s", folder / RECORD_FILE, exc)
        return None


# -- keeping ----------------------------------------------------------------------------------
def keep_best(
    folder: Path,
    save: Callable[[Path], None],
    *,
    trial: int,
    value: float,
    config: int,
    epochs: int,
    study: optuna.Study | None = None,
) -> KeptModel | None:
    """Keep the model of trial ``trial`` (``value``, configuration ``config``, ``epochs`` trained)
    as the best of the study whose checkpoint folder is ``folder``, if it beats the one kept.

    ``save(path)`` writes the model to ``path`` (a ``.keras`` name); it is called only when the
    trial beats the record. Returns the new record, or None when the trial was not better (before
    or after its save). With ``study``, the study's :data:`BEST_MODEL_ATTR` is set to the new
    file unless it names a better one. Raises what ``save`` or the file system raises, the kept
    file and record as they were and the temporary removed.
    """
    if not beats(value, trial, read_record(folder)):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    host = hostname()
    temp = temporary(folder)
    try:
        save(temp)
        sha256 = _sync_and_hash(temp)
        with _locked(folder):
            _remove_stale_temporaries(folder)
            if not beats(value, trial, read_record(folder)):
                return None
            target = (folder / MODEL_FILE).absolute()
            stat = temp.stat()
            os.replace(temp, target)  # keeps its size and modification time
            record = KeptModel(
                trial=int(trial),
                value=float(value),
                config=int(config),
                epochs=int(epochs),
                host=host,
                time=datetime.now(UTC).isoformat(timespec="seconds"),
                path=str(target),
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                sha256=sha256,
            )
            _write_atomic(folder / RECORD_FILE, json.dumps(record.to_dict(), indent=1) + "\n")
            _sync_folder(folder)
            log.info("trial %d (%.4f) kept as the best model in %s", trial, value, target)
            if study is not None:
                record_in_store(study, record)
            return record
    finally:
        temp.unlink(missing_ok=True)


def record_in_store(study: optuna.Study, record: KeptModel) -> bool:
    """Set ``study``'s :data:`BEST_MODEL_ATTR` to ``record`` unless it names a model as good
    already; whether it was set."""
    current = study.user_attrs.get(BEST_MODEL_ATTR)
    if isinstance(current, Mapping) and not beats(record.value, record.trial, current):
        return False
    study.set_user_attr(BEST_MODEL_ATTR, record.attribute())
    return True


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """The inter-process lock of ``folder``'s kept model (held until the block ends)."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _sync_and_hash(path: Path) -> str:
    """``path``'s SHA-256, its bytes on disk first (it is about to replace the kept file)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
        os.fsync(f.fileno())
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with temp.open("w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporaries of processes of this host (its boot and PID namespace) that died
    while saving."""
    prefix = _temporary_prefix()
    for path in folder.glob(f"{prefix}*.keras"):
        pid = path.name[len(prefix) : -len(".keras")]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            path.unlink(missing_ok=True)


# -- reading ----------------------------------------------------------------------------------
def kept_model(
    user_attrs: Mapping[str, Any],
    checkpoint_root: str | Path | None,
    name: str,
    *,
    completed: int,
) -> KeptModel:
    """The record of study ``name``'s kept model, its ``path`` where the file is here: read
    from the study's user attributes (as stored) and the file's record beside it, no Keras and
    no store. ``checkpoint_root``, the root the study was tuned with (None: only the recorded
    path is looked at), is where the file is looked for should the recorded path not hold it (a
    checkpoint folder moved, or mounted elsewhere). ``completed``: the study's complete trials.
    The file is verified against its record (the trial the attribute names, the file's size and
    time); copy it as it is (``sha256`` is its checksum).

    Raises :class:`BestModelError` when the study has no complete configuration yet, was tuned
    before models were kept, or its file was kept on another host or is missing here.
    """
    attr = user_attrs.get(BEST_MODEL_ATTR)
    if not isinstance(attr, Mapping):
        if completed <= 0:
            raise BestModelError(
                f"study {name!r} has no complete configuration yet, so no model is kept; tune it "
                "on until one completes"
            )
        raise BestModelError(
            f"study {name!r} has no kept model: it was tuned before models were kept (or its "
            "models could not be saved); retrain it with `sweeper evaluate`, or tune on (a "
            "larger --n-trials) so that a new best is kept"
        )
    trial, host = int(attr["trial"]), str(attr.get("host", ""))
    recorded = Path(str(attr["path"]))
    places = [recorded]
    if checkpoint_root is not None:
        places.append((study_folder(checkpoint_root, name) / MODEL_FILE).absolute())
    for path in dict.fromkeys(places):
        record = read_record(path.parent)
        if record is not None and record.trial == trial and record.describes(path):
            return replace(record, path=str(path))
    if host and host != hostname():
        raise BestModelError(
            f"the best model of study {name!r} (trial {trial}) was kept on host {host!r} at "
            f"{recorded}; copy it from there, or read it on {host}"
        )
    raise BestModelError(
        f"the best model of study {name!r} (trial {trial}) is not at {recorded} (removed or "
        "replaced since); give the checkpoint folder it was tuned in (--checkpoint-dir), or "
        "retrain it with `sweeper evaluate`"
    )


def kept_model_path(
    user_attrs: Mapping[str, Any],
    checkpoint_root: str | Path | None,
    name: str,
    *,
    completed: int,
) -> Path:
    """The path of study ``name``'s kept model file here (see :func:`kept_model`)."""
    return Path(kept_model(user_attrs, checkpoint_root, name, completed=completed).path)


def load_kept(path: str | Path) -> Any:
    """The kept model at ``path`` as a compiled ``keras.Model`` (imports Keras; sweeper's
    schedules and schedule-free optimizers registered first, so that they deserialize)."""
    import importlib

    from sweeper.training.backend import load_keras

    load_keras()
    import keras

    for module in ("keras_schedules", "schedule_free"):  # imported for their registrations
        importlib.import_module(f"sweeper.training.{module}")
    return keras.models.load_model(str(path))
