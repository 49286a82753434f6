"""Training with Keras: schedules, models, data, optimizers, one trial's run, packed trials.

Knows nothing of Optuna's studies or the store: it imports only :mod:`sweeper.errors`,
:mod:`sweeper.interrupts` and itself. Keras is imported inside functions, never at import time.
"""
