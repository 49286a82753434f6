"""Small user models for the worker tests, loaded as ``tiny_model:FUNCTION`` through PYTHONPATH."""

from __future__ import annotations

from typing import Any


def dense(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """Flatten -> Dense softmax: a trial of one epoch on the digits takes a fraction of a second."""
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny_dense")


def broken(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """A user model that always raises."""
    raise RuntimeError(f"tiny_model.broken refuses to build a model for {input_shape}")


def fails_in_training(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """Builds and predicts like ``dense``, but raises as soon as it is trained: every trial fails
    while the up-front check of the model passes."""
    import keras

    class RefuseToTrain(keras.layers.Layer):
        def call(self, x: Any, training: bool | None = None) -> Any:
            if training:
                raise RuntimeError("tiny_model.fails_in_training refuses to train")
            return x

    inputs = keras.Input(shape=input_shape)
    x = RefuseToTrain()(keras.layers.Flatten()(inputs))
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny_fails_in_training")
