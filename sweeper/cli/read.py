"""Read-only commands: status, best, importance, plot, report, export, schedules.

A thin click layer: each command parses its options, calls the library (:mod:`sweeper.analysis.queries`,
:mod:`sweeper.analysis.plots`, :mod:`sweeper.analysis.report`), and prints. Those modules are imported inside the
commands, so ``sweeper --help`` stays fast; none of them imports Keras or TensorFlow.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sweeper.cli.common import setup_logging, user_errors
from sweeper.errors import ConfigError, PlotUnavailableError, SweeperError
from sweeper.studyfile.names import shown

if TYPE_CHECKING:
    from sweeper.analysis.store_status import StudyStatus

EVALUATORS = ("ped-anova", "fanova", "mean-decrease-impurity")


@contextmanager
def _errors(verbose: int = 0) -> Iterator[None]:
    """Set up logging; our errors become one line on stderr and a non-zero exit status."""
    setup_logging(verbose)
    with user_errors():
        yield


def _storage(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--storage",
        metavar="URL",
        help="SQLAlchemy URL of the store [default: $SWEEPER_STORAGE or sqlite:///sweeper.db].",
    )(f)


def _verbose(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")(f)


def _evaluator(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--evaluator",
        type=click.Choice(EVALUATORS),
        default="ped-anova",
        show_default=True,
        help="Importance evaluator (Optuna's PED-ANOVA, fANOVA or mean decrease impurity).",
    )(f)


def _ago(when: datetime | None) -> str:
    if when is None:
        return "-"
    seconds = (datetime.now() - when).total_seconds()
    if seconds < 0:
        return f"{when:%Y-%m-%d %H:%M}"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{when:%Y-%m-%d %H:%M} ({seconds / size:.0f} {unit} ago)"
    return f"{when:%Y-%m-%d %H:%M} ({seconds:.0f} s ago)"


def _print_status(studies: list[StudyStatus], storage: str) -> None:
    if not studies:
        click.echo(f"{storage}: no study yet")
        return
    click.echo(f"{storage}: {len(studies)} stud{'y' if len(studies) == 1 else 'ies'}")
    head = ("study", "configs", "complete", "paused", "stopped", "failed", "running", "waiting")
    names = max(len(shown(s.name)) for s in studies)
    width = max(names, 5)
    click.echo(f"{head[0]:<{width}} " + " ".join(f"{h:>8}" for h in head[1:]) + "  best")
    for s in studies:
        c = s.counts
        k = s.configs or {}
        best = "-" if s.best_value is None else f"{s.best_value:.4f} (trial {s.best_number})"
        stopped = k.get("pruned", 0) + k.get("stalled", 0) + k.get("diverged", 0)
        paused = k.get("paused", 0) + k.get("budget", 0)
        numbers = (
            sum(k.values()),
            k.get("complete", 0),
            paused,
            stopped,
            k.get("failed", 0),
            k.get("running", 0),
            k.get("waiting", 0),
        )
        name = shown(s.name)  # a name from another tool may hold newlines or terminal escapes
        click.echo(f"{name:<{width}} " + " ".join(f"{n:>8}" for n in numbers) + f"  {best}")
        if paused or stopped:
            from sweeper.search.configurations import counts_text

            click.echo(f"{'':<{width}}   configurations: {counts_text(k)}")
        click.echo(
            f"{'':<{width}}   {s.n_trials} trials (a configuration paused and continued is "
            f"several): {c['complete']} complete, {c['pruned']} pruned or paused, "
            f"{c['failed']} failed"
        )
        extra = f", {c['retried']} retried" if c["retried"] else ""
        if s.epochs_spent:
            budget = f" of {s.budget_epochs}" if s.budget_epochs else ""
            extra += f", {s.epochs_spent}{budget} epochs trained"
        click.echo(f"{'':<{width}}   last activity {_ago(s.last_activity)}{extra}")
        if s.artifacts:
            click.echo(f"{'':<{width}}   checkpoints shared in {shown(s.artifacts)}")
        elif paused:
            click.echo(
                f"{'':<{width}}   checkpoints on the machine that trained each configuration "
                "(no --artifacts: a continuation elsewhere restarts from epoch 0)"
            )
        for r in s.running:
            beat = "no heartbeat" if r.heartbeat is None else f"heartbeat {r.heartbeat:%H:%M:%S}"
            stale = (
                ", stale: its worker seems gone; the next run queues it again" if r.stale else ""
            )
            click.echo(
                f"{'':<{width}}   running trial {r.number} on {r.worker or '?'} ({beat}{stale})"
            )


@click.command()
@_storage
@_verbose
def status(storage: str | None, verbose: int) -> None:
    """Every study in the store and how far it has got.

    Trials by state, best value, last activity and the trials running now with their workers.

    \b
    Examples:
      sweeper status                                every study of the default store
      sweeper status --storage sqlite:///runs/b.db
      SWEEPER_STORAGE=postgresql://user@db-host/sweeper sweeper status
    """
    with _errors(verbose):
        from sweeper.analysis.store_status import status as read_status
        from sweeper.store.storage_url import mask_url, resolve_url

        studies = read_status(storage)
        _print_status(studies, mask_url(resolve_url(storage)))


def _params_text(params: dict[str, Any]) -> str:
    return "  ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in params.items()
        if k != "schedule"
    )


RULES = ("fraction", "epochs")  # checked against sweeper.training.schedule_base.RESCALE_RULES


@click.command()
@click.argument("study")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="How many of the best trials to list.",
)
@click.option(
    "--code",
    is_flag=True,
    help="Print the best trial's schedule and optimizer as Python code that needs "
    "Keras alone, for your own training script.",
)
@click.option(
    "--save-model",
    "model_file",
    metavar="FILE",
    help="Write the trained network of the study's best complete configuration to "
    "FILE (.keras), as kept by 'sweeper tune'.",
)
@click.option(
    "--trial",
    "number",
    type=click.IntRange(min=0),
    metavar="N",
    help="Hand over trial N instead of the best (--code and the rebuilt schedule).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    metavar="E",
    help="Rebuild the schedule for a run of E epochs [default: the trials' length].",
)
@click.option(
    "--steps-per-epoch",
    type=click.IntRange(min=1),
    metavar="S",
    help="... of S batches per epoch [default: the trials' own].",
)
@click.option(
    "--examples",
    type=click.IntRange(min=1),
    metavar="N",
    help="... of N training examples per epoch (with --batch-size), instead of -S.",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), metavar="B", help="The batch size of --examples."
)
@click.option(
    "--rule",
    type=click.Choice(RULES),
    default=None,
    help="How the schedule is rebuilt for another run: 'fraction' keeps every warm-up, "
    "drop and decay end at the same share of the run (the default); 'epochs' keeps "
    "what was tuned in epochs in epochs.",
)
@_storage
@_verbose
def best(
    study: str,
    top: int,
    code: bool,
    model_file: str | None,
    number: int | None,
    epochs: int | None,
    steps_per_epoch: int | None,
    examples: int | None,
    batch_size: int | None,
    rule: str | None,
    storage: str | None,
    verbose: int,
) -> None:
    """The best trials of STUDY, baselines beside them, and the winner handed over.

    Each with its value, schedule and searched parameters; then every baseline trial with its
    rank, the gain of the best tuned trial over the best baseline, and the confirmed winner of
    'sweeper confirm' (the best mean over several seeds; --code hands it over), or the command
    that confirms one.

    \b
    Examples (use what you tuned):
      sweeper best digits --code > schedule.py       Keras code: learning_rate, optimizer
      sweeper best digits --code --epochs 30 --examples 60000 --batch-size 64
      sweeper best digits --epochs 30                what the schedule becomes over 30 epochs
      sweeper best digits --save-model best.keras    the best configuration's trained network

    The kept model is the network the study trained, on the training split only, for the
    trials' length: use it as it is to predict or to fine-tune. For your final model, retrain
    with the tuned schedule for your own length and data (--code, or from Python
    result.best.optimizer(epochs=...)): the rule keeps the schedule's shape; 'sweeper evaluate'
    measures such retraining on the test split.
    """
    handover = (
        code
        or model_file is not None
        or any(v is not None for v in (number, epochs, steps_per_epoch, examples, batch_size, rule))
    )
    with _errors(verbose):
        from sweeper.analysis import queries as an

        data = an.load(storage, study)
        if handover:
            _hand_over(
                data,
                code,
                model_file,
                number,
                (epochs, steps_per_epoch, examples, batch_size, rule),
                url=storage,
            )
            return
        result = an.best_trials(data, top)
    from sweeper.search.configurations import (
        RESUMABLE,
        STOPPED,
        configurations,
        count_configurations,
    )
    from sweeper.search.configurations import counts_text as configs_text

    ranked = data.ranked()
    rank = {t.number: i + 1 for i, t in enumerate(ranked)}
    configs = configurations(data.trials)
    of_trial = {t.number: c for c in configs for t in c.trials}
    click.echo(
        f"study {study!r} in {data.storage}: {len(configs)} configurations "
        f"({configs_text(count_configurations(configs))}) in {len(data.trials)} trials, "
        f"val_accuracy ({data.direction})"
    )
    if not result.top:
        click.echo("no complete configuration yet")
    for t in result.top:
        mark = f"  [baseline: {an.baseline_of(t)}]" if an.baseline_of(t) else ""
        click.echo(
            f"{rank[t.number]:>4}. trial {t.number:<5} {t.value:.4f}  {an.describe(t)}{mark}"
        )
        duration = an.duration_of(t)
        seconds = "" if duration is None else f"  ({duration:.1f} s)"
        c = of_trial.get(t.number)
        chain = f"  {c.epochs} epochs, trials {c.chain}" if c and len(c.trials) > 1 else ""
        click.echo(f"      {_params_text(t.params) or '(no searched parameter)'}{seconds}{chain}")
    unfinished = sorted(
        (
            c
            for c in configs
            if c.state in (*RESUMABLE, *STOPPED) and c.value is not None and c.tuned
        ),
        key=lambda c: (-(c.value or 0.0), c.number),
    )[:top]
    if unfinished:
        resumes = any(c.state in RESUMABLE for c in unfinished)
        click.echo(
            "best configurations that did not complete"
            + (" (a paused one resumes when promoted):" if resumes else ":")
        )
        for c in unfinished:
            where = c.state_text() if c.state in RESUMABLE else f"{c.state} after epoch {c.epochs}"
            click.echo(
                f"      trial {c.last.number:<5} {c.value:.4f}  {where}  {an.describe(c.last)}"
                + (f"  (trials {c.chain})" if len(c.trials) > 1 else "")
            )
    if result.baselines:
        click.echo("baselines:")
        for t in result.baselines:
            where = f"rank {rank[t.number]}" if t.number in rank else an.outcome_of(t)
            value = f"{t.value:.4f}" if t.number in rank and t.value is not None else "-"
            click.echo(f"  trial {t.number:<5} {value:>6}  ({where})  {an.baseline_of(t)}")
    if result.gain is not None and result.best_tuned and result.best_baseline:
        click.echo(
            f"best tuned {result.best_tuned.value:.4f} (trial {result.best_tuned.number}) vs best "
            f"baseline {result.best_baseline.value:.4f} ({an.baseline_of(result.best_baseline)}): "
            f"gain {result.gain:+.4f}"
        )
    with user_errors():
        from sweeper.analysis.confirmed import confirmed
        from sweeper.retraining.confirmation import winner_text

        confirmation = confirmed(storage, data)
    if confirmation is not None:
        click.echo(winner_text(confirmation))


def _hand_over(
    data: Any,
    code: bool,
    model_file: str | None,
    number: int | None,
    run: tuple[int | None, int | None, int | None, int | None, str | None],
    *,
    url: str | None = None,
) -> None:
    """``best``'s hand-over: the code, the kept model, or the schedule rebuilt for a run; of
    the confirmed winner (``sweeper confirm``) when the study in the store at ``url`` has one,
    else of the best complete trial."""
    from sweeper.analysis import queries as an
    from sweeper.training.handover import steps_for

    epochs, spe, examples, batch_size, rule = run
    if (examples is None) != (batch_size is None):
        raise SweeperError("give --examples and --batch-size together (or --steps-per-epoch)")
    if examples is not None and spe is not None:
        raise SweeperError("give --steps-per-epoch or --examples with --batch-size, not both")
    if examples is not None and batch_size is not None:
        spe = steps_for(examples, batch_size)
    if model_file is not None:
        if number is not None or code or any(v is not None for v in (epochs, spe, rule)):
            raise SweeperError(
                "--save-model writes the kept model of the best configuration as it was "
                "trained; give it alone"
            )
        _save_model(data, model_file)
        return
    if number is None:
        from sweeper.analysis.confirmed import confirmed

        ranked = data.ranked()
        if not ranked:
            raise SweeperError(
                f"study {data.name!r} has no complete trial yet: nothing to hand over; "
                "tune on with 'sweeper tune' (or name a paused trial with --trial N)"
            )
        confirmation = confirmed(url, data)  # the confirmed winner when there is one
        winner = confirmation.winner if confirmation is not None else None
        trial = ranked[0] if winner is None else an.trial_by_number(data, winner.trial_number)
    else:
        trial = an.trial_by_number(data, number)
    tuned = an.tuned(data, trial)
    if tuned is None:
        raise SweeperError(
            f"trial {trial.number} of study {data.name!r} has no stored schedule or run length "
            "to hand over"
        )
    value = "" if trial.value is None else f" (val_accuracy {trial.value:.4f})"
    name = an.baseline_of(trial)
    title = f"tuned by sweeper: study {data.name!r}, trial {trial.number}{value}" + (
        f" [baseline: {name}]" if name else ""
    )
    if code:
        click.echo(tuned.code(spe, epochs, rule, title=title), nl=False)
        return
    horizon = tuned.horizon(epochs, spe, rule)
    click.echo(title)
    click.echo(f"  {tuned.length_line(horizon)}")
    click.echo(f"  schedule: {tuned.schedule_for(horizon).describe()}")
    click.echo(f"  optimizer: {tuned.optimizer_spec_for(horizon).describe()}")
    click.echo("  as code: add --code (same options)")


def _save_model(data: Any, model_file: str) -> None:
    """Copy the study's kept best model to ``model_file`` (no Keras needed: a file copy)."""
    import shutil

    from sweeper.search.best_model import kept_model
    from sweeper.search.worker import checkpoint_root

    target = Path(model_file)
    if target.suffix != ".keras":
        raise SweeperError(f"cannot write {model_file}: name the file .keras")
    if target.is_dir():
        raise SweeperError(f"cannot write {model_file}: it is a folder")
    kept = kept_model(
        data.user_attrs, checkpoint_root(None), data.name, completed=len(data.complete())
    )
    partial = target.with_name(f".{target.name}.partial")
    try:
        shutil.copyfile(kept.path, partial)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise SweeperError(f"cannot write {model_file}: {exc.strerror or exc}") from None
    click.echo(
        f"wrote {model_file}: the trained network of trial {kept.trial} (val_accuracy "
        f"{kept.value:.4f}); load it with keras.models.load_model (sweeper installed)"
    )


