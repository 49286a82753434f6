"""The tuned schedule as a self-contained Keras snippet, for a training script without sweeper.

:func:`keras_code` writes the Python source that rebuilds a schedule (a family of
:mod:`sweeper.training.families`) and an :class:`~sweeper.training.optimizers.OptimizerSpec`
with Keras alone: it imports ``keras`` (and ``math`` where a formula needs it) and defines two
names, ``learning_rate`` (a ``keras.optimizers.schedules.LearningRateSchedule``, or a float for a
constant rate) and ``optimizer``. The user pastes it into their script and passes ``optimizer``
to ``model.compile``.

Each family writes its own ``learning_rate`` (``Schedule.learning_rate_code``) with the pieces
here: Keras's own schedule classes wherever one gives the same curve (step decay becomes a
``PiecewiseConstantDecay`` with the drops of the run it is written for); the shapes Keras does
not ship (linear, wsd, rex, shape, one_cycle) a small ``LearningRateSchedule`` subclass in
``keras.ops``, written out from :mod:`sweeper.training.keras_schedules` (which keeps its relative
precision to the end of a decay to zero in float32, where Keras's ``PolynomialDecay`` does not):
:func:`warmup_stable_decay_code`, :func:`one_cycle_code`. Every number is written with ``repr``,
never rounded (:func:`literal`).

Keras has no schedule-free optimizer: for ``sgd_schedule_free`` and ``adamw_schedule_free`` the
snippet still defines ``learning_rate`` with Keras alone, then, below the line
:data:`NEEDS_SWEEPER`, imports the optimizer from sweeper.

Nothing here imports Keras: the read-only side imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sweeper.training.optimizers import OptimizerSpec
from sweeper.training.schedule_base import Schedule

NEEDS_SWEEPER = "# -- needs sweeper: Keras has no schedule-free optimizer"
"""The line of a schedule-free optimizer's snippet above which Keras alone is enough."""

KERAS_SCHEDULES = "keras.optimizers.schedules"
"""Where Keras's own schedule classes are, as a snippet names them."""
# OptimizerSpec.name -> the Keras optimizer class (OptimizerSpec.build's choice)
_KERAS_OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
}
_SCHEDULE_FREE = {
    "sgd_schedule_free": "SGDScheduleFree",
    "adamw_schedule_free": "AdamWScheduleFree",
}
# the custom classes are registered, so that a model saved with them loads again
_REGISTER = '@keras.saving.register_keras_serializable(package="tuned_schedule")'


def keras_code(
    schedule: Schedule,
    optimizer: OptimizerSpec,
    *,
    total_steps: int,
    comment: Sequence[str] = (),
) -> str:
    """Python source that defines ``learning_rate`` and ``optimizer`` with Keras alone.

    ``total_steps`` is the number of optimizer updates of the run the snippet is for: it fixes
    the drops a step decay writes out and the length of a schedule-free optimizer's warm-up.
    Each line of ``comment`` heads the text as a ``# `` comment.
    """
    if isinstance(total_steps, bool) or int(total_steps) != total_steps or total_steps < 1:
        raise ValueError(f"total_steps must be a whole number >= 1, got {total_steps!r}")
    head = [f"# {line}".rstrip() for text in comment for line in (text.splitlines() or [""])]
    rate = schedule.learning_rate_code(int(total_steps))
    body = "\n".join(rate)
    imports = ["import keras"] + (["import math"] if "math." in body else [])
    gap = ["", ""] if rate[0].startswith("@") else [""]  # two blank lines above a class
    lines = [*head, *imports, *gap, *rate, "", *_optimizer_code(optimizer, int(total_steps))]
    return "\n".join(lines) + "\n"


