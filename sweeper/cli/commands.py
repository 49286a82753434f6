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
from sweeper.api.progress import ProgressLines
from sweeper.cli.common import EXIT_INTERRUPTED, INTERRUPTED, setup_logging, user_errors
from sweeper.interrupts import INTERRUPTS, SweepInterrupted
from sweeper.training.schedules import FAMILIES


class _Main(click.Group):
    """The command group; a stop by Ctrl-C/SIGTERM anywhere in a command is one line, exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        with INTERRUPTS.installed():
            try:
                return super().invoke(ctx)
            except SweepInterrupted:
                click.echo(INTERRUPTED, err=True)
                raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@click.group(
    cls=_Main,
    context_settings={"help_option_names": ["-h", "--help"]},
    # the families named as sweeper.training.families declares them
    help=f"""Find the best learning-rate schedule for a Keras model.

    sweeper runs an Optuna study over schedule families ({", ".join(FAMILIES)}; `sweeper
    families` lists them) and their parameters, prunes poor trials on validation accuracy and
    keeps every trial in a SQLite store.
    """,
)
@click.version_option(__version__, prog_name="sweeper")
def main() -> None:
    pass


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


_pack_option = click.option(
    "--pack",
    type=click.IntRange(1, 64),
    metavar="K",
    help="Train K trials at once in each worker, as copies of the network in one model "
    "[default: the study file's [train] pack, else 1].",
)


_checkpoint_option = click.option(
    "--checkpoint-dir",
    metavar="DIR",
    help="Where trials keep their per-epoch checkpoints [default: $SWEEPER_CHECKPOINTS or ./sweeper-checkpoints].",
)


_artifacts_option = click.option(
    "--artifacts",
    metavar="URL",
    help="A store every worker shares for checkpoints, so any machine continues any trial: "
    "file:///shared/folder or s3://bucket/prefix (credentials from the AWS_* variables) "
    "[default: $SWEEPER_ARTIFACTS, else the study file's [study] artifacts, else none].",
)


def _print_summary(summary: Any) -> None:
    from sweeper.api.progress import summary_lines

    for line in summary_lines(summary):
        click.echo(line)


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
@_artifacts_option
@_pack_option
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
    artifacts: str | None,
    pack: int | None,
    verbose: int,
) -> None:
    """Tune the learning-rate schedule of STUDY_FILE (default: the embedded digits study).

    Rerunning the same command resumes: only the trials still missing are run.

    \b
    Examples:
      sweeper tune                                  the embedded digits study
      sweeper tune mnist-t10k --n-trials 30         a shipped study by name, 30 trials
      sweeper tune digits --set train.epochs=2 --set data.subset=500
      sweeper tune mnist --workers 2 --budget-epochs 200 --storage sqlite:///runs.db
    """
    setup_logging(verbose)
    from sweeper.api.study import Study, header_line
    from sweeper.search.run_options import RunOptions

    with user_errors():
        study = Study.from_file(study_file, overrides)
        click.echo(header_line(study.name, study.spec), err=True)
        options = RunOptions(
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
            pack=pack,
            progress=ProgressLines(),
            command_line=True,
        )
        summary = study.run_with(options)
    _print_summary(summary)
    if summary.interrupted:
        sys.exit(EXIT_INTERRUPTED)


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
@_artifacts_option
@_pack_option
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
    artifacts: str | None,
    pack: int | None,
    study_file: str | None,
    trust_store: bool,
    verbose: int,
) -> None:
    """Join an existing study as one more worker, from any machine that reaches the store.

    The study file is read from the store, so no local copy is needed, unless it imports a user
    model (or unpickles data files): then the worker runs it only when --study-file (or the stored
    source path on this machine) holds the same definition, or with --trust-store.

    \b
    Examples:
      sweeper worker --study-name mnist             one more worker for `sweeper tune mnist`
      sweeper worker --study-name mnist --n-trials 200 --timeout 3600
      sweeper worker --study-name mnist --storage postgresql://user@db-host/sweeper
      sweeper worker --study-name mnist --artifacts s3://team-bucket/sweeper
    """
    setup_logging(verbose)
    from sweeper.api.facade import join_with
    from sweeper.search.run_options import RunOptions

    with user_errors():
        options = RunOptions(
            storage=storage,
            n_trials=n_trials,
            timeout=timeout,
            checkpoint_dir=checkpoint_dir,
            artifacts=artifacts,
            pack=pack,
            study_file=study_file,
            trust_store=trust_store,
            progress=ProgressLines(),
            command_line=True,
        )
        run = join_with(study_name, options)
    click.echo(
        f"worker done: {run.ran} trial(s) run; study {study_name!r} target {run.target}", err=True
    )
    if run.interrupted:
        sys.exit(EXIT_INTERRUPTED)


@main.command("studies")
def studies() -> None:
    """List the study files that ship with sweeper (run one with `sweeper tune NAME`).

    \b
    Examples:
      sweeper studies
      sweeper tune fashion-mnist                    run one of them by its name
    """
    from sweeper.studyfile.config import (
        DEFAULT_STUDY,
        STUDIES_DIR,
        load_study_file,
        shipped_study_files,
    )

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
    """List the schedule families with their formulas.

    \b
    Examples:
      sweeper families
      sweeper schedules --family wsd --family shape --plot shapes.png   draw two of them
    """
    for name, cls in FAMILIES.items():
        click.echo(f"{name:<16} {cls.formula}")


def _register_optional_commands() -> None:
    """Attach the commands defined in other modules (read-only analysis, evaluation, ...)."""
    import importlib

    for module_name in ("sweeper.cli.read", "sweeper.cli.train"):
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
