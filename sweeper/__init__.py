"""sweeper: find the best learning-rate schedule for a Keras model.

Importing the package is cheap: Keras and TensorFlow are only imported by the modules that
train (``sweeper.training``, ``sweeper.models``) and only inside their functions.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
