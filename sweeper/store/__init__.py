"""The store: one database URL holding Optuna's tables and every ``sweeper_`` table (epochs,
study files, runs, the ledger, promotions, LR range tests, evaluations), the one adapter to
Optuna's private ids, and the model's part of a study's identity. Builds on
:mod:`sweeper.studyfile` and :mod:`sweeper.training`."""
