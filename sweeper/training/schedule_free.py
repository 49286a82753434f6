"""Schedule-free SGD and AdamW as Keras 3 optimizers in ``keras.ops`` (training side only).

Defazio et al., "The Road Less Scheduled", NeurIPS 2024, arXiv 2405.15682. Algorithm 1 (SGD),
for steps t = 1, 2, ... (Keras's ``iterations`` counts t - 1):

* y_t = (1 - beta) z_t + beta x_t, the point the gradient g_t is taken at;
* z_{t+1} = z_t - gamma_t g_t (g_t + weight_decay * y_t with a weight decay);
* x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, c_{t+1} = gamma_t^2 / sum_{i <= t} gamma_i^2,

with gamma_t = lr * min(1, t / warmup_steps), a linear warm-up (none for 0 steps). The model is
evaluated at x, the running average. The averaging weight is computed in closed form from the
step: c_{t+1} = 6 t / ((t + 1)(2 t + 1)) during the warm-up, then 1 / (sum of the warm-up's
weights + t - warmup_steps); that is the paper's gamma_t^2 / sum gamma_i^2 for the constant base
rate these optimizers run with (sweeper's ``constant`` family), and 1 / t without a warm-up.

AdamW (Algorithm 2) takes the same y, z and x steps with the gradient normalised as the authors'
reference implementation does it: v_t = beta_2 v + (1 - beta_2) g_t^2 and
z_{t+1} = z_t - gamma_t (g_t / (sqrt(v_t / (1 - beta_2^t)) + epsilon) + weight_decay * y_t); its
averaging weights follow the warm-up as for SGD.

Where the model stands: during training the model's variables hold y (Keras takes the gradient
at the model's variables); the optimizer keeps z and x as slots, so y = (1 - beta) z + beta x is
never stored twice. :meth:`ScheduleFreeOptimizer.swap_to_x` writes x into the model's variables,
:meth:`~ScheduleFreeOptimizer.swap_to_y` writes y back. The :class:`EvaluateAtAverage` callback
swaps to x for every validation inside ``fit`` and back to y after it, and ``fit`` ends with the
model at x (Keras calls ``finalize_variable_values``), so ``evaluate``, ``predict`` and saving
after training see x. A checkpoint taken at an epoch's end (``BackupAndRestore``) holds y in the
model and z, x in the optimizer, which is what training resumes from.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["AdamWScheduleFree", "EvaluateAtAverage", "SGDScheduleFree", "ScheduleFreeOptimizer"]


def _copy_of(variable: Any) -> Any:
    """An initializer giving a copy of ``variable``'s current value (a copy: under PyTorch a
    tensor of the same storage would move with the variable)."""

    def initializer(shape: Any, dtype: Any = None) -> Any:
        return ops.copy(ops.cast(variable.value, dtype or variable.dtype))

    return initializer


class ScheduleFreeOptimizer(keras.optimizers.Optimizer):
    """What schedule-free SGD and AdamW share: the warm-up, z and x, the averaging weight, the
    swaps between y (training) and x (evaluation)."""

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta: float = 0.9,
        warmup_steps: int = 0,
        weight_decay: float = 0.0,
        name: str = "schedule_free",
        **kwargs: Any,
    ) -> None:
        # the weight decay is applied at y inside the step, not by Keras to the variables
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 <= beta < 1:
            raise ValueError(f"beta must lie in [0, 1), got {beta!r}")
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a whole number >= 0, got {warmup_steps!r}")
        self.beta = float(beta)
        self.warmup_steps = int(warmup_steps)
        self.sf_weight_decay = float(weight_decay)
        self._at_x = False

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        # z_1 = x_1 = the model's starting point, set by the slots' initializer: under
        # TensorFlow the optimizer is built inside the first traced train step, where an
        # assignment would become part of every step, while an initializer runs once, eagerly
        self._z = [
            self.add_variable_from_reference(v, "z", initializer=_copy_of(v)) for v in variables
        ]
        self._x = [
            self.add_variable_from_reference(v, "x", initializer=_copy_of(v)) for v in variables
        ]

    def _get_current_learning_rate(self) -> Any:
        """gamma_t: the base rate times the linear warm-up min(1, t / warmup_steps)."""
        lr = super()._get_current_learning_rate()
        if self.warmup_steps <= 0:
            return lr
        t = ops.cast(self.iterations + 1, "float32")
        return ops.cast(lr, "float32") * ops.minimum(1.0, t / float(self.warmup_steps))

    def average_weight(self) -> Any:
        """c_{t+1}, the weight of z_{t+1} in x_{t+1}, for the step being taken (float32)."""
        t = ops.cast(self.iterations + 1, "float32")
        w = float(self.warmup_steps)
        if w <= 0:
            return 1.0 / t
        during = 6.0 * t / ((t + 1.0) * (2.0 * t + 1.0))
        after = 1.0 / ((w + 1.0) * (2.0 * w + 1.0) / (6.0 * w) + t - w)
        return ops.where(ops.less_equal(t, w), during, after)

    def _direction(self, gradient: Any, variable: Any, index: int) -> Any:
        """The step z takes per unit of rate (SGD: the gradient)."""
        raise NotImplementedError  # pragma: no cover - each optimizer defines it

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        index = self._get_variable_index(variable)
        z, x = self._z[index], self._x[index]
        direction = self._direction(ops.cast(gradient, dtype), variable, index)
        if self.sf_weight_decay:
            direction = direction + ops.cast(self.sf_weight_decay, dtype) * variable
        c = ops.cast(self.average_weight(), dtype)
        z_new = z - lr * direction
        x_new = (1.0 - c) * x + c * z_new
        self.assign(z, z_new)
        self.assign(x, x_new)
        self.assign(variable, (1.0 - self.beta) * z_new + self.beta * x_new)

    # -- where the model stands ---------------------------------------------------------------
    @property
    def at_average(self) -> bool:
        """Whether the model's variables hold x (evaluation) rather than y (training)."""
        return self._at_x

    def swap_to_x(self) -> None:
        """Write the averaged point x into the model's variables (for evaluating, saving)."""
        if self._at_x or not self.built:
            return
        for var, x in zip(self._trainable_variables, self._x, strict=True):
            var.assign(ops.copy(x))  # its own buffer: JAX frees the donated one
        self._at_x = True

    def swap_to_y(self) -> None:
        """Write the training point y = (1 - beta) z + beta x back into the model's variables."""
        if not self._at_x:
            return
        for var, z, x in zip(self._trainable_variables, self._z, self._x, strict=True):
            var.assign((1.0 - self.beta) * z + self.beta * x)
        self._at_x = False

    def finalize_variable_values(self, var_list: list[Any]) -> None:
        super().finalize_variable_values(var_list)
        self.swap_to_x()

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "beta": self.beta,
                "warmup_steps": self.warmup_steps,
                "weight_decay": self.sf_weight_decay,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="sweeper")
