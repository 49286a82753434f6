"""Command line: a thin click layer over the library.

Each command parses its options, makes one library call and prints. Library errors
(:class:`sweeper.errors.SweeperError`) become one line on stderr and a non-zero exit status.
Keras is only imported by commands that train.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import click

from sweeper import __version__
from sweeper.cli_common import EXIT_INTERRUPTED, INTERRUPTED, setup_logging, user_errors
from sweeper.interrupts import INTERRUPTS, SweepInterrupted
from sweeper.progress import ProgressLines


class _Main(click.Group):
    """The command group; a stop by Ctrl-C/SIGTERM anywhere in a command is one line, exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        with INTERRUPTS.installed():
            try:
                return super().invoke(ctx)
            except SweepInterrupted:
                click.echo(INTERRUPTED, err=True)
                raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sweeper")
def main() -> None:
    """Find the best learning-rate schedule for a Keras model.

    sweeper runs an Optuna study over schedule families (constant, time, step, exponential,
    piecewise, polynomial, inverse_time, cosine, cosine_restarts, linear, wsd, one_cycle, rex,
    shape; `sweeper families` lists them) and their parameters, prunes poor trials on validation
    accuracy and keeps every trial in a SQLite store.
    """


_storage_option = click.option(
    "--storage",
    metavar="URL",
    help="SQLAlchemy URL of the store [default: $SWEEPER_STORAGE or sqlite:///sweeper.db].",
)


def _finite(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds; give a finite one")
    return value


_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    callback=_finite,
    metavar="SECONDS",
    help="Start no new trial after this many seconds.",
)


_checkpoint_option = click.option(
    "--checkpoint-dir",
    metavar="DIR",
    help="Where trials keep their per-epoch checkpoints [default: $SWEEPER_CHECKPOINTS or ./sweeper-checkpoints].",
)


def _print_summary(summary: Any) -> None:
    c = summary.counts
    stopped = c["pruned"] + c["paused"]  # Optuna's PRUNED: stopped early, paused or for good
    finished = c["complete"] + stopped + c["failed"]
    click.echo(
        f"study {summary.study_name!r} in {summary.storage}: {finished}/{summary.target} finished "
        f"trials ({c['complete']} complete, {stopped} pruned, {c['failed']} failed); "
        f"{summary.ran} run now in {summary.seconds:.0f} s"
    )
    if c["paused"] or c["promoted"]:
        click.echo(
            f"{c['paused']} of the pruned paused (checkpoint kept, to be continued); "
            f"{c['promoted']} trial{'' if c['promoted'] == 1 else 's'} continued by later "
            "ones (counted through them)"
        )
    budget = f" of a budget of {summary.budget_epochs}" if summary.budget_epochs else ""
    click.echo(f"epochs trained: {summary.epochs_spent}{budget}")
    if summary.best_value is None:
        click.echo("no completed trial yet")
    else:
        click.echo(f"best: trial {summary.best_number}, val_accuracy {summary.best_value:.4f}")
        click.echo(f"  schedule: {summary.best_schedule}")
        params = "  ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in summary.best_params.items()
        )
        click.echo(f"  params:   {params or '(none searched)'}")
    if summary.best_baseline is not None:
        verdict = (
            f"tuning gains {summary.gain:+.4f}"
            if summary.tuned_complete
            else "no tuned trial has completed yet (raise "
            + (
                "--budget-epochs"
                if summary.budget_epochs and summary.epochs_spent >= summary.budget_epochs
                else "--n-trials"
            )
            + " to tune)"
        )
        click.echo(
            f"best baseline: {summary.best_baseline}, val_accuracy "
            f"{summary.best_baseline_value:.4f}; {verdict}"
        )
    for optimizer, (low, high) in summary.lr_ranges.items():
        click.echo(
            f"initial_lr range from the LR range test ({optimizer}): [{low:.3g}, {high:.3g}] "
            "(stored: resumed runs and other workers use the same bounds)"
        )
    if summary.trials_per_hour:
        click.echo(
            f"throughput: {summary.trials_per_hour:.0f} trials/hour with {summary.workers} "
            f"worker{'s' if summary.workers > 1 else ''}"
        )
    if summary.interrupted:
        click.echo("interrupted: rerun the same command to resume; the stopped trial runs again")
    elif summary.budget_epochs and summary.epochs_spent >= summary.budget_epochs:
        click.echo("the epoch budget is spent: raise --budget-epochs to go on")
    elif finished < summary.target:
        click.echo("stopped before the target: rerun the same command to resume")


