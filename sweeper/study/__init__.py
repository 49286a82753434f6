"""A study: its file and search space, the store and every ``sweeper_`` table, the runner and
the workers' trial loop, the LR range test and the retraining of the best trials.

Builds on :mod:`sweeper.training`; never imports :mod:`sweeper.analysis`, the API or the CLI.
"""
