"""Commands that train outside a study's search: ``sweeper evaluate``, ``sweeper confirm`` and
``sweeper lr-find``.

Thin click layer: parse, call :mod:`sweeper.retraining.evaluate`, :mod:`sweeper.retraining.confirm` or
:mod:`sweeper.search.lrfind` (through the API), print. Those modules, and Keras, are imported
only when a command runs.
"""

from __future__ import annotations

from typing import Any

import click

from sweeper.cli.common import setup_logging, user_errors

_storage_option = click.option(
    "--storage",
    metavar="URL",
    help="SQLAlchemy URL of the store [default: $SWEEPER_STORAGE or sqlite:///sweeper.db].",
)


def _setup(verbose: int) -> None:
    setup_logging(verbose)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


# --------------------------------------------------------------------------------------------
# sweeper evaluate
# --------------------------------------------------------------------------------------------


def _print_run(run: Any) -> None:
    loss = "diverged" if run.test_loss is None else f"loss {run.test_loss:.4f}"
    click.echo(
        f"  trial {run.trial_number:<4} seed {run.seed:<3} test_acc={run.test_accuracy:.4f}  "
        f"{loss}  {run.seconds:5.1f}s",
        err=True,
    )


def _print_evaluation(ev: Any) -> None:
    width = min(max((len(c.label) for c in ev.configs), default=5), 72)
    acc_head = f"test accuracy ({ev.repeats} run{'s' if ev.repeats > 1 else ''})"
    click.echo(
        f"study {ev.study_name!r} in {ev.storage}: trained {ev.epochs} epochs on train+validation "
        f"({ev.n_train:,} examples), tested on {ev.n_test:,}"
    )
    click.echo(f"{'trial':>5}  {'label':<{width}}  {acc_head:<22}  val accuracy (study)")
    for c in ev.configs:
        label = c.label if len(c.label) <= width else c.label[: width - 3] + "..."
        acc = f"{c.mean:.4f} ± {c.std:.4f}" if len(c.runs) > 1 else f"{c.mean:.4f} (1 run)"
        tag = " (baseline)" if c.is_baseline else ""
        click.echo(f"{c.trial_number:>5}  {label:<{width}}  {acc:<22}  {c.val_accuracy:.4f}{tag}")
    best, base = ev.best_tuned, ev.baseline
    if best is None:
        click.echo("no complete tuned trial yet: only the baseline was evaluated")
    elif base is None:
        click.echo("the study has no complete baseline trial: nothing to compare with")
    elif len(best.runs) < 2 or len(base.runs) < 2:
        click.echo(
            f"best tuned (trial {best.trial_number}) minus baseline (trial {base.trial_number}): "
            f"{ev.difference:+.4f} test accuracy (one run each: no spread; --repeats 3 for one)"
        )
    else:
        click.echo(
            f"best tuned (trial {best.trial_number}) minus baseline (trial {base.trial_number}): "
            f"{ev.difference:+.4f} ± {ev.difference_se:.4f} test accuracy (mean ± standard error)"
        )


@click.command("evaluate")
@click.argument("study")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Retrain this many best tuned trials.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Runs per configuration (seeds study seed + 0, 1, ...).",
)
@_storage_option
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help="Epochs per run [default: the study's].",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def evaluate_command(
    study: str, top: int, repeats: int, storage: str | None, epochs: int | None, verbose: int
) -> None:
    """Did tuning help? Retrain the best trials of STUDY and its best baseline on
    train + validation, several seeds each, and compare their test accuracy.

    \b
    Examples:
      sweeper evaluate digits                       the 3 best, 3 seeds each
      sweeper evaluate digits --top 1 --repeats 5 --epochs 10
    """
    _setup(verbose)
    from sweeper.api.results import TuneResult
    from sweeper.store.storage_url import resolve_url

    with user_errors():
        ev = TuneResult(study, resolve_url(storage)).evaluate(
            top=top, repeats=repeats, epochs=epochs, progress=_print_run
        )
    _print_evaluation(ev)


# --------------------------------------------------------------------------------------------
# sweeper confirm
# --------------------------------------------------------------------------------------------


def _print_confirm_run(run: Any) -> None:
    loss = "diverged" if run.val_loss is None else f"loss {run.val_loss:.4f}"
    click.echo(
        f"  trial {run.trial_number:<4} seed {run.seed:<3} val_acc={run.val_accuracy:.4f}  "
        f"{loss}  {run.seconds:5.1f}s",
        err=True,
    )


def _print_confirmation(c: Any) -> None:
    from sweeper.retraining.confirmation import summary_lines

    width = min(max((len(x.label) for x in c.configs), default=5), 60)
    click.echo(
        f"study {c.study_name!r}: the {c.top} best configuration{'s' if c.top > 1 else ''}, "
        f"{c.seeds} seeds each, {c.epochs} epochs on the training split, scored on validation"
    )
    head = f"confirmed ({c.seeds} seeds)"
    click.echo(f"{'rank':>4}  {'trial':>5}  {'label':<{width}}  {'study':<6}  {head}")
    for x in c.configs:
        label = x.label if len(x.label) <= width else x.label[: width - 3] + "..."
        mean = "-" if x.mean is None else f"{x.mean:.4f}"
        spread = "" if x.se is None else f" ± {x.se:.4f}"
        click.echo(
            f"{x.rank:>4}  {x.trial_number:>5}  {label:<{width}}  {x.study_value:.4f}  "
            f"{mean}{spread}"
        )
    for line in summary_lines(c):
        click.echo(line)
    if c.epochs_spent is not None:
        budget = f" of its budget of {c.budget_epochs}" if c.budget_epochs else ""
        now = (
            f"{c.epochs_trained} epochs trained now ({c.trained} run{'s' if c.trained != 1 else ''})"
            if c.epochs_trained
            else "nothing trained now: every run was stored already"
        )
        click.echo(f"{now}; the study has spent {c.epochs_spent} epochs{budget}")