@main.command()
@click.argument("study_file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--n-trials",
    type=click.IntRange(min=1),
    help="Run until the study holds N finished trials [default: the study file's n_trials].",
)
@click.option(
    "--budget-epochs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Stop once N epochs have been trained for the study in all, every trial, run and "
    "worker counted [default: the study file's budget_epochs, else none].",
)
@_timeout_option
@_storage_option
@click.option(
    "--study-name", metavar="NAME", help="Study name in the store [default: the file's name]."
)
@click.option(
    "--allow-changed", is_flag=True, help="Continue a stored study with a changed study file."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a study-file setting, e.g. --set train.epochs=2 (repeatable).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes sharing the study (spread over the visible GPUs, or sharing the CPU cores).",
)
@click.option(
    "--workers-per-gpu",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Workers packed onto each GPU (memory growth on).",
)
@_checkpoint_option
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def tune(
    study_file: str | None,
    n_trials: int | None,
    budget_epochs: int | None,
    timeout: float | None,
    storage: str | None,
    study_name: str | None,
    allow_changed: bool,
    overrides: tuple[str, ...],
    workers: int,
    workers_per_gpu: int,
    checkpoint_dir: str | None,
    verbose: int,
) -> None:
    """Tune the learning-rate schedule of STUDY_FILE (default: the embedded digits study).

    Rerunning the same command resumes: only the trials still missing are run.
    """
    setup_logging(verbose)
    from sweeper.config import load_study_file
    from sweeper.study import tune as run_tune

    with user_errors():
        spec = load_study_file(study_file, overrides)
        click.echo(
            f"tuning {spec.name!r} ({spec.source}): {spec.train.model} on {spec.data.name}, "
            f"{spec.train.epochs} epoch{'' if spec.train.epochs == 1 else 's'}, "
            f"batch {spec.train.batch_size}, "
            f"schedules {', '.join(spec.space.families())}",
            err=True,
        )
        summary = run_tune(
            spec,
            storage=storage,
            study_name=study_name,
            n_trials=n_trials,
            budget_epochs=budget_epochs,
            timeout=timeout,
            allow_changed=allow_changed,
            workers=workers,
            workers_per_gpu=workers_per_gpu,
            checkpoint_dir=checkpoint_dir,
            progress=ProgressLines(),
        )
    _print_summary(summary)
    if summary.interrupted:
        sys.exit(130)


@main.command()
@_storage_option
@click.option("--study-name", metavar="NAME", required=True, help="The study to join.")
@click.option(
    "--n-trials",
    type=click.IntRange(min=1),
    help="Run until the study holds N finished trials [default: the target it was started with].",
)
@_timeout_option
@_checkpoint_option
@click.option(
    "--study-file",
    type=click.Path(dir_okay=False),
    help="Your copy of the study file: the stored definition must match it.",
)
@click.option(
    "--trust-store",
    is_flag=True,
    help="Run a stored definition that imports a user model without a local copy to confirm it.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def worker(
    storage: str | None,
    study_name: str,
    n_trials: int | None,
    timeout: float | None,
    checkpoint_dir: str | None,
    study_file: str | None,
    trust_store: bool,
    verbose: int,
) -> None:
    """Join an existing study as one more worker, from any machine that reaches the store.

    The study file is read from the store, so no local copy is needed, unless it imports a user
    model (or unpickles data files): then the worker runs it only when --study-file (or the stored
    source path on this machine) holds the same definition, or with --trust-store.
    """
    setup_logging(verbose)
    from sweeper.store import Store
    from sweeper.study import join_study

    with user_errors():
        store = Store(storage)
        ran, interrupted, target = join_study(
            store,
            study_name,
            n_trials=n_trials,
            timeout=timeout,
            checkpoint_dir=checkpoint_dir,
            progress=ProgressLines(),
            trust_store=trust_store,
            study_file=study_file,
        )
    click.echo(f"worker done: {ran} trial(s) run; study {study_name!r} target {target}", err=True)
    if interrupted:
        sys.exit(130)


@main.command("studies")
def studies() -> None:
    """List the study files that ship with sweeper (run one with `sweeper tune NAME`)."""
    from sweeper.config import DEFAULT_STUDY, STUDIES_DIR, load_study_file, shipped_study_files

    with user_errors():
        for file in shipped_study_files():
            spec = load_study_file(file)
            if spec.data.path:
                data = f"{spec.data.name} from {os.path.relpath(spec.data.path, file.resolve().parent)}/"
            elif spec.data.name == "digits":
                data = "digits (bundled with scikit-learn)"
            else:
                data = f"{spec.data.name} (downloaded by Keras)"
            searched = len(spec.space.families())
            default = "  [default]" if file.name == DEFAULT_STUDY.name else ""
            click.echo(
                f"{file.stem:<14} {data}, {spec.train.model}, {spec.train.epochs} epochs, "
                f"{spec.n_trials} trials, {searched} schedule famil"
                f"{'y' if searched == 1 else 'ies'}, {len(spec.baselines)} baselines{default}"
            )
    click.echo(f"(in {STUDIES_DIR.resolve()}; run one with `sweeper tune NAME`)")


@main.command("families")
def families() -> None:
    """List the schedule families with their formulas."""
    from sweeper.schedules import FAMILIES

    for name, cls in FAMILIES.items():
        click.echo(f"{name:<16} {cls.formula}")


def _register_optional_commands() -> None:
    """Attach the commands defined in other modules (read-only analysis, evaluation, ...)."""
    import importlib

    for module_name in ("sweeper.cli_read", "sweeper.cli_train"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(main)


_register_optional_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
