"""A study file: read, checked field by field (one line per mistake), its search space and the
settings two definitions differ in. Builds on :mod:`sweeper.training` only; touches no store."""
