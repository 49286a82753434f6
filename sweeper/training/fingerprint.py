"""A model's fingerprint: what identifies the network a model function builds for a study.

Each layer's class, its configuration (``get_config()`` without names, nested values flattened
to dotted keys, plus its dtype policy) and its weights' shapes, in ``model.layers`` order (a nested
model's layers in its place), plus the function's source (its syntax tree, so comments and layout
do not count) when Python can read it. :func:`differences` names what changed between two of them in
words ("layer 3 Dense units 64 -> 128"). The fingerprint is plain JSON data, stored with the study
(:mod:`sweeper.store.model_identity`); this module imports Keras only to take one.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import math
import textwrap
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

VERSION = 1
# layer configurations stored whole up to this many characters; a larger network keeps each
# layer's digest, so a change of it is named by its layer without the values
MAX_STORED_CONFIG = 60_000
# no part of what a layer computes: names (``dense_3``, counted up by Keras in each process, also
# those of a wrapped layer; the dtype policy's is kept as ``dtype_policy``) and where Keras finds
# a class
_NOISE = frozenset({"name", "module", "registered_name"})
_LAMBDA = "__lambda__"  # Keras's class name of a lambda serialized in a layer's configuration
_MAX_NAMED = 3  # changes named in full; the others are counted


@dataclass(frozen=True)
class LayerPrint:
    """One layer: its class, its flattened configuration (None when only its digest is kept),
    the configuration's digest and its weights' shapes."""

    kind: str
    config: Mapping[str, Any] | None
    digest: str
    weights: tuple[tuple[int, ...], ...]

    def to_attr(self, *, whole: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"class": self.kind, "digest": self.digest}
        out["weights"] = [list(s) for s in self.weights]
        if whole and self.config is not None:
            out["config"] = dict(self.config)
        return out


@dataclass(frozen=True)
class ModelFingerprint:
    """The network's digest, the function's source digest (None without one) and its layers."""

    network: str
    source: str | None
    layers: tuple[LayerPrint, ...]

    def to_attr(self) -> dict[str, Any]:
        """As JSON data; the layers' configurations only while they are small."""
        whole = len(json.dumps([dict(x.config or {}) for x in self.layers])) <= MAX_STORED_CONFIG
        return {
            "version": VERSION,
            "network": self.network,
            "source": self.source,
            "layers": [layer.to_attr(whole=whole) for layer in self.layers],
        }

    @classmethod
    def from_attr(cls, value: Any) -> ModelFingerprint | None:
        """The fingerprint stored as ``value``; None for anything else (none stored yet)."""
        if not isinstance(value, dict) or value.get("version") != VERSION:
            return None
        try:
            layers = tuple(
                LayerPrint(
                    str(x["class"]),
                    x.get("config"),
                    str(x["digest"]),
                    tuple(tuple(int(d) for d in s) for s in x["weights"]),
                )
                for x in value["layers"]
            )
            return cls(str(value["network"]), value.get("source"), layers)
        except (KeyError, TypeError, ValueError):
            return None


def fingerprint(model: Any, fn: Callable[..., Any] | None = None) -> ModelFingerprint:
    """The fingerprint of a built ``keras.Model`` and of the function ``fn`` that built it."""
    layers = tuple(_layer_print(layer) for layer in _leaf_layers(model))
    network = _digest([[x.kind, x.digest, [list(s) for s in x.weights]] for x in layers])
    return ModelFingerprint(network, _source_digest(fn), layers)


def differences(before: ModelFingerprint, now: ModelFingerprint) -> str | None:
    """What changed from ``before`` to ``now``, in words; None when it is the same model.

    A configuration key that only one side has (a Keras version adding a setting) is no change.
    """
    found = [] if before.network == now.network else _network_changes(before, now)
    if before.source is not None and now.source is not None and before.source != now.source:
        found.append("its function's source changed")
    if not found:
        return None
    more = len(found) - _MAX_NAMED
    return "; ".join(found[:_MAX_NAMED]) + (f"; and {more} more" if more > 0 else "")


def _network_changes(before: ModelFingerprint, now: ModelFingerprint) -> list[str]:
    found = []
    if len(before.layers) != len(now.layers):
        found.append(f"{len(now.layers)} layers instead of {len(before.layers)}")
    for i, (a, b) in enumerate(zip(before.layers, now.layers, strict=False), start=1):
        change = _layer_change(a, b)
        if change:
            found.append(f"layer {i} {change}")
    return found


def _layer_change(a: LayerPrint, b: LayerPrint) -> str | None:
    if a.kind != b.kind:
        return f"{a.kind} -> {b.kind}"
    parts = []
    if a.config is not None and b.config is not None:
        keys = sorted(k for k in a.config.keys() & b.config.keys() if a.config[k] != b.config[k])
        parts += [f"{k} {_shown(a.config[k])} -> {_shown(b.config[k])}" for k in keys[:_MAX_NAMED]]
        if len(keys) > _MAX_NAMED:
            parts.append(f"{len(keys) - _MAX_NAMED} more settings")
    elif a.digest != b.digest:
        parts.append("its configuration")
    if a.weights != b.weights:
        parts.append(f"weight shapes {_shapes(a.weights)} -> {_shapes(b.weights)}")
    return f"{b.kind} {', '.join(parts)}" if parts else None


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
    return " ".join(str(s) for s in shapes) or "none"


def _leaf_layers(model: Any) -> Iterator[Any]:
    """The layers of ``model`` in order, those of a nested model in its place."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _layer_print(layer: Any) -> LayerPrint:
    try:
        raw = layer.get_config()
    except Exception:  # a custom layer without a configuration: its weights and source count
        raw = {}
    config = dict(_flat(raw if isinstance(raw, Mapping) else {}))
    policy = getattr(layer, "dtype_policy", None)
    config["dtype_policy"] = None if policy is None else str(getattr(policy, "name", policy))
    weights = tuple(tuple(int(d) for d in w.shape) for w in layer.weights)
    return LayerPrint(type(layer).__name__, config, _digest(config), weights)


def _flat(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``config`` as (dotted key, JSON value) pairs, ``_NOISE`` left out."""
    for key in sorted(map(str, config)):
        if key in _NOISE:
            continue
        value = config[key]
        if isinstance(value, Mapping) and value.get("class_name") == _LAMBDA:
            # its marshalled code holds file names and line numbers: the source counts instead
            yield f"{prefix}{key}", _LAMBDA
        elif isinstance(value, Mapping) and value:
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", _plain(value)


def _plain(value: Any) -> Any:
    """``value`` as JSON data; an object JSON has no form for is named by its type."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN: stored and read back, it would differ from itself
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a NumPy scalar
        return _plain(value.item())
    return type(value).__qualname__


def _source_digest(fn: Callable[..., Any] | None) -> str | None:
    """The digest of ``fn``'s syntax tree (its text when it does not parse alone); None when
    Python cannot read its source (a built-in, a function made by ``exec``)."""
    if fn is None:
        return None
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    with suppress(SyntaxError):  # else the text: a lambda cut out of a longer line
        text = ast.dump(ast.parse(text))
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()
