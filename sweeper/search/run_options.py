"""How a study runs, as opposed to what it is: the options of one run, in one frozen object.

The study file (:class:`~sweeper.studyfile.study_spec.StudySpec`) says what is searched and
trained; :class:`RunOptions` says where the study is stored, how long this run goes on, how many
workers run it and where their checkpoints go. None of it is part of the study's identity: a
larger ``n_trials`` or another ``pack`` continues the same study. The options are made once, at
the top (the ``tune`` and ``worker`` commands, the API's ``tune``, ``Study.run``, ``join``), which
checks them, and are passed down whole through :mod:`sweeper.search.runner` and
:mod:`sweeper.search.worker`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sweeper.errors import ConfigError
from sweeper.studyfile.names import check_study_name
from sweeper.studyfile.settings import MAX_TRIALS

if TYPE_CHECKING:
    from sweeper.search.outcomes import TrialEvent


@dataclass(frozen=True)
class RunOptions:
    """The options of one run of a study; every one has the default ``sweeper tune`` gives it.

    Made with invalid values it raises :class:`~sweeper.errors.ConfigError` (one line): a count
    that is not a whole number from 1 to ``MAX_TRIALS``, a study name a new study may not take.
    """

    storage: str | None = None
    """SQLAlchemy URL of the store (None: ``$SWEEPER_STORAGE``, else ``sqlite:///sweeper.db``)."""
    study_name: str | None = None
    """The study's name in the store for ``tune`` (None: the study file's); stripped once checked."""
    n_trials: int | None = None
    """Run until the study holds this many finished trials (None: the study's own target)."""
    budget_epochs: int | None = None
    """Stop once this many epochs were trained for the study in all (None: the study file's)."""
    timeout: float | None = None
    """Start no new trial after this many seconds (None: no limit)."""
    allow_changed: bool = False
    """Continue a stored study whose study file (or model) changed."""
    workers: int = 1
    """Worker processes ``tune`` runs the study in (1: in this process)."""
    workers_per_gpu: int = 1
    """Workers packed onto each GPU."""
    checkpoint_dir: str | None = None
    """Where trials keep their checkpoints (None: ``$SWEEPER_CHECKPOINTS``, else ./sweeper-checkpoints)."""
    artifacts: str | None = None
    """The shared checkpoint store's URL (None: ``$SWEEPER_ARTIFACTS``, else the study file's)."""
    pack: int | None = None
    """Trials each worker trains at once (None: the study file's ``[train] pack``)."""
    trust_store: bool = False
    """A joining worker runs a stored definition that imports a user model without confirming it."""
    study_file: str | None = None
    """A joining worker's copy of the study file: the stored definition must match it."""
    progress: Callable[[TrialEvent], None] | None = field(default=None, compare=False)
    """Called with each finished trial (its ``epoch`` and ``clear`` too, when it has them)."""
    command_line: bool = field(default=False, compare=False)
    """Given as command-line options: a refused study name is named ``--study-name``, not
    ``study_name``."""

    def __post_init__(self) -> None:
        if self.study_name is not None:
            where = "--study-name" if self.command_line else "study_name"
            object.__setattr__(self, "study_name", check_study_name(self.study_name, where))
        check_count(self.n_trials, "n_trials")
        check_count(self.budget_epochs, "budget_epochs")


def check_count(value: int | None, what: str) -> int | None:
    """``value`` (a number of trials or epochs given for this run), or None for the study's; a
    ConfigError for anything but a whole number from 1 to MAX_TRIALS."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TRIALS:
        raise ConfigError(
            f"{what} = {value!r} (--{what.replace('_', '-')}): give a whole number from 1 to "
            f"{MAX_TRIALS:,}, or leave it out for the study file's"
        )
    return value