def _image_format(path: str) -> str:
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise SweeperError(f"cannot write {path}: name the file .png or .svg")
    return fmt


@click.command()
@click.argument("study")
@_evaluator
@click.option(
    "--max-trials",
    type=click.IntRange(min=2),
    help="Evaluate on a random sample of at most N configurations per scope "
    "[default: ped-anova 5000, fanova 100, mean-decrease-impurity 2000].",
)
@click.option(
    "--at-epoch",
    type=click.IntRange(min=1),
    metavar="N",
    help="Rank the configurations that trained N epochs, each with its accuracy after N "
    "[default: the deepest epoch count that at least 4 configurations trained].",
)
@click.option("--plot", "plot_file", metavar="FILE", help="Also draw the importances (.png/.svg).")
@_storage
@_verbose
def importance(
    study: str,
    evaluator: str,
    max_trials: int | None,
    at_epoch: int | None,
    plot_file: str | None,
    storage: str | None,
    verbose: int,
) -> None:
    """Parameter importance in STUDY at one epoch count, overall and per family.

    Every tuned configuration that trained that many epochs counts once, with its validation
    accuracy after them, whether it completed, paused at a rung or was stopped later: over all
    schedule families, then within each family (its own parameters exist only there). Baselines
    and the reference configuration are left out.

    \b
    Examples:
      sweeper importance digits
      sweeper importance digits --evaluator fanova --at-epoch 2
      sweeper importance digits --plot importance.png
    """
    with _errors(verbose):
        from sweeper.analysis import queries as an

        data = an.load(storage, study)
        report = an.importances(data, evaluator, at_epoch=at_epoch, max_trials=max_trials)
        epochs = an.importance_epochs(data)
        if plot_file:
            from sweeper.analysis import plots

            fmt = _image_format(plot_file)
            plots.save(
                plots.draw_importance(report, plots.importance_title(study, report)),
                Path(plot_file),
                fmt,
            )
    click.echo(
        f"{report.heading} (study {study!r}, {evaluator}; "
        f"{report.baselines_excluded} baseline or reference configuration(s) left out)"
    )
    for imp in [report.overall, *report.families]:
        sample = f", a sample of {imp.n_available}" if imp.n_trials < imp.n_available else ""
        click.echo(f"{imp.scope} ({imp.n_trials} configurations{sample})")
        width = max(len(n) for n in imp.values) if imp.values else 0
        for name, value in imp.values.items():
            click.echo(f"  {name:<{width}}  {value:6.1%}  {'#' * round(value * 40)}")
    for family, why in report.skipped.items():
        click.echo(f"{family}: not ranked, {why}")
    others = [
        f"{e} ({n})"
        for e, n in epochs.items()
        if e != report.epoch and n >= an.MIN_IMPORTANCE_TRIALS
    ]
    if others:
        click.echo(f"other epochs (--at-epoch N), configurations: {', '.join(others)}")
    if plot_file:
        click.echo(f"wrote {plot_file}")


