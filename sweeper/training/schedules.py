"""Which learning-rate schedule families there are, and one built or rebuilt by its name.

:data:`FAMILIES` holds every :class:`~sweeper.training.schedule_base.Schedule` subclass of the
package :mod:`sweeper.training.families` (one module each, found there, in the order of their
``order``): a family is added by adding its module. :func:`from_dimensions` builds a family's
schedule from a study's dimensions (intervals in epochs, converted to steps with the real
steps-per-epoch of the data); :func:`from_dict` rebuilds one from the JSON-friendly dict stored
with every trial (``to_dict``). Nothing here imports Keras: read-only commands draw the curves of
stored trials.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from sweeper.errors import ConfigError
from sweeper.training import families
from sweeper.training.schedule_base import Schedule


def _discovered() -> dict[str, type[Schedule]]:
    """The family class of each module of :mod:`sweeper.training.families`, by ``order``."""
    found: list[type[Schedule]] = []
    for module_info in pkgutil.iter_modules(families.__path__):
        module = importlib.import_module(f"{families.__name__}.{module_info.name}")
        classes = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, Schedule)
            and obj.__module__ == module.__name__
        ]
        if len(classes) != 1:
            raise TypeError(
                f"{module.__name__} must define one schedule family (a Schedule subclass), "
                f"it defines {len(classes)}"
            )
        found.append(classes[0])
    found.sort(key=lambda cls: cls.order)
    for key in ("family", "order"):
        values = [getattr(cls, key) for cls in found]
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise TypeError(f"two schedule families declare the same {key}: {', '.join(twice)}")
    return {cls.family: cls for cls in found}


FAMILIES: dict[str, type[Schedule]] = _discovered()


def family_names() -> tuple[str, ...]:
    return tuple(FAMILIES)


def _family(name: str) -> type[Schedule]:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown schedule family {name!r}; choose one of: {', '.join(FAMILIES)}"
        ) from None


def from_dict(data: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from ``Schedule.to_dict()`` output (or a hand-written dict).

    A parameter under its earlier name (the family's ``renamed``, e.g. step's ``drop`` and
    ``epochs_drop``, time's ``decay``) is read as its current one, so older stores still read.
    """
    data = dict(data)
    cls = _family(str(data.pop("family", "")))
    for old, new in cls.renamed.items():
        if old in data:
            if new in data:
                raise ConfigError(
                    f"schedule '{cls.family}': {old} is the earlier name of {new}; give one of them"
                )
            data[new] = data.pop(old)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"schedule '{cls.family}': unknown parameter(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(names))}"
        )
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"schedule '{cls.family}': {exc}") from None


def from_dimensions(
    family: str,
    dims: Mapping[str, Any],
    *,
    steps_per_epoch: int,
    epochs: int,
) -> Schedule:
    """Build a ``family`` schedule from a study's dimension values ``dims``, whose intervals are
    in epochs, for a run of ``epochs`` epochs of ``steps_per_epoch`` updates.

    Each family reads the dimensions it declares (``dimensions``; its ``from_dimensions`` says
    what each becomes) and takes a baseline's settings in steps (``decay_steps``, ``end_lr``,
    piecewise's ``boundaries`` and ``values``) as they are: a dimension given as ``decay_steps``
    wins over its epoch form, so the tutorials' step-based settings can be written as they are.
    """
    spe = int(steps_per_epoch)
    if spe < 1:
        raise ConfigError(f"steps_per_epoch must be >= 1, got {steps_per_epoch!r}")
    return _family(family).from_dimensions(dims, steps_per_epoch=spe, epochs=epochs)
