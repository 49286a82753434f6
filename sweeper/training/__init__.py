"""Training with Keras: schedules, models, data, optimizers, one trial's run, packed trials.

Imports only :mod:`sweeper.errors`, :mod:`sweeper.interrupts` and itself: no store, no study
module (an Optuna trial is handed in only to report to the pruner). Keras is imported inside
functions, never at import time.
"""
