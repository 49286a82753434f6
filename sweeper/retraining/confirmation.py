"""What the runs of ``confirm`` say: a winner that survives the noise of a single run.

A study picks its best configuration on one validation run each, with one seed; at small data
sizes the ranking of the top few is within the noise of that one run. ``confirm``
(:mod:`sweeper.retraining.confirm`) retrains the ``top`` best complete configurations (baselines
excluded, the reference configuration included: it is a real candidate) ``seeds`` times each,
with seeds the study did not use, and stores each run's validation accuracy
(``sweeper_confirmations``). This module turns those runs into a :class:`Confirmation`: per
configuration the mean and its standard error, the winner (the best mean), and the probability
that the winner beats the runner-up, paired over the seeds both ran.

That probability is the paired t-test's, read as a probability: with ``d_i`` the winner's
accuracy minus the runner-up's on seed ``i`` (the same seed gives both the same initial
weights and the same batches), ``n`` seeds, mean ``d`` and sample standard deviation ``s``,
``P = T_{n-1}(d / (s / sqrt(n)))``, Student's t distribution with ``n - 1`` degrees of freedom.
It is one minus the one-sided paired t-test's p-value, and the posterior probability that the
winner's mean is the higher under the t model with a flat prior. The share of seeds on which the
winner was ahead is given beside it.

No Keras, no store: the read side (:mod:`sweeper.analysis.confirmed`) and ``confirm`` share it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sweeper.search.configurations import ConfigState, Configuration
from sweeper.search.outcomes import describe

DEFAULT_TOP = 3
DEFAULT_SEEDS = 3
MIN_SEEDS = 2  # a spread needs two runs


@dataclass(frozen=True)
class ConfirmRun:
    """One retraining of one configuration, scored on the validation split."""

    config_number: int  # the configuration (its first trial's number)
    trial_number: int  # its complete trial
    repeat: int  # 0-based
    seed: int
    val_accuracy: float  # 0 when it diverged
    val_loss: float | None  # None when it diverged
    seconds: float


@dataclass(frozen=True)
class ConfirmedConfig:
    """One configuration of the top, its study value and its confirming runs."""

    config_number: int
    trial_number: int  # its complete trial (the one ``best`` and ``result.best`` name)
    rank: int  # 1-based, by the study's single validation run
    study_value: float
    label: str  # its schedule (and optimizer) in one line
    reference: bool  # the reference configuration
    runs: tuple[ConfirmRun, ...]  # by repeat

    @property
    def accuracies(self) -> list[float]:
        return [r.val_accuracy for r in self.runs]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.accuracies) if self.runs else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation of its runs (None below two)."""
        return statistics.stdev(self.accuracies) if len(self.runs) > 1 else None

    @property
    def se(self) -> float | None:
        """Standard error of :attr:`mean` (None below two runs)."""
        std = self.std
        return None if std is None else std / math.sqrt(len(self.runs))


