"""Documents about one study: a self-contained HTML report, and CSV / JSON exports.

The report is a single HTML file with its figures embedded as base64 PNG data URIs and its style
inline, so it opens offline and can be mailed as it is. Exports list the trials (number, outcome,
value, parameters, schedule, baseline, duration), or with ``epochs`` their per-epoch records.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.analysis import plot_axes, plots, study_data
from sweeper.analysis import queries as an
from sweeper.analysis.anytime import anytime_data, read_ledger
from sweeper.analysis.confirmed import confirmed
from sweeper.errors import PlotUnavailableError, SweeperError, TooFewTrialsError
from sweeper.retraining.confirmation import winner_text
from sweeper.search import promotion as promo
from sweeper.search.trial_record import TrialRecord
from sweeper.store import optuna_ids
from sweeper.store.tables import EPOCH_FIELDS
from sweeper.studyfile.names import file_stem, shown

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from sweeper.retraining.confirmation import Confirmation

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "json")
METRIC = "val_accuracy"


# -- exports ----------------------------------------------------------------------------------------
def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def config_states(data: study_data.StudyData) -> dict[int, str]:
    """Configuration number -> where it stands (:mod:`sweeper.search.configurations`)."""
    from sweeper.search.configurations import configurations

    return {c.number: str(c.state) for c in configurations(data.trials)}


def trial_record(
    trial: FrozenTrial, config_states: Mapping[int, str] | None = None
) -> dict[str, Any]:
    """One trial as plain JSON-friendly values: ``state`` is how this trial (a segment of
    training) ended, ``config`` the configuration it belongs to and ``config_state`` where that
    configuration stands (from ``config_states``: configuration number -> state, when given)."""
    config = promo.config_of(trial)
    record = TrialRecord.of(trial)
    return {
        "number": trial.number,
        "config": config,
        "config_state": (config_states or {}).get(config),
        "state": an.outcome_of(trial),
        "value": _finite(trial.value) if trial.values else None,
        "family": an.family_of(trial),
        "schedule": an.describe(trial),
        "baseline": an.baseline_of(trial),
        "optimizer": record.optimizer,
        "duration_s": an.duration_of(trial),
        "datetime_start": trial.datetime_start.isoformat() if trial.datetime_start else None,
        "datetime_complete": (
            trial.datetime_complete.isoformat() if trial.datetime_complete else None
        ),
        "reason": record.reason,
        "params": {k: _finite(v) for k, v in trial.params.items()},
    }


_TRIAL_COLUMNS = (
    "number",
    "config",
    "config_state",
    "state",
    "value",
    "family",
    "schedule",
    "baseline",
    "optimizer",
    "duration_s",
    "datetime_start",
    "datetime_complete",
    "reason",
)
_EPOCH_FIELDS = EPOCH_FIELDS


def export_text(
    data: study_data.StudyData,
    fmt: str,
    epoch_rows: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The study's trials as CSV or JSON text; with ``epoch_rows``, their per-epoch records.

    JSON nests each trial's epochs in it (``"epochs": [...]``); CSV has one row per epoch, led by
    the trial's number, state, family and baseline.
    """
    if fmt not in EXPORT_FORMATS:
        raise SweeperError(
            f"unknown export format {fmt!r}; choose from: {', '.join(EXPORT_FORMATS)}"
        )
    states = config_states(data)
    records = [trial_record(t, states) for t in data.trials]
    by_trial: dict[int, list[dict[str, Any]]] = {}
    if epoch_rows is not None:
        number_of = {optuna_ids.trial_id(t): t.number for t in data.trials}
        for row in epoch_rows:
            number = number_of.get(int(row["trial_id"]))
            if number is not None:
                epoch = {k: _finite(row.get(k)) for k in _EPOCH_FIELDS}
                by_trial.setdefault(number, []).append(epoch)
    if fmt == "json":
        if epoch_rows is not None:
            for r in records:
                r["epochs"] = by_trial.get(r["number"], [])
        doc = {"study": data.name, "direction": data.direction, "trials": records}
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"

    buf = io.StringIO()
    if epoch_rows is not None:
        head = ["trial", "state", "family", "baseline"]
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*head, *_EPOCH_FIELDS])
        for r in records:
            for e in by_trial.get(r["number"], []):
                lead = [r["number"], r["state"], r["family"], r["baseline"] or ""]
                writer.writerow([*lead, *(_cell(e[k]) for k in _EPOCH_FIELDS)])
        return buf.getvalue()
    names = sorted({k for r in records for k in r["params"]})
    columns = _TRIAL_COLUMNS
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*columns, *(f"param_{n}" for n in names)])
    for r in records:
        writer.writerow(
            [*(_cell(r[c]) for c in columns), *(_cell(r["params"].get(n)) for n in names)]
        )
    return buf.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value


