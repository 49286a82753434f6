"""The search: the runner, the workers' trial loop, one attempt of a trial and its epoch
decisions, packed trials, ASHA's rungs and promotions, recovery of dead workers, the sampler and
pruner, the reference configuration, the kept best model and the LR range test. Builds on
:mod:`sweeper.store`, :mod:`sweeper.studyfile` and :mod:`sweeper.training`."""