class SGDScheduleFree(ScheduleFreeOptimizer):
    """Schedule-free SGD (Algorithm 1 of arXiv 2405.15682); ``beta`` is the paper's beta."""

    def __init__(
        self,
        learning_rate: Any = 0.1,
        beta: float = 0.9,
        warmup_steps: int = 0,
        weight_decay: float = 0.0,
        name: str = "sgd_schedule_free",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            beta=beta,
            warmup_steps=warmup_steps,
            weight_decay=weight_decay,
            name=name,
            **kwargs,
        )

    def _direction(self, gradient: Any, variable: Any, index: int) -> Any:
        return gradient


@keras.saving.register_keras_serializable(package="sweeper")
class AdamWScheduleFree(ScheduleFreeOptimizer):
    """Schedule-free AdamW (Algorithm 2 of arXiv 2405.15682, the reference implementation's
    normalisation); ``beta_1`` is the interpolation beta, ``beta_2`` the second-moment decay."""

    def __init__(
        self,
        learning_rate: Any = 0.0025,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        warmup_steps: int = 0,
        weight_decay: float = 0.0,
        name: str = "adamw_schedule_free",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("beta", None)  # from_config: beta is beta_1
        super().__init__(
            learning_rate=learning_rate,
            beta=beta_1,
            warmup_steps=warmup_steps,
            weight_decay=weight_decay,
            name=name,
            **kwargs,
        )
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        self._v = self.add_optimizer_variables(variables, "v")

    def _direction(self, gradient: Any, variable: Any, index: int) -> Any:
        dtype = variable.dtype
        v = self._v[index]
        b2 = ops.cast(self.beta_2, dtype)
        v_new = b2 * v + (1.0 - b2) * ops.square(gradient)
        self.assign(v, v_new)
        t = ops.cast(self.iterations + 1, dtype)
        correction = 1.0 - ops.power(b2, t)
        return gradient / (ops.sqrt(v_new / correction) + ops.cast(self.epsilon, dtype))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["beta_1"] = config.pop("beta")
        config.update({"beta_2": self.beta_2, "epsilon": self.epsilon})
        return config


class EvaluateAtAverage(keras.callbacks.Callback):
    """Validation inside ``fit`` at a schedule-free optimizer's averaged point x.

    Before each evaluation the model's variables take x, after it y again, while training goes
    on; when training ends the model stays at x. Does nothing for other optimizers.
    """

    def __init__(self) -> None:
        super().__init__()
        self._training = False

    def _optimizer(self) -> ScheduleFreeOptimizer | None:
        opt = getattr(self.model, "optimizer", None)
        return opt if isinstance(opt, ScheduleFreeOptimizer) else None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._training = True
        if (opt := self._optimizer()) is not None:
            opt.swap_to_y()

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if (opt := self._optimizer()) is not None:
            opt.swap_to_x()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._training and (opt := self._optimizer()) is not None:
            opt.swap_to_y()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._training = False
        if (opt := self._optimizer()) is not None:
            opt.swap_to_x()