@dataclass(frozen=True)
class Comparison:
    """The winner against the runner-up, paired over the seeds both ran."""

    winner: ConfirmedConfig
    runner_up: ConfirmedConfig
    seeds: int  # seeds both ran
    ahead: int  # seeds on which the winner scored higher
    ties: int  # seeds on which both scored the same
    probability: float | None  # P(winner's mean > runner-up's), paired t; None below 2 seeds

    @property
    def difference(self) -> float:
        """The winner's mean minus the runner-up's over the seeds both ran."""
        a, b = _paired(self.winner, self.runner_up)
        return statistics.fmean(x - y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class Confirmation:
    """The confirmation of a study's top ``top`` configurations with ``seeds`` seeds each."""

    study_name: str
    top: int
    seeds: int
    epochs: int  # each run's length: the study's
    configs: tuple[ConfirmedConfig, ...]  # by the study's rank
    trained: int = 0  # runs this call trained (0 when read from the store)
    epochs_trained: int = 0  # epochs this call trained, every started run's included
    epochs_spent: int | None = None  # the study's ledger after this call (None when read)
    budget_epochs: int | None = None  # the study's epoch budget, if it has one

    @property
    def missing(self) -> int:
        """Runs still to train before the top is confirmed."""
        return sum(max(0, self.seeds - len(c.runs)) for c in self.configs)

    @property
    def complete(self) -> bool:
        return bool(self.configs) and self.missing == 0

    @property
    def ranked(self) -> list[ConfirmedConfig]:
        """Configurations by mean (ties: the study's rank); those without a run last."""
        return sorted(
            self.configs,
            key=lambda c: (c.mean is None, -(c.mean or 0.0), c.rank),
        )

    @property
    def winner(self) -> ConfirmedConfig | None:
        """The best mean, once every run is in (None before)."""
        return self.ranked[0] if self.complete else None

    @property
    def study_best(self) -> ConfirmedConfig | None:
        """The configuration the study's single runs ranked first."""
        return self.configs[0] if self.configs else None

    @property
    def changed(self) -> bool:
        """Whether the confirmed winner is not the study's validation-best configuration."""
        winner, first = self.winner, self.study_best
        return winner is not None and first is not None and winner is not first

    @property
    def comparison(self) -> Comparison | None:
        """The winner against the runner-up (None with a single configuration or before every
        run is in)."""
        ranked = self.ranked
        if not self.complete or len(ranked) < 2:
            return None
        return compare(ranked[0], ranked[1])


def _paired(a: ConfirmedConfig, b: ConfirmedConfig) -> tuple[list[float], list[float]]:
    """The accuracies of ``a`` and ``b`` on the repeats (seeds) both ran, in repeat order."""
    theirs = {r.repeat: r.val_accuracy for r in b.runs}
    common = [r for r in a.runs if r.repeat in theirs]
    return [r.val_accuracy for r in common], [theirs[r.repeat] for r in common]


def compare(winner: ConfirmedConfig, runner_up: ConfirmedConfig) -> Comparison:
    a, b = _paired(winner, runner_up)
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    ahead, ties = sum(d > 0 for d in diffs), sum(d == 0 for d in diffs)
    return Comparison(winner, runner_up, len(diffs), ahead, ties, paired_probability(diffs))


def paired_probability(diffs: Sequence[float]) -> float | None:
    """P(the mean difference > 0) from paired differences: Student's t with ``n - 1`` degrees
    of freedom at ``mean / (sd / sqrt(n))``, i.e. one minus the one-sided paired t-test's
    p-value (None below two differences; 1, 0 or 0.5 when every difference is the same)."""
    n = len(diffs)
    if n < 2:
        return None
    mean = statistics.fmean(diffs)
    sd = statistics.stdev(diffs)
    if sd == 0.0:
        return 1.0 if mean > 0 else 0.0 if mean < 0 else 0.5
    return student_t_cdf(mean / (sd / math.sqrt(n)), n - 1)


def student_t_cdf(t: float, df: int) -> float:
    """Student's t distribution's CDF with ``df`` degrees of freedom at ``t`` (through the
    regularized incomplete beta function: no SciPy needed)."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (Numerical Recipes' betai)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for aa in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


# --------------------------------------------------------------------------------------------
# The candidates, and the runs that confirm them
# --------------------------------------------------------------------------------------------


def candidates(configs: Iterable[Configuration]) -> list[Configuration]:
    """The complete configurations that may win, best validation value first: every complete
    configuration but the baselines (the reference configuration included)."""
    out = [
        c
        for c in configs
        if c.state is ConfigState.COMPLETE and c.baseline is None and c.value is not None
    ]
    out.sort(key=lambda c: (-float(c.value or 0.0), c.number))
    return out


def confirmation(
    study_name: str,
    top: Sequence[Configuration],
    runs: Iterable[ConfirmRun],
    *,
    seeds: int,
    epochs: int,
    trained: int = 0,
    epochs_trained: int = 0,
    epochs_spent: int | None = None,
    budget_epochs: int | None = None,
) -> Confirmation:
    """The confirmation of the configurations ``top`` (best first) by the stored ``runs`` of
    repeats ``0 .. seeds - 1`` (runs of other configurations or repeats are left out)."""
    by_config: dict[int, dict[int, ConfirmRun]] = {}
    for r in runs:
        if r.repeat < seeds:
            by_config.setdefault(r.config_number, {}).setdefault(r.repeat, r)
    configs = tuple(
        ConfirmedConfig(
            config_number=c.number,
            trial_number=c.last.number,
            rank=i + 1,
            study_value=float(c.value or 0.0),
            label=describe(c.last),
            reference=c.reference,
            runs=tuple(sorted(by_config.get(c.number, {}).values(), key=lambda r: r.repeat)),
        )
        for i, c in enumerate(top)
    )
    return Confirmation(
        study_name,
        len(configs),
        seeds,
        epochs,
        configs,
        trained,
        epochs_trained,
        epochs_spent,
        None if budget_epochs is None else int(budget_epochs),
    )


def confirm_command(study_name: str, top: int, seeds: int) -> str:
    """The command line that confirms (or completes the confirmation of) the study."""
    import shlex

    from sweeper.studyfile.names import shown

    return f"sweeper confirm {shlex.quote(shown(study_name))} --top {top} --seeds {seeds}"


# --------------------------------------------------------------------------------------------
# In words: one text for the command line, the read side and the API
# --------------------------------------------------------------------------------------------


def winner_text(c: Confirmation) -> str:
    """``confirmed winner: trial 7 (mean 0.9712 ± 0.0011 over 3 seeds; beats trial 12 with
    probability 0.83, ...)``, or ``not confirmed yet: sweeper confirm ...`` while runs are
    missing (or the top changed since)."""
    winner = c.winner
    if winner is None:
        stored = sum(min(len(x.runs), c.seeds) for x in c.configs)
        have = f" ({stored} of {c.top * c.seeds} runs stored)" if stored else ""
        return f"not confirmed yet{have}: {confirm_command(c.study_name, c.top, c.seeds)}"
    spread = "" if winner.se is None else f" ± {winner.se:.4f}"
    text = (
        f"confirmed winner: trial {winner.trial_number} (mean {winner.mean or 0.0:.4f}{spread} "
        f"over {len(winner.runs)} seeds"
    )
    cmp = c.comparison
    if cmp is None:
        return text + "; no other configuration to compare with)"
    if cmp.probability is None:
        return text + f"; ahead of trial {cmp.runner_up.trial_number})"
    return (
        text + f"; beats trial {cmp.runner_up.trial_number} with probability "
        f"{probability_text(cmp.probability)}, paired t over {cmp.seeds} seeds, ahead on "
        f"{cmp.ahead} of them{f', {cmp.ties} tied' if cmp.ties else ''})"
    )


def probability_text(p: float) -> str:
    """``0.83``; ``> 0.99`` and ``< 0.01`` rather than a certain-looking 1.00 or 0.00."""
    if p >= 0.995:
        return "> 0.99"
    if p < 0.005:
        return "< 0.01"
    return f"{p:.2f}"


def summary_lines(c: Confirmation) -> list[str]:
    """What a confirmation says, after its table: the winner, and whether it is the study's
    validation-best configuration."""
    lines = [winner_text(c)]
    winner, first = c.winner, c.study_best
    if winner is None or first is None:
        return lines
    if c.changed:
        lines.append(
            f"the study's validation-best run (trial {first.trial_number}, "
            f"{first.study_value:.4f}) is not the winner: 'sweeper best' and result.best now "
            f"name trial {winner.trial_number}"
        )
    else:
        lines.append("the winner is the study's validation-best configuration")
    cmp = c.comparison
    if cmp is not None and cmp.probability is not None and cmp.probability < 0.9:
        lines.append(
            f"the top two are within the noise (probability {cmp.probability:.2f} < 0.9); more "
            f"seeds may separate them: {confirm_command(c.study_name, c.top, c.seeds + 2)}"
        )
    return lines
