"""The winner leaves sweeper: ``Best.learning_rate()``, ``Best.optimizer()``, ``Best.code()``,
``TuneResult.trial(n)`` and ``sweeper best --code`` on a real study (digits held in memory, a
model function of the notebook, a SQLite store under ``tmp_path``), read back through
``sweeper.load`` as on a machine that only has the store.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import sweeper
from sweeper import environment
from sweeper.cli.commands import main as cli_main
from sweeper.errors import SweeperError

EPOCHS = 3


def build(input_shape: tuple[int, ...], num_classes: int) -> Any:
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tuned study for the module: 4 trials of 3 epochs, SGD with Nesterov momentum, no
    pruner (every trial trains uninterrupted, so its epochs can be replayed exactly)."""
    from sklearn.datasets import load_digits

    tmp = tmp_path_factory.mktemp("handover")
    bunch = load_digits()
    x, y = (bunch.images / 16.0).astype(np.float32)[:600], bunch.target[:600]
    url = f"sqlite:///{tmp / 'store.db'}"
    env = {environment.DATA_DIR_ENV: str(tmp / "arrays")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.chdir(tmp)
        result = sweeper.tune(
            model=build,
            data=(x, y),
            storage=url,
            study_name="handover",
            n_trials=4,
            epochs=EPOCHS,
            batch_size=32,
            pruner="none",
            sampler={"type": "random", "reference": "none"},
            baselines=[{"name": "step 0.1", "schedule": "step", "initial_lr": 0.1}],
            space={
                "schedules": ["cosine", "wsd"],
                "initial_lr": (0.01, 0.5, "log"),
                "optimizer": "sgd",
                "momentum": 0.9,
                "nesterov": True,
            },
            checkpoint_dir=str(tmp / "ckpt"),
            progress=False,
        )
    return {"url": url, "tmp": tmp, "result": result}


def keras_curve(schedule: Any, n: int) -> np.ndarray:
    import keras

    if not callable(schedule):
        return np.full(n, float(schedule))
    return np.array([float(keras.ops.convert_to_numpy(schedule(s))) for s in range(n)])


def stored_epochs(url: str, trial_number: int) -> list[dict[str, Any]]:
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        rows = con.execute(
            "SELECT epoch, step, lr, val_accuracy FROM sweeper_epochs WHERE study_name = ? "
            "AND trial_number = ? ORDER BY epoch",
            ("handover", trial_number),
        ).fetchall()
    finally:
        con.close()
    return [dict(zip(("epoch", "step", "lr", "val_accuracy"), r, strict=True)) for r in rows]


def test_learning_rate_is_the_stored_schedule_at_every_step(study: dict[str, Any]) -> None:
    from sweeper.training.schedules import from_dict

    loaded = sweeper.load("handover", storage=study["url"])
    best = loaded.best
    assert best is not None and best.tuned is not None
    trial = loaded.data().trials[best.number]
    stored = from_dict(trial.user_attrs["schedule"])
    n = EPOCHS * int(trial.user_attrs["steps_per_epoch"])
    curve = keras_curve(best.learning_rate(), n)
    np.testing.assert_allclose(curve, stored.curve(n).astype(np.float32), rtol=2e-6, atol=1e-9)
    # and the rate each epoch recorded in training (its last update)
    for row in stored_epochs(study["url"], best.number):
        assert curve[row["step"] - 1] == pytest.approx(row["lr"], rel=2e-6)


def test_optimizer_replays_the_trial_with_plain_fit(study: dict[str, Any]) -> None:
    """A fresh model compiled with ``best.optimizer()`` and trained with ``model.fit`` on the
    trial's data, seed and batch order gets the trial's validation accuracy after every epoch:
    to within one validation example (observed: equal)."""
    import keras

    from sweeper.training.data import load_dataset
    from sweeper.training.train_trial import reset_keras

    loaded = sweeper.load("handover", storage=study["url"])
    best = loaded.best
    assert best is not None
    spec = study["result"].study.spec  # the study that ran: its data, seed and batch size
    dataset = load_dataset(spec.data)
    reset_keras(spec.seed)  # as a trial starts: a clean session, the study's seed
    model = build(dataset.input_shape, dataset.num_classes)
    optimizer = best.optimizer()
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == pytest.approx(0.9) and optimizer.nesterov
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        dataset.x_train,
        dataset.y_train,
        batch_size=spec.train.batch_size,
        epochs=EPOCHS,
        validation_data=(dataset.x_val, dataset.y_val),
        shuffle=True,
        verbose=0,
    )
    stored = [r["val_accuracy"] for r in stored_epochs(study["url"], best.number)]
    assert len(stored) == EPOCHS
    one = 1.0 / len(dataset.y_val)
    np.testing.assert_allclose(history.history["val_accuracy"], stored, atol=one + 1e-7)


