"""The Python API (:mod:`sweeper.api.facade`, loaded lazily by ``import sweeper``): study files
from keywords, in-memory data, results, progress. Prints a run's progress, never imports click.
"""
