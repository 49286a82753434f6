# %% [markdown]
# # sweeper from a notebook
#
# Find the best learning-rate schedule for your own Keras model, on arrays you hold in memory.
# Each `# %%` line starts a notebook cell (VS Code, PyCharm and Jupyter with jupytext open this
# file as a notebook); `python examples/notebook_quickstart.py` runs it as a script. About half a
# minute on 2 CPU cores. The study is stored in `sweeper.db` here: run it again and nothing is
# trained twice.

# %%
import keras
import numpy as np
from sklearn.datasets import load_digits

import sweeper

digits = load_digits()
x = (digits.images / 16.0).astype(np.float32)  # 1,797 images of 8x8, values in [0, 1]
y = digits.target  # class indices 0..9


# %%
def build(input_shape, num_classes):
    """Any function (input_shape, num_classes) -> keras.Model ending in a softmax."""
    inputs = keras.Input(shape=input_shape)
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(64, activation="relu")(h)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(h)
    return keras.Model(inputs, outputs)


# %% A progress bar in a notebook, one line per trial in a terminal
result = sweeper.tune(
    model=build,
    data=(x, y),  # a test split is held out, validation is carved from the rest
    study_name="digits-quickstart",
    n_trials=8,
    epochs=2,
    pruner="none",  # 2 epochs leave nothing to prune
    space={
        "schedules": ["constant", "exponential", "cosine"],
        "initial_lr": (0.01, 0.5, "log"),
        "decay_rate": (0.2, 0.9),
    },
    baselines=[{"name": "constant 0.05", "schedule": "constant", "initial_lr": 0.05}],
)
print(result)

# %% The best trial, and every trial (a pandas DataFrame when pandas is installed)
print(result.best.schedule, f"val_accuracy {result.best.value:.4f}")
trials = result.trials
trials  # noqa: B018  (a cell's last value is shown)

# %% Figures: history, importance, lr-curves, learning-curves, families, parallel, slice, contour
result.plot("lr-curves")

# %%
result.plot("history")

# %% Which parameter mattered, and one HTML page with all of it
print(result.importance().overall.values)
print("wrote", result.report("."))

# %% The same study as a study file: `sweeper tune`, workers and other machines read it
study = sweeper.Study(model="mnist-cnn", data="digits", epochs=2, subset=600)
print(study.to_toml())