# -- the HTML report ------------------------------------------------------------------------------
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.baseline td { background: #fff6e5; } .muted { color: #777; } .gain { font-weight: bold; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } code { font-size: 0.95em; }
"""

_CAPTIONS = {
    "anytime": "Best validation accuracy of the search after each epoch trained (every trial's, "
    "in training order); shaded: the baselines' epochs; dashed: the best baseline; diamond: "
    "where the reference configuration completed.",
    "history": "Final validation accuracy of every complete trial, best so far in red; pruned and diverged trials at their last reported value.",
    "families": "Final validation accuracy by schedule family; star: best, diamond: baseline.",
    "lr-curves": "Learning rate applied at each optimizer step by the best trials (dashed: the "
    "best baseline).",
    "learning-curves": "Validation accuracy after each epoch of every trial; pruned ones in grey.",
    "importance": "Share of the variation in validation accuracy due to each parameter.",
    "parallel": "Parameters of one family's complete trials against their validation accuracy.",
    "slice": "Validation accuracy against each parameter of one family.",
    "contour": "Validation accuracy over pairs of one family's parameters (interpolated).",
}


def _e(value: Any) -> str:
    """``value`` as HTML text: escaped, and its control characters (a study name from another
    tool may hold ESC) made visible, as on the console."""
    return html.escape(shown(str(value)))


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _numeric(value: Any) -> bool:
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value).rstrip("%"))
    except ValueError:
        return False
    return True


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str] = ()) -> str:
    out = ["<table><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if _numeric(c) else f"<td>{_e(c)}</td>" for c in row
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def _params(trial: FrozenTrial) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in trial.params.items()
        if k != "schedule"
    )


def _trial_rows(trials: Sequence[FrozenTrial], rank: Mapping[int, int]) -> list[list[Any]]:
    return [
        [
            rank.get(t.number, "-"),
            t.number,
            an.outcome_of(t),
            _num(t.value) if t.values else "-",
            an.baseline_of(t) or "",
            an.describe(t),
            _params(t),
            _num(an.duration_of(t), 1),
        ]
        for t in trials
    ]


def _figure_html(kind: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="plot-{kind}"><img alt="{kind} plot" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{_e(kind)}</b>: {_e(_CAPTIONS.get(kind, ''))}</figcaption></figure>"
    )


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=plot_axes.DPI)
    plots.close(fig)
    return buf.getvalue()


def _summary_html(data: study_data.StudyData) -> str:
    c = an.counts(data)
    summary = {
        "trials": len(data.trials),
        **{k: c[k] for k in ("complete", "pruned", "diverged", "failed")},
        **{k: c[k] for k in ("running", "waiting", "retried")},
        "epochs": data.epochs or "-",
        "steps per epoch": data.steps_per_epoch or "-",
    }
    from sweeper.search.configurations import configurations, count_configurations, counts_text

    configs = configurations(data.trials)
    parts = [
        f"<p>{len(configs)} configurations: {_e(counts_text(count_configurations(configs)))}.</p>",
        _table(list(summary), [list(summary.values())]),
        "<p class='muted'>Trials are segments of training: a configuration paused at a rung "
        "and continued later is several trials. diverged: pruned because the loss became NaN "
        "or infinite; retried: failed, then queued again with the same parameters.</p>",
    ]
    ranked = data.ranked()
    if ranked:
        b = ranked[0]
        parts.append(
            f"<p>Best trial: <b>#{b.number}</b>, {METRIC} <b>{_num(b.value)}</b>, "
            f"<code>{_e(an.describe(b))}</code></p>"
        )
    return "\n".join(parts)


def _trials_html(data: study_data.StudyData, top: int) -> str:
    best = an.best_trials(data, top)
    rank = {t.number: i + 1 for i, t in enumerate(data.ranked())}
    parts = ["<h2>Baseline comparison</h2>"]
    bt, bb = best.best_tuned, best.best_baseline
    if bt is not None and bb is not None:
        parts.append(
            f"<p>Best tuned trial #{bt.number}: {_num(bt.value)} · best baseline "
            f"{_e(an.baseline_of(bb))} (#{bb.number}): {_num(bb.value)} · "
            f"<span class='gain'>gain {best.gain:+.4f}</span></p>"
        )
    elif bb is None:
        parts.append("<p class='muted'>No complete baseline trial.</p>")
    else:
        parts.append("<p class='muted'>No complete tuned trial besides the baselines yet.</p>")
    head = ["rank", "trial", "state", METRIC, "baseline", "schedule", "parameters", "seconds"]
    if best.baselines:
        classes = ["baseline"] * len(best.baselines)
        parts.append(_table(head, _trial_rows(best.baselines, rank), classes))
    parts.append(f"<h2>Best {len(best.top)} trials</h2>")
    if best.top:
        classes = ["baseline" if an.baseline_of(t) else "" for t in best.top]
        parts.append(_table(head, _trial_rows(best.top, rank), classes))
    else:
        parts.append("<p class='muted'>No complete trial yet.</p>")
    return "\n".join(parts)


def _confirmed_html(c: Confirmation | None) -> str:
    """``sweeper confirm``'s verdict: each configuration's mean ± standard error over its seeds,
    the winner and the probability that it beats the runner-up; or how to get one."""
    if c is None:
        return "<p class='muted'>No complete configuration besides the baselines yet.</p>"
    parts = [f"<p>{_e(winner_text(c))}</p>"]
    if not any(x.runs for x in c.configs):
        parts.append(
            "<p class='muted'>The study's ranking rests on one validation run per "
            "configuration; <code>sweeper confirm</code> retrains the best few with several "
            "seeds (on the training split, scored on validation) and names the best mean.</p>"
        )
        return "\n".join(parts)
    head = ["rank", "trial", "schedule", METRIC, f"confirmed ({c.seeds} seeds)", "runs"]
    rows = [
        [
            x.rank,
            x.trial_number,
            x.label,
            _num(x.study_value),
            "-" if x.mean is None else _num(x.mean) + ("" if x.se is None else f" ± {x.se:.4f}"),
            len(x.runs),
        ]
        for x in c.configs
    ]
    parts.append(_table(head, rows))
    return "\n".join(parts)


def build_report(
    url: str | None, study_name: str, *, top: int = 10, evaluator: str = "ped-anova"
) -> str:
    """The report of one study as an HTML page."""
    data = an.load(url, study_name)
    epoch_rows = an.read_epochs(url, study_name)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>sweeper report: {_e(study_name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Study {_e(study_name)}</h1>",
        f"<p class='muted'>{_e(data.storage)} · {len(data.trials)} trials · objective: "
        f"{_e(METRIC)} ({_e(data.direction)}d) · generated {datetime.now():%Y-%m-%d %H:%M}</p>",
        "<h2>Summary</h2>",
        _summary_html(data),
        _trials_html(data, top),
        "<h2>Confirmed winner</h2>",
        _confirmed_html(confirmed(url, data)),
        "<h2>Anytime curve</h2>",
        _anytime_html(data, read_ledger(url, study_name)),
    ]
    report: an.ImportanceReport | None = None
    try:
        report = an.importances(data, evaluator)
        parts.append(f"<h2>Parameter {_e(report.heading)} ({_e(evaluator)})</h2>")
        parts.append(_importance_html(report))
    except TooFewTrialsError as exc:
        parts.append(f"<h2>Parameter importance ({_e(evaluator)})</h2>")
        parts.append(f"<p class='muted'>{_e(exc)}</p>")

    parts.append("<h2>Plots</h2>")
    for kind in (k for k in plots.KINDS if k != "anytime"):  # anytime: a section of its own
        if kind == "importance" and report is None:
            continue
        try:
            fig = plots.draw(
                data,
                kind,
                top=min(top, 5),
                evaluator=evaluator,
                importance=report,
                epoch_rows=epoch_rows,
            )
        except SweeperError as exc:
            parts.append(f"<p class='muted'><b>{_e(kind)}</b>: {_e(exc)}</p>")
            continue
        parts.append(_figure_html(kind, _png(fig)))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _anytime_html(data: study_data.StudyData, ledger: Sequence[Mapping[str, Any]]) -> str:
    """The anytime curve's section: the search's best after each quarter of the epochs
    trained, the best baseline, the reference's completion, and the figure."""
    try:
        curve = anytime_data(data, ledger)
    except PlotUnavailableError as exc:
        return f"<p class='muted'>{_e(exc)}</p>"
    n = curve.epochs
    marks = sorted({max(1, round(n * share)) for share in (0.25, 0.5, 0.75, 1.0)})
    found = [(m, v) for m in marks if (v := curve.best_after(m)) is not None]
    after = ", ".join(f"{_num(v)} after {m}" for m, v in found) + " epochs"
    text = (
        f"<p>{n} epochs trained, {curve.baseline_epochs} of them by the baselines. Best "
        f"{METRIC} of the search (any epoch of any configuration, paused and stopped ones "
        f"included): {after if found else 'none yet'}."
    )
    if curve.best_baseline is not None:
        text += f" Best baseline: {_num(curve.best_baseline)}."
    if curve.reference_epochs is not None:
        text += (
            f" The reference configuration completed at epoch {curve.reference_epochs} with "
            f"{_num(curve.reference_value)}."
        )
    fig = plots.draw_anytime([curve], plots.anytime_title([data.name]))
    return f"{text}</p>\n{_figure_html('anytime', _png(fig))}"


def _importance_html(report: an.ImportanceReport) -> str:
    scopes = [report.overall, *report.families]
    names = list(report.overall.values)
    names += sorted({n for s in report.families for n in s.values} - set(names))
    rows = [[n, *(f"{s.values[n]:.1%}" if n in s.values else "" for s in scopes)] for n in names]
    head = ["parameter", *(f"{s.scope} ({s.n_trials})" for s in scopes)]
    out = [
        f"<p>Every tuned configuration that trained {report.epoch} epochs, once, with its "
        f"{_e(METRIC)} after them, whether it completed, paused or stopped later "
        f"({report.baselines_excluded} baseline or reference configuration(s) left out; another "
        "epoch count: <code>sweeper importance STUDY --at-epoch N</code>). Scopes larger than the "
        "sample size are sampled. Column: scope (configurations used).</p>",
        _table(head, rows),
    ]
    if report.skipped:
        out.append(
            "<p class='muted'>Not ranked: "
            + "; ".join(f"{_e(f)} ({_e(w)})" for f, w in report.skipped.items())
            + "</p>"
        )
    return "\n".join(out)


def write_report(
    url: str | None,
    study_name: str,
    out_dir: str | Path = ".",
    *,
    top: int = 10,
    evaluator: str = "ped-anova",
) -> Path:
    """Write ``out_dir/<study>-report.html``; its path."""
    page = build_report(url, study_name, top=top, evaluator=evaluator)
    path = Path(out_dir) / f"{file_stem(study_name)}-report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    log.info("wrote %s", path)
    return path