def _optimizer_code(spec: OptimizerSpec, total_steps: int) -> list[str]:
    if spec.schedule_free:
        cls = _SCHEDULE_FREE[spec.name]
        # as OptimizerSpec.build counts it
        warmup = round(spec.warmup * total_steps)
        return [
            NEEDS_SWEEPER,
            f"from sweeper.training.schedule_free import {cls}",
            "",
            f"optimizer = {cls}(learning_rate=learning_rate, warmup_steps={warmup!r})",
            "# sweeper validated at its averaged weights: "
            "model.fit(..., callbacks=[EvaluateAtAverage()])",
            "# with EvaluateAtAverage from sweeper.training.schedule_free",
        ]
    cls = _KERAS_OPTIMIZERS[spec.name]
    args = {"learning_rate": "learning_rate"}
    if spec.name == "sgd":
        args |= {"momentum": literal(spec.momentum), "nesterov": repr(bool(spec.nesterov))}
    return assignment("optimizer", f"keras.optimizers.{cls}", args)


# The classes of keras_schedules written out (kept in step with them: the snippets' rates equal
# the twins' bit for bit, tests/training/test_schedule_code.py).
# WarmupStableDecay with its one decay profile: the decay's height over its remaining fraction v (1 at its start, 0 at its end), in the forms of
# keras_schedules that keep their relative precision as v -> 0
_PROFILES = {
    "polynomial": ("polynomial: v ** exponent", "ops.power(v, ops.cast(self.exponent, dtype))"),
    "linear": ("linear: v", "v"),
    "cosine": ("cosine: (1 + cos(pi (1 - v))) / 2", "ops.square(ops.sin((0.5 * math.pi) * v))"),
    "1-sqrt": ("1-sqrt: 1 - sqrt(1 - v)", "(v / (1.0 + ops.sqrt(1.0 - v)))"),
    "rex": ("REX: v / (1/2 + v / 2)", "(v / (0.5 + 0.5 * v))"),
}

_WSD = f'''\
{_REGISTER}
class WarmupStableDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 over warmup_steps, initial_learning_rate held until decay_start,
    then a decay to end_learning_rate at step decay_steps, held after it; the decay's height
    over its remaining fraction v = (decay_steps - step) / (decay_steps - decay_start) is
    {{formula}}."""

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_start=0.0,
        warmup_steps=0.0,
        end_learning_rate=0.0,{{exponent_arg}}
        name="WarmupStableDecay",
    ):
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_start = decay_start
        self.warmup_steps = warmup_steps
        self.end_learning_rate = end_learning_rate{{exponent_set}}
        self.name = name

    def __call__(self, step):
        ops = keras.ops
        lr = ops.convert_to_tensor(self.initial_learning_rate)
        dtype = lr.dtype
        t = ops.cast(step, dtype)
        end = ops.cast(self.end_learning_rate, dtype)
        span = float(self.decay_steps) - float(self.decay_start)
        if span > 0:
            v = ops.clip((ops.cast(self.decay_steps, dtype) - t) / span, 0.0, 1.0)
        else:  # no decay: the peak up to decay_steps, the end rate after it
            v = ops.cast(ops.less_equal(t, ops.cast(self.decay_steps, dtype)), dtype)
        out = end + (lr - end) * {{height}}
        out = ops.where(ops.less(t, ops.cast(self.decay_start, dtype)), lr, out)
        if self.warmup_steps > 0:
            warm = lr * t / ops.cast(self.warmup_steps, dtype)
            out = ops.where(ops.less(t, ops.cast(self.warmup_steps, dtype)), warm, out)
        return out

    def get_config(self):
        return {{{{
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_start": self.decay_start,
            "warmup_steps": self.warmup_steps,
            "end_learning_rate": self.end_learning_rate,{{exponent_config}}
            "name": self.name,
        }}}}'''


