"""Checkpoints in a store every machine of a study reaches: a shared folder or an S3 bucket.

``--artifacts URL`` (``[study] artifacts``, ``$SWEEPER_ARTIFACTS``) names it: ``file:///path``
(a folder of a shared filesystem, which must exist) or ``s3://bucket/prefix`` (boto3: the
endpoint, region and credentials come from the usual ``AWS_*`` variables or profile, never from
the URL, the command line or the study's store). The stores are Optuna's
(:class:`optuna.artifacts.FileSystemArtifactStore`, :class:`optuna.artifacts.Boto3ArtifactStore`),
so optuna-dashboard can be pointed at the same place; what they lack is written here: a name for
each configuration's latest checkpoint, and writes that a kill never turns into a checkpoint.

After each epoch's local checkpoint (:func:`sweeper.training.checkpoints.save`), its three files
(weights, metadata, manifest) are packed into one tar object under a new name, then a small
*head* object points at it: ``config-<N>.head-<epoch % 2>.json`` with the epoch, the object's
name and its sha256. Two heads, written in turn, are the shared copy of the local ``.bkp``
scheme: a head or an object cut short by a kill does not verify, and the other head still
points at the previous epoch's object (removed only once the newer head is written). Before a
continuation, retry or requeued trial reads its checkpoint, the newest head that verifies is
fetched into the local folder when it is ahead of what is there (:meth:`SharedCheckpoints.pull`),
so the local folder is a cache. Optuna's stores have no listing and no rename, hence the heads.

No Keras here: files, hashes, JSON and the store's client.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tarfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from sweeper import faults
from sweeper.errors import ConfigError
from sweeper.training import checkpoints

log = logging.getLogger(__name__)

HEAD_FORMAT = "sweeper-shared-checkpoint/1"
ARTIFACTS_ATTR = "artifacts"  # study user attr: the URL of its shared checkpoint store
SCHEMES = ("file", "s3")
# the local files one checkpoint is made of, the manifest last
FILES = (checkpoints.WEIGHTS_FILE, checkpoints.METADATA_FILE, checkpoints.MANIFEST_FILE)


class SharedCheckpointError(OSError):
    """The shared store could not be read or written: this machine's fault (its trial goes back
    to the queue), one line naming the store and what failed."""

    def __str__(self) -> str:
        return str(self.strerror or self.args[0])


class ArtifactStore(Protocol):
    """Optuna's artifact store protocol (``optuna.artifacts._protocol``)."""

    def open_reader(self, artifact_id: str) -> BinaryIO: ...

    def write(self, artifact_id: str, content_body: BinaryIO) -> None: ...

    def remove(self, artifact_id: str) -> None: ...


@dataclass(frozen=True)
class Location:
    """A parsed ``--artifacts`` URL: where, never who (no credentials in it)."""

    url: str  # as shown to the user
    scheme: str  # "file" | "s3"
    path: str  # file: the folder; s3: the bucket
    prefix: str = ""  # s3: the key prefix, "" or ending in "/"


def parse_url(url: str, flag: str = "--artifacts") -> Location:
    """The location ``url`` names, or one :class:`ConfigError` line saying what is wrong."""
    text = url.strip()
    parts = urlsplit(text)
    example = "file:///shared/sweeper or s3://bucket/prefix"
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"{flag} {text!r}: not a file:// or s3:// URL; give a shared folder or a bucket, "
            f"e.g. {example}"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(
            f"{flag} {parts.scheme}://{parts.hostname or ''}...: credentials or options do not "
            "go in the URL; set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and "
            "AWS_ENDPOINT_URL in the environment"
        )
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"{flag} {text!r}: a file URL names a folder of this machine's file system, "
                f"file:///path (three slashes), not a host ({parts.netloc})"
            )
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ConfigError(f"{flag} {text!r}: give an absolute path, file:///path")
        return Location(text, "file", os.path.normpath(path))
    bucket = parts.netloc
    if not bucket:
        raise ConfigError(f"{flag} {text!r}: no bucket; give s3://bucket or s3://bucket/prefix")
    prefix = unquote(parts.path).strip("/")
    return Location(text, "s3", bucket, f"{prefix}/" if prefix else "")


@dataclass(frozen=True)
class Head:
    """What a head object says: the checkpoint of ``epoch`` epochs is ``blob``."""

    config: int
    epoch: int
    blob: str
    sha256: str
    trial: int | None = None
    host: str = ""