def test_a_compiled_model_saves_and_loads_with_the_schedule(study: dict[str, Any]) -> None:
    import keras

    loaded = sweeper.load("handover", storage=study["url"])
    path = study["tmp"] / "m.keras"
    for trial in loaded.data().trials:
        chosen = loaded.trial(trial.number)
        model = build((8, 8), 10)
        model.compile(optimizer=chosen.optimizer(epochs=9), loss="sparse_categorical_crossentropy")
        model.optimizer.build(model.trainable_variables)
        model.save(path)
        back = keras.models.load_model(path)
        schedule = chosen.learning_rate(epochs=9)
        n = 9 * chosen.tuned.steps_per_epoch  # type: ignore[union-attr]
        np.testing.assert_array_equal(
            keras_curve(back.optimizer.learning_rate_schedule, n)
            if hasattr(back.optimizer, "learning_rate_schedule")
            else keras_curve(back.optimizer._learning_rate, n),
            keras_curve(schedule, n),
        )


def test_longer_run_follows_the_rule(study: dict[str, Any]) -> None:
    loaded = sweeper.load("handover", storage=study["url"])
    best = loaded.trial(next(t.number for t in loaded.data().trials if t.params.get("schedule")))
    assert best.tuned is not None and best.tuned.schedule.family in ("cosine", "wsd")
    spe = best.tuned.steps_per_epoch
    line = best.length(epochs=3 * EPOCHS)
    assert line.startswith(f"{best.tuned.schedule.family} over {3 * EPOCHS} epochs of {spe} steps")
    assert f"(tuned over {EPOCHS} epochs of {spe} steps, rule 'fraction')" in line
    long = keras_curve(best.learning_rate(epochs=3 * EPOCHS), 3 * EPOCHS * spe)
    short = keras_curve(best.learning_rate(), EPOCHS * spe)
    # the rebuilt schedule (rules: tests/training/test_rescale.py), ending where the run ends
    rebuilt = best.tuned.schedule_for(best.tuned.horizon(3 * EPOCHS, None, "fraction"))
    np.testing.assert_allclose(long, rebuilt.curve(len(long)), rtol=2e-6, atol=1e-9)
    assert long[0] == short[0] and long[-1] == pytest.approx(short[-1], abs=1e-7)
    assert best.length(epochs=3 * EPOCHS, rule="epochs").endswith(
        best.tuned.length_line(best.tuned.horizon(3 * EPOCHS, None, "epochs")).split(": ", 1)[1]
    )


