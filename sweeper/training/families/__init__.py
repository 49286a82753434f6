"""The learning-rate schedule families, one module each, one :class:`Schedule` subclass in it.

:mod:`sweeper.training.schedules` finds them here (every module of this package, in the order of
their classes' ``order``): a family is added by adding its module, and nothing else names it.
Its class (a frozen dataclass of :class:`~sweeper.training.schedule_base.Schedule`, whose fields
are in optimizer steps) declares everything about it:

* ``family``, ``formula``, ``order``, ``dimensions`` (the study dimensions it takes: which
  families take a dimension, in :data:`sweeper.studyfile.dimensions.DIMENSIONS`, is read from
  them), ``renamed``;
* ``from_dimensions`` (classmethod): built from a study's dimension values, intervals in epochs;
* ``plot_default`` (classmethod): the parameters ``sweeper schedules`` draws it with;
* ``_rates``: its rate in NumPy, no Keras import, so read-only commands draw stored trials;
* ``keras``: the schedule the optimizer applies during training, one of Keras's own
  ``keras.optimizers.schedules`` classes or one of :mod:`sweeper.training.keras_schedules`
  (``keras.ops``), imported inside the method: importing a family imports no Keras;
* ``learning_rate_code``: the same with Keras alone, as code for a training script
  (:mod:`sweeper.training.schedule_code`);
* ``_rescale``: its fields for a run of another length or data size (a
  :class:`~sweeper.training.schedule_base.Horizon`), where it has any that count steps.

The step index follows Keras: the rate applied in update ``k`` (counting from 0) is the schedule
at ``step = k``, so the first epoch covers steps ``0 .. steps_per_epoch - 1``. A field that is
also a study dimension has that dimension's name (``decay_rate``, ``drop_every``,
``time_decay``); ``decay_steps`` is a different quantity (optimizer steps, Keras's name), built
from ``drop_every`` epochs where a family counts its interval in steps.
"""