@dataclass
class SharedCheckpoints:
    """One study's checkpoints in a shared store (``study`` names its folder or key prefix)."""

    location: Location
    study: str
    host: str = ""
    store: ArtifactStore = field(init=False, repr=False)
    prefix: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.store, self.prefix = _open(self.location, self.study)

    def describe(self) -> str:
        return f"{self.location.url.rstrip('/')}/{self.study}"

    # -- names -----------------------------------------------------------------------------

    def _head_id(self, config: int, slot: int) -> str:
        return f"{self.prefix}config-{config}.head-{slot}.json"

    def _blob_id(self, config: int, epoch: int) -> str:
        return f"{self.prefix}config-{config}.e{epoch:05d}-{uuid.uuid4().hex[:12]}.tar"

    # -- the checks before any trial ---------------------------------------------------------

    def probe(self) -> None:
        """Write, read back and remove a small object: the store is reachable and writable with
        the credentials at hand, or :class:`ConfigError` in one line before anything trains."""
        name = f"{self.prefix}.probe-{uuid.uuid4().hex[:12]}"
        body = b"sweeper probe\n"
        try:
            self.store.write(name, io.BytesIO(body))
            with contextlib.closing(self.store.open_reader(name)) as reader:
                back = reader.read()
            self.store.remove(name)
        except Exception as exc:
            raise ConfigError(
                f"artifact store {self.location.url} cannot be written and read back "
                f"({_why(exc)}); check the URL"
                + (
                    ", AWS_ENDPOINT_URL and the credentials"
                    if self.location.scheme == "s3"
                    else " and that every machine mounts it"
                )
            ) from None
        if back != body:
            raise ConfigError(
                f"artifact store {self.location.url} returned other bytes than written"
            )

    # -- one configuration's checkpoint ------------------------------------------------------

    def push(self, folder: Path, config: int, epoch: int, trial: int | None = None) -> None:
        """Copy the local checkpoint of ``epoch`` epochs in ``folder`` to the store: its object
        first, then its head; the object the overwritten head pointed at goes last."""
        outgoing = folder / ".outgoing.tar"
        try:
            with tarfile.open(outgoing, "w") as tar:
                for name in FILES:
                    tar.add(folder / name, arcname=name)
            digest = _sha256(outgoing)
            blob = self._blob_id(config, epoch)
            with outgoing.open("rb") as f:
                self._call("upload the checkpoint", self.store.write, blob, _Watched(f))
            slot = epoch % 2
            old = self._head(config, slot)
            head = {
                "format": HEAD_FORMAT,
                "config": config,
                "trial": trial,
                "epoch": int(epoch),
                "blob": blob,
                "sha256": digest,
                "host": self.host,
                "written": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            body = json.dumps(head, indent=1).encode()
            self._call(
                "write the head", self.store.write, self._head_id(config, slot), io.BytesIO(body)
            )
            if old is not None and old.blob != blob:
                self._forget(old.blob)
        finally:
            outgoing.unlink(missing_ok=True)

    def latest(self, config: int) -> Head | None:
        """The newer of the two heads that read, or None (nothing shared for ``config``)."""
        heads = [h for h in (self._head(config, 0), self._head(config, 1)) if h is not None]
        return max(heads, key=lambda h: h.epoch, default=None)

    def pull(self, folder: Path, config: int, have: int) -> int:
        """Fetch the newest shared checkpoint of ``config`` that verifies into ``folder`` when it
        is ahead of the ``have`` epochs there: the local one becomes the previous (``.bkp``).
        Returns the epochs of the checkpoint fetched, 0 when none was (none shared, none ahead,
        or none that verifies: said in one line)."""
        heads = sorted(
            (h for h in (self._head(config, 0), self._head(config, 1)) if h is not None),
            key=lambda h: -h.epoch,
        )
        for head in heads:
            if head.epoch <= have:
                return 0
            problem = self._fetch(folder, head)
            if problem is None:
                log.info(
                    "configuration %d: checkpoint of epoch %d fetched from %s",
                    config,
                    head.epoch,
                    self.describe(),
                )
                return head.epoch
            log.warning(
                "shared checkpoint of configuration %d, epoch %d does not verify (%s): skipped",
                config,
                head.epoch,
                problem,
            )
        return 0

    def remove(self, config: int) -> None:
        """Forget ``config``'s shared checkpoint: the heads first (nothing points at an object
        being removed), then their objects. What cannot be removed is logged, not raised."""
        heads = [self._head(config, slot) for slot in (0, 1)]
        for slot in (0, 1):
            self._forget(self._head_id(config, slot))
        for head in heads:
            if head is not None:
                self._forget(head.blob)

    # -- helpers -----------------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            raise SharedCheckpointError(
                f"artifact store {self.location.url}: could not {what} ({_why(exc)})"
            ) from exc

    def _head(self, config: int, slot: int) -> Head | None:
        from optuna.artifacts.exceptions import ArtifactNotFound

        name = self._head_id(config, slot)
        try:
            with contextlib.closing(self.store.open_reader(name)) as reader:
                data = json.loads(reader.read())
            if data.get("format") != HEAD_FORMAT or int(data["config"]) != config:
                return None
            return Head(
                config,
                int(data["epoch"]),
                str(data["blob"]),
                str(data["sha256"]),
                data.get("trial"),
                str(data.get("host") or ""),
            )
        except ArtifactNotFound:
            return None
        except (ValueError, KeyError, TypeError):  # cut short by a kill: the other head stands
            return None
        except Exception as exc:
            raise SharedCheckpointError(
                f"artifact store {self.location.url}: could not read {name} ({_why(exc)})"
            ) from exc

    def _fetch(self, folder: Path, head: Head) -> str | None:
        """Download ``head``'s object, check it and install its files in ``folder`` (the
        current checkpoint there kept as the previous one); what is wrong, or None."""
        from optuna.artifacts.exceptions import ArtifactNotFound

        folder.mkdir(parents=True, exist_ok=True)
        incoming = folder / ".incoming.tar"
        unpacked = folder / ".incoming"
        try:
            try:
                with (
                    contextlib.closing(self.store.open_reader(head.blob)) as reader,
                    incoming.open("wb") as f,
                ):
                    for block in iter(lambda: reader.read(1 << 20), b""):
                        f.write(block)
            except ArtifactNotFound:
                return f"{head.blob} is missing"
            except Exception as exc:
                raise SharedCheckpointError(
                    f"artifact store {self.location.url}: could not download {head.blob} "
                    f"({_why(exc)})"
                ) from exc
            if _sha256(incoming) != head.sha256:
                return f"{head.blob} does not match its checksum"
            _clear(unpacked)
            unpacked.mkdir()
            with tarfile.open(incoming) as tar:
                names = tar.getnames()
                if sorted(names) != sorted(FILES):
                    return f"{head.blob} holds {', '.join(names) or 'nothing'}"
                tar.extractall(unpacked, filter="data")
            epoch, problem = checkpoints.verify(
                checkpoints.Checkpoint(unpacked, config=head.config)
            )
            if problem is not None:
                return problem
            if epoch != head.epoch:
                return f"its manifest says {epoch} epochs, its head {head.epoch}"
            checkpoints.install_verified(folder, unpacked)
            return None
        finally:
            incoming.unlink(missing_ok=True)
            _clear(unpacked)

    def _forget(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.store.remove(name)


class _Watched(io.RawIOBase):
    """The object being uploaded, read through: the fault tests' ``during-upload`` crash point
    is reached once half of it has been read."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._half = max(1, os.fstat(f.fileno()).st_size // 2)
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._read < self._half:  # stop at the half once, so the point falls inside
            view = view[: self._half - self._read]
        n = self._f.readinto(view)  # type: ignore[attr-defined]
        before, self._read = self._read, self._read + n
        if before < self._half <= self._read:
            faults.point("during-upload")
        return n


def _open(location: Location, study: str) -> tuple[ArtifactStore, str]:
    """Optuna's store for ``location`` and the key prefix of ``study`` in it."""
    from optuna.artifacts import FileSystemArtifactStore

    if location.scheme == "file":
        base = Path(location.path)
        if not base.is_dir():
            raise ConfigError(
                f"artifact folder {base} does not exist; create it on the shared file system "
                "(every machine of the study must see the same folder) or fix --artifacts"
            )
        folder = base / study
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"artifact folder {base} cannot be written ({exc.strerror or exc}); give "
                "--artifacts a folder you may write"
            ) from None
        return FileSystemArtifactStore(folder), ""
    try:
        import boto3
    except ImportError:
        raise ConfigError(
            f"{location.url}: S3 needs boto3; pip install 'sweeper[s3]', or use a file:// folder"
        ) from None
    from optuna.artifacts import Boto3ArtifactStore

    session = boto3.Session()
    if session.get_credentials() is None:
        raise ConfigError(
            f"{location.url}: no AWS credentials; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and AWS_ENDPOINT_URL for a server other "
            "than Amazon's"
        )
    from botocore.config import Config

    client = session.client(
        "s3", config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3})
    )
    return Boto3ArtifactStore(location.path, client), f"{location.prefix}{study}/"


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _clear(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            child.unlink(missing_ok=True)
        path.rmdir()