def test_code_runs_without_sweeper(study: dict[str, Any], tmp_path: Path) -> None:
    loaded = sweeper.load("handover", storage=study["url"])
    best = loaded.best
    assert best is not None and best.tuned is not None
    text = best.code(epochs=2 * EPOCHS)
    assert text.startswith(f"# tuned by sweeper: trial {best.number} (val_accuracy ")
    file = tmp_path / "snippet.py"
    file.write_text(text)
    n = 2 * EPOCHS * best.tuned.steps_per_epoch
    probe = (
        "import importlib.abc, json, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'sweeper': raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"exec(open({str(file)!r}).read())\n"
        "import keras\n"
        f"print(json.dumps([float(keras.ops.convert_to_numpy(learning_rate(s))) for s in range({n})]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    rates = json.loads(out.stdout.strip().splitlines()[-1])
    expected = keras_curve(best.learning_rate(epochs=2 * EPOCHS), n)
    np.testing.assert_allclose(rates, expected, rtol=2e-6, atol=1e-9)


def test_cli_best_code_and_errors(study: dict[str, Any]) -> None:
    runner = CliRunner()
    url = study["url"]
    before = Path(url.removeprefix("sqlite:///")).read_bytes()
    ok = runner.invoke(cli_main, ["best", "handover", "--storage", url, "--code", "--epochs", "9"])
    assert ok.exit_code == 0, ok.output
    assert "import keras" in ok.output and "optimizer = keras.optimizers.SGD(" in ok.output
    assert "nesterov=True" in ok.output
    shown = runner.invoke(cli_main, ["best", "handover", "--storage", url, "--epochs", "9"])
    assert shown.exit_code == 0 and "over 9 epochs" in shown.output
    examples = runner.invoke(
        cli_main,
        [
            "best",
            "handover",
            "--storage",
            url,
            "--epochs",
            "9",
            "--examples",
            "1000",
            "--batch-size",
            "50",
        ],
    )
    assert "over 9 epochs of 20 steps" in examples.output
    bad = {
        ("--epochs", "0"): "0 is not in the range x>=1",
        ("--epochs", "-2"): "-2 is not in the range x>=1",
        ("--epochs", "2.5"): "'2.5' is not a valid integer",
        ("--rule", "share"): "'share' is not one of 'fraction', 'epochs'",
        ("--examples", "100"): "give --examples and --batch-size together",
        ("--trial", "99"): "study 'handover' has no trial 99; its trials: 0 to 3",
    }
    for args, message in bad.items():
        res = runner.invoke(cli_main, ["best", "handover", "--storage", url, "--code", *args])
        assert res.exit_code != 0, args
        assert message in res.output, (args, res.output)
        assert "Traceback" not in res.output
    assert Path(url.removeprefix("sqlite:///")).read_bytes() == before  # read-only


def test_no_complete_configuration_is_one_line(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(storage=url, study_name="empty", direction="maximize")
    res = CliRunner().invoke(cli_main, ["best", "empty", "--storage", url, "--code"])
    assert res.exit_code == 1
    assert "study 'empty' has no complete trial yet: nothing to hand over" in res.output
    model = CliRunner().invoke(
        cli_main, ["best", "empty", "--storage", url, "--save-model", str(tmp_path / "m.keras")]
    )
    assert model.exit_code == 1
    assert "study 'empty' has no complete configuration yet, so no model is kept" in model.output


def test_best_model_is_the_trained_network_of_the_best(study: dict[str, Any]) -> None:
    """``result.best_model()``: evaluated on the validation split, the best trial's stored value
    (to within one validation example); ``sweeper best --save-model`` writes the same file."""
    import keras

    result = study["result"]
    best = result.best
    assert best is not None and best.value is not None
    model = result.best_model()
    dataset_spec = result.study.spec
    from sweeper.training.data import load_dataset

    dataset = load_dataset(dataset_spec.data)
    scores = model.evaluate(dataset.x_val, dataset.y_val, verbose=0, return_dict=True)
    assert scores["accuracy"] == pytest.approx(best.value, abs=1 / len(dataset.y_val) + 1e-7)

    target = study["tmp"] / "out" / "winner.keras"
    target.parent.mkdir()
    res = CliRunner().invoke(
        cli_main,
        ["best", "handover", "--storage", study["url"], "--save-model", str(target)],
    )
    assert res.exit_code == 0, res.output
    assert f"the trained network of trial {best.number}" in res.output
    again = keras.models.load_model(target)
    np.testing.assert_array_equal(
        again.predict(dataset.x_val[:20], verbose=0), model.predict(dataset.x_val[:20], verbose=0)
    )
    for args, message in {
        ("--save-model", str(study["tmp"] / "w.h5")): "name the file .keras",
        ("--save-model", str(target), "--epochs", "9"): "give it alone",
    }.items():
        bad = CliRunner().invoke(cli_main, ["best", "handover", "--storage", study["url"], *args])
        assert bad.exit_code == 1 and message in bad.output, bad.output


def test_a_study_without_a_kept_model_says_how_to_get_one(tmp_path: Path) -> None:
    from sweeper.testing import build_synthetic_store

    url = build_synthetic_store(tmp_path / "s.db", 12, study_name="old")
    before = (tmp_path / "s.db").read_bytes()
    res = CliRunner().invoke(
        cli_main, ["best", "old", "--storage", url, "--save-model", str(tmp_path / "m.keras")]
    )
    assert res.exit_code == 1
    assert "it was tuned before models were kept" in res.output
    assert "sweeper evaluate" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "m.keras").exists()
    assert (tmp_path / "s.db").read_bytes() == before
    with pytest.raises(SweeperError, match="tuned before models were kept"):
        sweeper.load("old", storage=url).best_model()


def test_a_saved_model_loads_in_a_fresh_process_with_keras_objects(tmp_path: Path) -> None:
    """Every schedule family, and the schedule-free optimizers, in a saved model: plain
    ``keras.models.load_model`` with ``sweeper.keras_objects()`` in a fresh process gives the
    same rate at every step."""
    from sweeper.training.optimizers import SCHEDULE_FREE, OptimizerSpec
    from sweeper.training.schedules import FAMILIES, from_dimensions

    n = 50
    cases = [(family, OptimizerSpec()) for family in FAMILIES]
    cases += [("constant", OptimizerSpec(name, warmup=0.1)) for name in SCHEDULE_FREE]
    expected = []
    for i, (family, optimizer) in enumerate(cases):
        schedule = from_dimensions(
            family, {"initial_lr": 0.1, "warmup_epochs": 1}, steps_per_epoch=10, epochs=5
        )
        model = build((8, 8), 10)
        model.compile(optimizer=optimizer.build(schedule.keras(), total_steps=n), loss="mse")
        model.optimizer.build(model.trainable_variables)
        model.save(tmp_path / f"m{i}.keras")
        expected.append((type(model.optimizer).__name__, keras_curve(schedule.keras(), n).tolist()))
    probe = (
        "import json, keras, sweeper\n"
        "out = []\n"
        f"for i in range({len(cases)}):\n"
        f"    m = keras.models.load_model({str(tmp_path)!r} + f'/m{{i}}.keras', "
        "custom_objects=sweeper.keras_objects())\n"
        "    lr = m.optimizer._learning_rate\n"
        f"    rates = [float(keras.ops.convert_to_numpy(lr(s))) if callable(lr) else float(lr) "
        f"for s in range({n})]\n"
        "    out.append((type(m.optimizer).__name__, rates))\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=180
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    for (family, _), (name, rates), (want_name, want) in zip(cases, loaded, expected, strict=True):
        assert name == want_name, family
        # in float32, the precision the optimizer holds its rate in
        np.testing.assert_array_equal(
            np.float32(rates), np.float32(want), err_msg=f"{family} {name}"
        )


def test_the_cli_offers_the_rules_declared_with_the_schedules() -> None:
    from sweeper.cli.read import RULES
    from sweeper.training.handover import DEFAULT_RULE
    from sweeper.training.schedule_base import RESCALE_RULES

    assert RULES == RESCALE_RULES and DEFAULT_RULE in RESCALE_RULES