STUDY_IN_STORE = "::"  # URL::STUDY, a study of another store than --storage


def _plot_sources(
    args: tuple[str, ...], storage: str | None
) -> tuple[list[tuple[str | None, str]], list[str]]:
    """``plot``'s arguments: the studies (the first argument, and every one before the first
    kind), each as (store URL, name), then the kinds."""
    from sweeper.analysis.plots import KINDS

    if len(args) < 2:
        raise ConfigError(
            f"name a plot kind after the study, e.g. 'sweeper plot {args[0] if args else 'STUDY'} "
            f"history'; kinds: {', '.join(KINDS)} (or all)"
        )
    known = {*KINDS, "all"}
    first = next((i for i in range(1, len(args)) if args[i] in known), len(args) - 1)
    sources = []
    for text in args[:first]:
        url, sep, name = text.rpartition(STUDY_IN_STORE)
        if sep and not (url and name):
            raise ConfigError(
                f"{text!r}: write a study of another store as URL::STUDY, e.g. "
                "sqlite:///runs/b.db::digits"
            )
        sources.append((url, name) if sep else (storage, text))
    return sources, list(args[first:])


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="STUDY... KIND...")
@click.option(
    "--out",
    "out_dir",
    metavar="DIR",
    default=".",
    show_default=True,
    help="Folder the images are written to (made when missing).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "svg"]),
    default="png",
    show_default=True,
    help="Image format.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="lr-curves: how many of the best trials are drawn.",
)
@click.option(
    "--family",
    metavar="F",
    help="parallel/slice/contour: this schedule family [default: the best].",
)
@_evaluator
@_storage
@_verbose
def plot(
    args: tuple[str, ...],
    out_dir: str,
    fmt: str,
    top: int,
    family: str | None,
    evaluator: str,
    storage: str | None,
    verbose: int,
) -> None:
    """Draw plots of STUDY into DIR/STUDY-KIND.FORMAT.

    KIND: history, anytime, importance, lr-curves, learning-curves, families, parallel, slice,
    contour, or all. A kind the study cannot show yet is skipped with its reason (exit status 1
    unless it came from "all"). anytime: the best validation accuracy against the epochs
    trained, baselines and the reference configuration marked.

    Several studies before the kind draw their anytime curves on one figure, to compare them at
    equal epochs: DIR/A-vs-B-anytime.FORMAT. A study of another store than --storage is
    written URL::STUDY.

    \b
    Examples:
      sweeper plot digits all --out plots
      sweeper plot digits-sgd digits-adamw anytime
      sweeper plot digits sqlite:///runs/b.db::digits anytime
    """
    with _errors(verbose):
        from sweeper.analysis.plots import PlotFiles, check_kinds, write_anytime, write_plots

        sources, kinds = _plot_sources(args, storage)
        if len(sources) == 1:
            url, study = sources[0]
            result = write_plots(
                url, study, kinds, out_dir, fmt, top=top, family=family, evaluator=evaluator
            )
        else:
            others = [k for k in check_kinds(kinds) if k != "anytime"]
            if others:
                raise ConfigError(
                    f"several studies are drawn on one figure by the anytime kind only; plot "
                    f"{', '.join(others)} of one study at a time"
                )
            result = PlotFiles([], {})
            try:
                result.paths.append(write_anytime(sources, out_dir, fmt))
            except PlotUnavailableError as exc:
                result.skipped["anytime"] = str(exc)
    for path in result.paths:
        click.echo(f"wrote {path}")
    for kind, why in result.skipped.items():
        click.echo(f"skipped {kind}: {why}", err=True)
    if result.skipped and ("all" not in kinds or not result.paths):
        sys.exit(1)