def warmup_stable_decay_code(
    initial_lr: float,
    *,
    decay_steps: float,
    decay_start: float,
    warmup_steps: float,
    end_lr: float,
    profile: str,
    exponent: float = 1.0,
) -> list[str]:
    """``learning_rate`` as keras_schedules.WarmupStableDecay with one decay ``profile`` (the
    linear, wsd, rex and shape families), the class written out with that profile alone."""
    formula, height = _PROFILES[profile]
    polynomial = profile == "polynomial"
    cls = _WSD.format(
        formula=formula,
        height=height,
        exponent_arg="\n        exponent=1.0," if polynomial else "",
        exponent_set="\n        self.exponent = exponent" if polynomial else "",
        exponent_config='\n            "exponent": self.exponent,' if polynomial else "",
    )
    args = {
        "initial_learning_rate": literal(initial_lr),
        "decay_steps": literal(decay_steps),
        "decay_start": literal(decay_start),
        "warmup_steps": literal(warmup_steps),
        "end_learning_rate": literal(end_lr),
    }
    if polynomial:
        args["exponent"] = literal(exponent)
    return [*cls.splitlines(), "", "", *assignment("learning_rate", "WarmupStableDecay", args)]


_ONE_CYCLE = f'''\
{_REGISTER}
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's 1cycle as PyTorch's OneCycleLR computes it (cosine annealing, two phases): from
    max_learning_rate / div_factor up to max_learning_rate at step pct_start * total_steps - 1,
    then down to max_learning_rate / (div_factor * final_div_factor) at step total_steps - 1."""

    def __init__(
        self,
        max_learning_rate,
        total_steps,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        name="OneCycle",
    ):
        super().__init__()
        self.max_learning_rate = max_learning_rate
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.name = name

    def __call__(self, step):
        ops = keras.ops
        peak = ops.convert_to_tensor(self.max_learning_rate)
        t = ops.cast(step, peak.dtype)
        start = float(self.max_learning_rate) / float(self.div_factor)
        end = start / float(self.final_div_factor)
        e1 = float(self.pct_start) * float(self.total_steps) - 1.0
        e2 = float(self.total_steps) - 1.0
        half_pi = 0.5 * math.pi
        # each phase written from its low end (the sin^2 form of the cosine anneal): exact ends
        up = start + (peak - start) * ops.square(ops.sin(half_pi * ops.clip(t / e1, 0.0, 1.0)))
        q = ops.clip((e2 - t) / (e2 - e1), 0.0, 1.0)
        down = end + (peak - end) * ops.square(ops.sin(half_pi * q))
        return ops.where(ops.less_equal(t, e1), up, down)

    def get_config(self):
        return {{
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "name": self.name,
        }}'''


def one_cycle_code(
    max_learning_rate: float,
    *,
    total_steps: float,
    pct_start: float,
    div_factor: float,
    final_div_factor: float,
) -> list[str]:
    """``learning_rate`` as keras_schedules.OneCycle (the one_cycle family), the class written
    out."""
    return [
        *_ONE_CYCLE.splitlines(),
        "",
        "",
        *assignment(
            "learning_rate",
            "OneCycle",
            {
                "max_learning_rate": literal(max_learning_rate),
                "total_steps": literal(total_steps),
                "pct_start": literal(pct_start),
                "div_factor": literal(div_factor),
                "final_div_factor": literal(final_div_factor),
            },
        ),
    ]


def literal(value: float) -> str:
    """A float literal that reads back as exactly ``value`` (``repr``, never rounded)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"cannot write the number {value!r} into a snippet")
    return repr(number)


def list_literal(items: Sequence[str]) -> str:
    """``[a, b, ...]``, broken into lines of at most 99 characters where it is long."""
    one = "[" + ", ".join(items) + "]"
    if len(one) <= 80:
        return one
    rows: list[str] = []
    for item in items:
        if rows and len(rows[-1]) + len(item) + 2 <= 91:
            rows[-1] += f" {item},"
        else:
            rows.append(f"{item},")
    return "[\n" + "".join(f"        {row}\n" for row in rows) + "    ]"


def assignment(name: str, callee: str, args: dict[str, str]) -> list[str]:
    """``name = callee(key=value, ...)``: on one line if it fits in 99 characters, else one
    argument a line."""
    one = f"{name} = {callee}({', '.join(f'{k}={v}' for k, v in args.items())})"
    if len(one) <= 99 and "\n" not in one:
        return [one]
    return [f"{name} = {callee}(", *(f"    {k}={v}," for k, v in args.items()), ")"]
