"""The :class:`Study` of the Python API: a study file in Python, built from keywords or read from
a file, with the TOML text that identifies it; ``tune``, ``run`` and ``lr_find`` run it as the
command line does (see :mod:`sweeper.api.facade`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from sweeper.api.data import has_arrays, not_data
from sweeper.api.progress import Progress, reporting, summary_lines
from sweeper.api.results import TuneResult
from sweeper.api.run_context import console, optuna_quiet, print_lines
from sweeper.api.settings import (
    Data,
    Model,
    ModelRef,
    StudySettings,
    assignments,
    keywords_checked,
    model_ref,
    nested,
)
from sweeper.api.study_text import render, toml_value
from sweeper.errors import LrFindError, StudyChangedError
from sweeper.search.run_options import RunOptions
from sweeper.studyfile.config import apply_overrides, load_study_file, parse_study
from sweeper.studyfile.names import check_study_name
from sweeper.studyfile.study_spec import StudySpec
from sweeper.training.data import load_dataset
from sweeper.training.models import in_process_model

if TYPE_CHECKING:
    from sweeper.search.summary import TuneSummary
    from sweeper.training.lr_curve import LrFindResult


SOURCE = "<sweeper.Study>"  # the source of a study built from keywords, as the store keeps it


INTERRUPTED = (
    "interrupted: call it again with the same arguments to resume; the stopped trial runs again"
)


class Study:
    """A study: what to train, on which data, and the schedule space to search.

    The same thing as a study file, in Python: each keyword is one setting of the file (see the
    README's "Study file reference"; a keyword left out takes the file's default), and
    :meth:`to_toml` writes the file. ``Study.from_file(path)`` reads one.
    """

    spec: StudySpec
    """The validated study, as :func:`sweeper.studyfile.config.parse_study` reads it."""

    @keywords_checked
    def __init__(
        self,
        model: Model,
        data: Data,
        *,
        name: str | None = None,
        n_trials: int | None = None,
        budget_epochs: int | None = None,
        seed: int | None = None,
        metric: str | None = None,
        max_failure_rate: float | None = None,
        failure_window: int | None = None,
        data_path: str | os.PathLike[str] | None = None,
        subset: int | None = None,
        validation_fraction: float | None = None,
        test_fraction: float | None = None,
        data_seed: int | None = None,
        batch_size: int | None = None,
        epochs: int | None = None,
        jit_compile: bool | str | None = None,
        pack: int | None = None,
        space: Mapping[str, Any] | None = None,
        sampler: str | Mapping[str, Any] | None = None,
        pruner: str | Mapping[str, Any] | None = None,
        baselines: Sequence[Mapping[str, Any]] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """A study from keywords; see :func:`sweeper.tune` for what each one means.

        ``name`` defaults to the model's and the data's names (``"build-arrays"``,
        ``"mnist-cnn-digits"``). Raises :class:`~sweeper.errors.ConfigError` (or ``DataError``)
        with one line for a bad setting, before anything is trained or stored.
        """
        settings = {
            "name": name,
            "n_trials": n_trials,
            "budget_epochs": budget_epochs,
            "seed": seed,
            "metric": metric,
            "max_failure_rate": max_failure_rate,
            "failure_window": failure_window,
            "data_path": data_path,
            "subset": subset,
            "validation_fraction": validation_fraction,
            "test_fraction": test_fraction,
            "data_seed": data_seed,
            "batch_size": batch_size,
            "epochs": epochs,
            "jit_compile": jit_compile,
            "pack": pack,
            "space": space,
            "sampler": sampler,
            "pruner": pruner,
            "baselines": baselines,
        }
        ref = model_ref(model)
        if data is None:
            raise not_data(data)
        arrays = has_arrays(data)
        if name is None:
            label = ref.name.rpartition(":")[2]
            data_label = "arrays" if arrays else Path(os.fspath(data)).stem  # type: ignore[arg-type]
            settings["name"] = f"{label}-{data_label}"
        pairs = assignments(ref, data, settings, data_dir)
        raw = nested(pairs)
        spec = parse_study(
            render(raw), SOURCE, base_dir=Path.cwd(), default_name=str(settings["name"])
        )
        self._setup(spec, raw, ref, overridden=False, arrays=arrays)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str] | None = None,
        overrides: Sequence[str] = (),
        **settings: Unpack[StudySettings],
    ) -> Study:
        """The study of a study file: a path, the name of a shipped study (``"mnist"``), or
        None for the embedded default (digits).

        ``overrides`` are ``sweeper tune --set`` items (``"train.epochs=1"``), and each keyword
        given replaces that setting of the file in the same way (``epochs=1``): the study is
        the one ``sweeper tune FILE --set ...`` runs, and the two resume each other. ``space``,
        ``sampler`` and ``pruner`` replace the keys they give and keep the file's others.
        """
        given: dict[str, Any] = dict(settings)
        model = given.pop("model", None)
        data = given.pop("data", None)
        data_dir = given.pop("data_dir", None)
        ref = model_ref(model) if model is not None else None
        pairs = assignments(ref, data, given, data_dir)
        items = [*overrides, *(f"{dotted}={toml_value(value)}" for dotted, value in pairs)]
        spec = load_study_file(None if path is None else Path(path), items)
        raw = tomllib.loads(spec.text)
        apply_overrides(raw, overrides, spec.source)
        study = cls.__new__(cls)
        study._setup(spec, nested(pairs, raw), ref, overridden=bool(items), arrays=has_arrays(data))
        return study

    def _setup(
        self,
        spec: StudySpec,
        raw: dict[str, Any],
        ref: ModelRef | None,
        *,
        overridden: bool,
        arrays: bool,
    ) -> None:
        self.spec = spec
        self._raw = raw
        self._model = ref
        self._overridden = overridden
        if arrays:
            load_dataset(spec.data)  # arrays that are no images and labels are refused now

    # -- what it is ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The study's name in the store."""
        return self.spec.name

    @property
    def hash(self) -> str:
        """The study's identity in the store: its text and its overrides (``spec.hash``)."""
        return self.spec.hash

    @property
    def in_process_only(self) -> bool:
        """Whether its model is a function that only this process can call (a notebook's)."""
        return self._model is not None and self._model.why_local is not None

    def __repr__(self) -> str:
        s = self.spec
        epochs = f"{s.train.epochs} epoch{'' if s.train.epochs == 1 else 's'}"
        return (
            f"Study({s.name!r}: {s.train.model} on {s.data.name}, {epochs}, batch "
            f"{s.train.batch_size}, schedules {', '.join(s.space.families())}, "
            f"{len(s.baselines)} baselines)"
        )

    def to_toml(self) -> str:
        """The study file's text: :func:`~sweeper.studyfile.config.parse_study` reads it back to an equal
        spec (its own text for a file read as it is, so the same hash).

        A study whose model is a notebook's function has no file: it raises
        :class:`~sweeper.errors.ConfigError` saying to put the function in a module.
        """
        if self._model is not None and self._model.why_local is not None:
            raise self._model.refuse("a study file")
        if not self._overridden:
            return self.spec.text
        raw = json.loads(json.dumps(self._raw))  # a copy
        raw.setdefault("study", {})["name"] = self.spec.name  # a file's default name is its own
        if self.spec.data.path is not None:  # relative to the file it came from: made absolute
            raw.setdefault("data", {})["path"] = self.spec.data.path
        return render(raw)

    @contextmanager
    def registered(self) -> Iterator[None]:
        """The model function given, called by this process while the block runs."""
        if self._model is None or self._model.fn is None:
            yield
            return
        with in_process_model(self._model.name, self._model.fn):
            yield

    # -- running it ---------------------------------------------------------------------------
    @keywords_checked
    def run(
        self,
        *,
        storage: str | None = None,
        n_trials: int | None = None,
        budget_epochs: int | None = None,
        timeout: float | None = None,
        workers: int = 1,
        workers_per_gpu: int = 1,
        study_name: str | None = None,
        allow_changed: bool = False,
        checkpoint_dir: str | None = None,
        artifacts: str | None = None,
        progress: Progress | None = None,
        pack: int | None = None,
    ) -> TuneSummary:
        """Run the study as ``sweeper tune`` does and return what the run did, printing nothing
        (``progress`` is called with each finished trial; its ``epoch`` method, if it has one,
        with each epoch trained, and its ``clear`` once the trials end). :meth:`tune` is this plus the
        progress, the summary and the notebook's interrupt; the command line calls this.
        ``pack`` trials train at once in each worker (default: the study's ``[train] pack``);
        like ``workers`` it is how the study runs, not part of it.

        A stop by Ctrl-C or SIGTERM either returns a summary with ``interrupted`` set or raises
        :class:`~sweeper.interrupts.SweepInterrupted`; either way the store is resumable.
        """
        return self.run_with(
            RunOptions(
                storage=storage,
                study_name=study_name,
                n_trials=n_trials,
                budget_epochs=budget_epochs,
                timeout=timeout,
                allow_changed=allow_changed,
                workers=workers,
                workers_per_gpu=workers_per_gpu,
                checkpoint_dir=checkpoint_dir,
                artifacts=artifacts,
                progress=progress,
                pack=pack,
            )
        )

    def run_with(self, options: RunOptions) -> TuneSummary:
        """:meth:`run` with its options made already (and so checked): what ``sweeper tune``
        calls."""
        if options.workers > 1 and self._model is not None and self._model.why_local is not None:
            raise self._model.refuse("worker processes")
        from sweeper.search import runner as study_mod
        from sweeper.training.backend import quiet_environment

        quiet_environment()
        with self.registered():
            return study_mod.tune(self.spec, options)

    @keywords_checked
    def tune(
        self,
        *,
        storage: str | None = None,
        n_trials: int | None = None,
        budget_epochs: int | None = None,
        timeout: float | None = None,
        workers: int = 1,
        workers_per_gpu: int = 1,
        study_name: str | None = None,
        allow_changed: bool = False,
        checkpoint_dir: str | None = None,
        artifacts: str | None = None,
        progress: bool | Progress | None = True,
        pack: int | None = None,
    ) -> TuneResult:
        """Run the study until it holds ``n_trials`` finished trials (default: its own
        ``n_trials``); see :func:`sweeper.tune` for every argument. Returns a
        :class:`TuneResult`; an interrupt raises :class:`TuneInterrupted` (a
        ``KeyboardInterrupt``) with the store left resumable."""
        from sweeper.interrupts import SweepInterrupted
        from sweeper.store.storage_url import resolve_url

        url = resolve_url(storage)
        options = RunOptions(  # checked here, once: a bad value is refused before anything shows
            storage=url,
            study_name=study_name,
            n_trials=n_trials,
            budget_epochs=budget_epochs,
            timeout=timeout,
            allow_changed=allow_changed,
            workers=workers,
            workers_per_gpu=workers_per_gpu,
            checkpoint_dir=checkpoint_dir,
            artifacts=artifacts,
            pack=pack,
        )
        name = options.study_name or self.name
        with (
            console(progress is not False and progress is not None),
            optuna_quiet(),
            reporting(progress, name) as callback,
        ):
            lines = progress is True  # sweeper's own display: the header and summary with it
            if lines:
                print_lines([header_line(name, self.spec)])
            try:
                summary = self.run_with(dataclasses.replace(options, progress=callback))
            except SweepInterrupted:
                raise TuneInterrupted(INTERRUPTED) from None
            except StudyChangedError as exc:
                raise StudyChangedError(
                    f"{exc} (from Python: the same arguments, another study_name=, or "
                    "allow_changed=True)"
                ) from None
            if lines:
                print_lines(summary_lines(summary, python=True))
        result = TuneResult(summary.study_name, url, summary=summary, study=self)
        if summary.interrupted:
            raise TuneInterrupted(INTERRUPTED, result)
        return result

    @keywords_checked
    def lr_find(
        self,
        *,
        storage: str | None = None,
        optimizer: str | None = None,
        start: float = 1e-7,
        end: float = 10.0,
        steps: int = 200,
        study_name: str | None = None,
        plot: str | os.PathLike[str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[LrFindResult]:
        """The learning-rate range test, as ``sweeper lr-find``: for each optimizer of the
        space (or only ``optimizer``) the model trains while the rate grows exponentially from
        ``start`` to ``end`` over ``steps`` batches; each result (its suggested ``low`` ..
        ``high``, the steepest-descent and lowest-loss rates) is stored with the study, and
        ``plot`` names an image file to draw the loss against the rate into. ``progress`` is
        called with one line before each test."""
        from sweeper.analysis import lrfind_plot
        from sweeper.search import lrfind
        from sweeper.store import lrfind_store
        from sweeper.store.store import Store

        if plot is not None:
            lrfind_plot.check_plot_path(os.fspath(plot))
        optimizers = lrfind.study_optimizers(self.spec.space)
        if optimizer is not None:
            optimizers = [o for o in optimizers if o.name == optimizer]
            if not optimizers:
                raise LrFindError(
                    f"optimizer {optimizer!r} is not in the study's space; it has "
                    f"{', '.join(o.name for o in lrfind.study_optimizers(self.spec.space))}"
                )
        s = self.spec
        name = s.name if study_name is None else check_study_name(study_name, "study_name")
        store = Store(storage)
        results = []
        try:
            with self.registered():
                for opt in optimizers:
                    if progress is not None:
                        progress(
                            f"range test: {s.train.model} on {s.data.name}, {opt.describe()}, "
                            f"batch {s.train.batch_size}, rate {start:g} -> {end:g} over "
                            f"{steps} steps"
                        )
                    result = lrfind.lr_find(s, opt, start=start, end=end, steps=steps)
                    results.append(lrfind_store.save_lr_find(store, result, name, s.hash))
        finally:
            store.close()
        if plot is not None:
            lrfind_plot.draw([lrfind_plot.plot_data(r) for r in results], os.fspath(plot))
        return results


class TuneInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C, SIGTERM or Kernel → Interrupt; the store is resumable.

    ``result`` is the :class:`TuneResult` of the study when the run ended in order (None when it
    stopped while starting).
    """

    def __init__(self, message: str, result: TuneResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def header_line(name: str, spec: StudySpec) -> str:
    """The line a run starts with: what trains on what, and the families searched."""
    t = spec.train
    return (
        f"tuning {name!r} ({spec.source}): {t.model} on {spec.data.name}, {t.epochs} "
        f"epoch{'' if t.epochs == 1 else 's'}, batch {t.batch_size}, "
        f"schedules {', '.join(spec.space.families())}"
    )
