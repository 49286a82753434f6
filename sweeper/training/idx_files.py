"""IDX files, the format of MNIST's and Fashion-MNIST's distribution files, gzip-compressed or
raw (:func:`read_idx`), and the one-line :class:`~sweeper.errors.DataError` every data module
raises (:func:`data_error`)."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.errors import DataError

_GZIP_MAGIC = b"\x1f\x8b"


_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def data_error(message: str) -> DataError:
    """A DataError whose message is guaranteed to be a single line."""
    return DataError(" ".join(message.split()))


def describe_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _parse_idx_header(data: bytes, where: Path) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    """Return (dtype, shape, header length) of IDX bytes; DataError if the magic is wrong."""
    fix = "expected an IDX file (magic bytes 00 00 <type> <ndims>), gzip-compressed or raw"
    if len(data) < 4:
        raise data_error(f"IDX file {where}: only {len(data)} bytes; {fix}")
    magic = data[:4]
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES or magic[3] == 0:
        raise data_error(f"IDX file {where}: bad magic number {magic.hex(' ')}; {fix}")
    ndim = magic[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise data_error(
            f"IDX file {where}: truncated header ({len(data)} bytes, {ndim} dimensions need "
            f"{header}); {fix}"
        )
    shape = tuple(int(d) for d in struct.unpack(f">{ndim}I", data[4:header]))
    return _IDX_TYPES[magic[2]], shape, header


def peek_idx(path: Path) -> tuple[np.dtype[Any], tuple[int, ...]] | None:
    """Dtype and shape from the header of an IDX file, or None if it is not one."""
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
        opener = gzip.open if compressed else open
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) == 4 and head[0] == 0 and head[1] == 0 and 0 < head[3] <= 16:
                head += f.read(4 * head[3])
        dtype, shape, _ = _parse_idx_header(head, path)
    except (OSError, EOFError, zlib.error, DataError):
        return None
    return dtype, shape


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST distribution format), gzip-compressed or raw.

    Compression is detected from the file's first bytes, not its name. The magic number, the
    dimensions and the data size are checked; a bad file raises :class:`DataError`. The array
    is returned in native byte order with the file's dtype (``uint8`` for MNIST).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise data_error(f"IDX file {p}: no such file; give the path of an IDX file (gzip or raw)")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise data_error(
            f"IDX file {p}: cannot read it ({describe_error(exc)}); check its permissions"
        ) from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise data_error(
                f"IDX file {p}: corrupt gzip data ({describe_error(exc)}); download the file again"
            ) from exc
    else:
        data = raw
    dtype, shape, header = _parse_idx_header(data, p)
    count = math.prod(shape)
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise data_error(
            f"IDX file {p}: {problem}: {len(data):,} bytes but dimensions {shape} of "
            f"{dtype.name} need {expected:,}; download the file again"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))