@click.command()
@click.argument("study")
@click.option(
    "--out",
    "out_dir",
    metavar="DIR",
    default=".",
    show_default=True,
    help="Folder the report is written to (made when missing).",
)
@click.option(
    "--top", type=click.IntRange(min=1), default=10, show_default=True, help="Best trials listed."
)
@_evaluator
@_storage
@_verbose
def report(
    study: str, out_dir: str, top: int, evaluator: str, storage: str | None, verbose: int
) -> None:
    """Write an HTML report of STUDY to DIR/STUDY-report.html.

    One self-contained page (images embedded) with the summary, best trials, baseline comparison,
    importance and every plot.

    \b
    Examples:
      sweeper report digits                         writes ./digits-report.html
      sweeper report digits --out report --top 20
    """
    with _errors(verbose):
        from sweeper.analysis.report import write_report

        path = write_report(storage, study, out_dir, top=top, evaluator=evaluator)
    click.echo(f"wrote {path}")


@click.command()
@click.argument("study")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    required=True,
    help="csv: one row per trial (per epoch with --epochs); json: one document of the trials.",
)
@click.option("--epochs", is_flag=True, help="The per-epoch records (JSON: nested in each trial).")
@click.option("--out", "out_file", metavar="FILE", help="Write to FILE [default: stdout].")
@_storage
@_verbose
def export(
    study: str, fmt: str, epochs: bool, out_file: str | None, storage: str | None, verbose: int
) -> None:
    """Export the trials of STUDY as CSV or JSON.

    \b
    Examples:
      sweeper export digits --format csv > trials.csv
      sweeper export digits --format json --epochs --out digits.json
    """
    with _errors(verbose):
        from sweeper.analysis import queries as an
        from sweeper.analysis.report import export_text

        data = an.load(storage, study)
        rows = an.read_epochs(storage, study) if epochs else None
        text = export_text(data, fmt, rows)
        if out_file:
            try:
                Path(out_file).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise SweeperError(f"cannot write {out_file}: {exc.strerror}") from None
    if out_file:
        click.echo(f"wrote {out_file}", err=True)
    else:
        sys.stdout.write(text)