@click.command("confirm")
@click.argument("study")
@click.option(
    "--top",
    type=int,
    default=None,
    help="Confirm this many best complete configurations (baselines excluded) "
    "[default: 3, or all of them when the study has fewer].",
)
@click.option(
    "--seeds",
    type=int,
    default=3,
    show_default=True,
    help="Runs per configuration, at least 2 (seeds study seed + 1, 2, ...).",
)
@_storage_option
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def confirm_command(
    study: str, top: int | None, seeds: int, storage: str | None, verbose: int
) -> None:
    """A winner that survives noise: retrain the best configurations of STUDY with several
    seeds each on the training split, score them on the validation split, and name the best
    mean.

    Prints each configuration's mean ± standard error and the probability that the winner
    beats the runner-up, paired over the seeds (the paired t-test's). Every run is stored: the
    same command again, after Ctrl-C or a crash, trains only the runs missing. Its epochs count
    in the study's epoch budget. 'sweeper best', the report and result.best then name the
    confirmed winner.

    \b
    Examples:
      sweeper confirm digits                        the 3 best, 3 seeds each
      sweeper confirm digits --top 5 --seeds 4
    """
    _setup(verbose)
    from sweeper.api.results import TuneResult
    from sweeper.store.storage_url import resolve_url

    with user_errors():
        confirmation = TuneResult(study, resolve_url(storage)).confirm(
            top=top, seeds=seeds, progress=_print_confirm_run
        )
    _print_confirmation(confirmation)


# --------------------------------------------------------------------------------------------
# sweeper lr-find
# --------------------------------------------------------------------------------------------


@click.command("lr-find")
@click.argument("study_file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--start", type=float, default=1e-7, show_default=True, help="Rate of the first step."
)
@click.option("--end", type=float, default=10.0, show_default=True, help="Rate of the last step.")
@click.option(
    "--steps",
    type=click.IntRange(min=10),
    default=200,
    show_default=True,
    help="Steps (batches) from --start to --end; the test stops early once the loss diverges.",
)
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False),
    help="Draw the loss against the rate into this image file (.png).",
)
@_storage_option
@click.option(
    "--optimizer",
    metavar="NAME",
    help="Test only this optimizer [default: every optimizer of the study's space].",
)
@click.option(
    "--study-name", metavar="NAME", help="Study name to store it under [default: the file's]."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a study-file setting, e.g. --set data.subset=2000 (repeatable).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def lr_find_command(
    study_file: str | None,
    start: float,
    end: float,
    steps: int,
    plot_file: str | None,
    storage: str | None,
    optimizer: str | None,
    study_name: str | None,
    overrides: tuple[str, ...],
    verbose: int,
) -> None:
    """Learning-rate range test for STUDY_FILE (default: the embedded digits study).

    The study's model trains on its training split while the rate grows exponentially from
    --start to --end; the loss against the rate shows which initial rates to search. The
    suggested range runs from a tenth of the steepest-descent rate to the rate at the lowest
    smoothed loss. Results are stored with the study.

    \b
    Examples:
      sweeper lr-find                               the embedded digits study
      sweeper lr-find mnist-t10k --plot lr.png
      sweeper lr-find digits --start 1e-5 --end 1 --steps 100 --set data.subset=1000
    """
    _setup(verbose)
    from sweeper.api.study import Study
    from sweeper.store.lrfind_store import union_range

    with user_errors():
        results = Study.from_file(study_file, overrides).lr_find(
            storage=storage,
            optimizer=optimizer,
            start=start,
            end=end,
            steps=steps,
            study_name=study_name,
            plot=plot_file,
            progress=lambda line: click.echo(line, err=True),
        )

    for r in results:
        stopped = (
            f"stopped at {_rate(r.diverged_lr)} (diverged)"
            if r.diverged_lr is not None
            else f"ran all {len(r.lrs)} steps without diverging"
        )
        click.echo(f"{r.optimizer}: {len(r.lrs)} steps, {stopped}")
        click.echo(f"  steepest descent at  {r.steepest_lr:.3g}")
        click.echo(f"  lowest loss at       {r.min_loss_lr:.3g}")
        click.echo(f"  suggested range      {r.low:.3g} .. {r.high:.3g}")
        click.echo(
            f"  in the study file:   [space] initial_lr = "
            f"{{ low = {r.low:.3g}, high = {r.high:.3g}, log = true }}"
        )
    if len(results) > 1:
        low, high = union_range(results)
        click.echo(
            f"one initial_lr serves every optimizer of the study; the union of the ranges: "
            f"{{ low = {low:.3g}, high = {high:.3g}, log = true }}"
        )
    if plot_file is not None:
        click.echo(f"plot: {plot_file}")


def register(group: click.Group) -> None:
    """Add ``evaluate``, ``confirm`` and ``lr-find`` to the ``sweeper`` command group."""
    group.add_command(evaluate_command)
    group.add_command(confirm_command)
    group.add_command(lr_find_command)
