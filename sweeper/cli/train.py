"""Commands that train outside a study: ``sweeper evaluate`` and ``sweeper lr-find``.

Thin click layer: parse, call :mod:`sweeper.study.evaluate` or :mod:`sweeper.study.lrfind`, print. Both
modules, and Keras, are imported only when a command runs.
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
        acc = f"{c.mean:.4f} ± {c.std:.4f}"
        tag = " (baseline)" if c.is_baseline else ""
        click.echo(f"{c.trial_number:>5}  {label:<{width}}  {acc:<22}  {c.val_accuracy:.4f}{tag}")
    best, base = ev.best_tuned, ev.baseline
    if best is None:
        click.echo("no complete tuned trial yet: only the baseline was evaluated")
    elif base is None:
        click.echo("the study has no complete baseline trial: nothing to compare with")
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
    train + validation, several seeds each, and compare their test accuracy."""
    _setup(verbose)
    from sweeper.api.facade import TuneResult
    from sweeper.study.storage_url import resolve_url

    with user_errors():
        ev = TuneResult(study, resolve_url(storage)).evaluate(
            top=top, repeats=repeats, epochs=epochs, progress=_print_run
        )
    _print_evaluation(ev)


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
    """
    _setup(verbose)
    from sweeper.api.facade import Study
    from sweeper.study.lrfind import union_range

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
    """Add ``evaluate`` and ``lr-find`` to the ``sweeper`` command group."""
    group.add_command(evaluate_command)
    group.add_command(lr_find_command)
