"""The Python API (:mod:`sweeper.api.facade`, loaded lazily by ``import sweeper``): study files
from keywords, in-memory data, results, progress. Prints a run's progress, never imports click.
"""

import warnings

# Optuna imports tqdm.auto, which warns in a notebook without ipywidgets ("IProgress not found",
# on stderr: red in Jupyter) about a progress bar sweeper never shows. That one warning only.
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")