def _parse_settings(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise SweeperError(f"--set {item!r}: write it as name=value, e.g. --set decay_rate=0.5")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[name.strip()] = value
    return out


@click.command()
@click.option(
    "--family", "families", multiple=True, metavar="F", help="A family (repeatable) [default: all]."
)
@click.option(
    "--steps",
    type=click.IntRange(min=10),
    default=1000,
    show_default=True,
    help="Optimizer steps drawn.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="A schedule parameter by its study-file name, e.g. initial_lr=0.05, decay_rate=0.5, "
    "drop_every=2 (epochs of a 10-epoch run), or a stored schedule's other fields, e.g. "
    "decay_steps=300 (optimizer steps) (repeatable).",
)
@click.option("--plot", "plot_file", metavar="FILE", help="Draw the curves (.png/.svg).")
@_verbose
def schedules(
    families: tuple[str, ...],
    steps: int,
    settings: tuple[str, ...],
    plot_file: str | None,
    verbose: int,
) -> None:
    """Draw schedule families' learning rates, without a study.

    Each family takes default parameters suited to --steps; --set overrides one in every family
    that has it.

    \b
    Examples:
      sweeper schedules                             every family, 1000 steps
      sweeper schedules --family step --family cosine --steps 2000 --plot shapes.png
      sweeper schedules --family exponential --set initial_lr=0.05 --set decay_rate=0.5
    """
    with _errors(verbose):
        from sweeper.analysis import plot_data, plots

        try:
            data = plot_data.schedule_curves_data(families, steps, _parse_settings(settings))
        except (ValueError, TypeError) as exc:
            raise SweeperError(
                f"--set {' '.join(settings)}: {exc}; give each setting a number, e.g. "
                "--set initial_lr=0.1"
            ) from None
        if plot_file:
            plots.save(plots.draw_schedules(data), Path(plot_file), _image_format(plot_file))
    marks = [0, steps // 4, steps // 2, 3 * steps // 4, steps - 1]
    index = [int(abs(data.steps - m).argmin()) for m in marks]
    click.echo("learning rate at step " + " / ".join(str(int(data.steps[i])) for i in index))
    for label, rates in data.curves:
        click.echo(f"  {' / '.join(f'{rates[i]:.3g}' for i in index)}  {label}")
    if plot_file:
        click.echo(f"wrote {plot_file}")


COMMANDS = (status, best, importance, plot, report, export, schedules)


def register(group: click.Group) -> None:
    """Add the read-only commands to the ``sweeper`` group."""
    for command in COMMANDS:
        group.add_command(command)
