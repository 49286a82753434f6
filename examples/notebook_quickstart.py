# %% [markdown]
# # sweeper from a notebook
#
# Find the best learning-rate schedule for your own Keras model, on arrays you hold in memory.
# Each `# %%` line starts a notebook cell (VS Code, PyCharm and Jupyter with jupytext open this
# file as a notebook); `python examples/notebook_quickstart.py` runs it as a script. About half a
# minute on 2 CPU cores. The study is stored in `sweeper.db` here: run it again and nothing is
# trained twice.

# %%
import numpy as np
from sklearn.datasets import load_digits

import sweeper

digits = load_digits()
x = (digits.images / 16.0).astype(np.float32)  # 1,797 images of 8x8, values in [0, 1]
y = digits.target  # class indices 0..9
# your own test split, kept for the final model; sweeper carves its validation split from the rest
x_train, x_test, y_train, y_test = x[:1500], x[1500:], y[:1500], y[1500:]


# %%
def build(input_shape, num_classes):
    """Any function (input_shape, num_classes) -> keras.Model ending in a softmax."""
    # imported here, not at the top: sweeper loads Keras first, without the backend's start-up noise
    import keras

    inputs = keras.Input(shape=input_shape)
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(64, activation="relu")(h)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(h)
    return keras.Model(inputs, outputs)


# %% A progress bar in a notebook, one line per trial in a terminal
result = sweeper.tune(
    model=build,
    data=((x_train, y_train), (x_test, y_test)),  # validation is carved from the first pair
    study_name="digits-quickstart",
    n_trials=8,
    epochs=2,
    batch_size=32,
    pruner="none",  # 2 epochs leave nothing to prune
    space={
        "schedules": ["constant", "exponential", "cosine"],
        "initial_lr": (0.01, 0.5, "log"),
        "decay_rate": (0.2, 0.9),
    },
    baselines=[{"name": "constant 0.05", "schedule": "constant", "initial_lr": 0.05}],
)
print(result)

# %% The best trial (a table in a notebook)
print(result.best.schedule, f"val_accuracy {result.best.value:.4f}")
result.best  # noqa: B018  (a cell's last value is shown)

# %% Every trial (a pandas DataFrame when pandas is installed)
trials = result.trials
trials  # noqa: B018

# %% Figures: history, anytime, importance, lr-curves, learning-curves, families, parallel, slice, contour
result.plot("lr-curves")

# %%
result.plot("history")

# %% Which parameter mattered, and one HTML page with all of it
print(result.importance().overall.values)
print("wrote", result.report("."))

# %% Use what you tuned: the winner's schedule and optimizer as Keras objects, rebuilt for a
# longer run on all the training data (the 'fraction' rule keeps every drop and decay end at its
# share of the run; result.best.length(...) says what changed)
EPOCHS, BATCH = 6, 32
steps = -(-len(x_train) // BATCH)  # batches per epoch of the final run
print(result.best.length(steps_per_epoch=steps, epochs=EPOCHS))
final = build(x_train.shape[1:], 10)
final.compile(
    optimizer=result.best.optimizer(steps_per_epoch=steps, epochs=EPOCHS),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
final.fit(x_train, y_train, batch_size=BATCH, epochs=EPOCHS, verbose=0)
print(f"final model: test accuracy {final.evaluate(x_test, y_test, verbose=0)[1]:.4f}")

# %% The same as Keras code to paste into a script without sweeper, and the network the study
# trained for the best configuration (on the training split, for the trials' length)
print(result.best.code(steps_per_epoch=steps, epochs=EPOCHS))
kept = result.best_model()
print(f"kept model: test accuracy {kept.evaluate(x_test, y_test, verbose=0)[1]:.4f}")

# %% The same study as a study file: `sweeper tune`, workers and other machines read it
study = sweeper.Study(model="mnist-cnn", data="digits", epochs=2, subset=600)
print(study.to_toml())
