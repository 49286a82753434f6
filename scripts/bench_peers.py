"""Two more multi-fidelity peers for scripts/bench_search.py: DEHB and SMAC3's multi-fidelity facade.

Both search the same conditional space as the other arms and are driven for real, in this process,
one trial at a time:

* ``run_dehb``: DEHB 0.1.2 (differential evolution inside Hyperband brackets, Awad et al. 2021),
  ``dehb.DEHB`` over a ConfigSpace space, min/max fidelity in epochs, eta 3, ``n_workers=1`` (no
  Dask client: DEHB calls the objective in this process), run with ``run(fevals=10**6)``;
* ``run_smac``: SMAC3 2.4's ``MultiFidelityFacade`` (a random-forest surrogate with expected
  improvement, proposing the configurations of Hyperband brackets, the closest SMAC3 has to BOHB),
  its default Hyperband intensifier (eta 3), min/max budget in epochs, ``n_workers=1`` (no Dask),
  no trial time or memory limit (so no pynisher subprocess), ``n_trials=10**6``, no wall-time
  limit, and the 5 random initial configurations of SMAC3's own multi-fidelity MLP example (the
  facade's default, 10 per hyperparameter capped at a quarter of ``n_trials``, would be random
  search for the whole of a benchmark's budget), run with ``optimize()``.

Fidelity is the number of epochs: a bracket's rungs are 1, 3 and 9 epochs for min_epochs 1,
max_epochs 9 and eta 3. Neither library continues a trial: every call, at any fidelity, trains a
fresh model of that configuration from scratch for ``int(round(budget))`` epochs (a promoted
configuration restarts at the higher fidelity), and the caller's ``train`` counts each call's
epochs against its budget. Both libraries minimize, so the objective is ``1 - accuracy``.

``train`` raises the caller's ``stop`` exception (a ``BaseException``) once the budget is spent.
Neither library swallows it: loguru's ``logger.catch`` around DEHB's ``run`` and SMAC's runners
catch ``Exception`` only, so it unwinds out of the optimizer, and ``run_dehb``/``run_smac``
catch it at the top and return normally. Files the libraries write (DEHB's log, SMAC's run
history) go under ``workdir``; their logging is held to WARNING.

Seeding: ``seed`` seeds the ConfigSpace space and each library (DEHB's generator, SMAC's scenario
seed); neither reads the global ``random``/NumPy state. DEHB repeats its calls exactly for a seed.
SMAC repeats them within one interpreter, but its local search starts from a ``set`` of
configurations, whose order follows string hashing: across interpreter starts it repeats them only
under a fixed ``PYTHONHASHSEED``.

The choice values of a dimension become string labels in ConfigSpace and are handed back, by
index, as the original Python objects (numbers, strings, booleans). dehb, smac and ConfigSpace are
imported inside the functions: the module imports without them.

    python scripts/bench_peers.py    # self-check: both peers on a fake, epoch-counting train
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ETA = 3
FOREVER = 10**6  # evaluations / trials: the caller's stop exception ends the search
SMAC_INITIAL_CONFIGS = 5  # as SMAC3's examples/2_multi_fidelity/1_mlp_epochs.py


def _labels(values: Sequence[Any]) -> list[str]:
    """String labels for a choice's values, distinct even where str() of two values is not."""
    labels = [str(v) for v in values]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{v!r}" for i, v in enumerate(values)]
    return labels


class _Space:
    """The ConfigSpace version of ``dims`` and the way back to (family, values)."""

    def __init__(self, dims: list[dict], seed: int) -> None:
        from ConfigSpace import (
            Categorical,
            ConfigurationSpace,
            EqualsCondition,
            Float,
            InCondition,
        )

        if not dims or dims[0]["name"] != "schedule" or dims[0]["kind"] != "choice":
            raise ValueError("dims[0] must be the 'schedule' choice")
        self.families: list[Any] = list(dims[0]["values"])
        self.family_labels = _labels(self.families)
        self.dims: list[dict] = []
        self.labels: dict[str, list[str]] = {}
        self.cs = ConfigurationSpace(seed=seed)
        schedule = Categorical("schedule", self.family_labels)
        hyperparameters: list[Any] = [schedule]
        conditions: list[Any] = []
        for dim in dims[1:]:
            name = dim["name"]
            parents = [self.family_labels[self.families.index(p)] for p in dim["parents"]]
            if not parents:  # never active: nothing to search
                continue
            if dim["kind"] == "float":
                low, high = float(dim["low"]), float(dim["high"])
                hp = Float(name, (low, high), log=bool(dim.get("log", False)))
            elif dim["kind"] == "choice":
                self.labels[name] = _labels(dim["values"])
                hp = Categorical(name, self.labels[name])
            else:
                raise ValueError(f"dimension {name}: unknown kind {dim['kind']!r}")
            hyperparameters.append(hp)
            self.dims.append(dim)
            if set(parents) == set(self.family_labels):
                continue  # active for every family: unconditional
            if len(parents) == 1:
                conditions.append(EqualsCondition(hp, schedule, parents[0]))
            else:
                conditions.append(InCondition(hp, schedule, parents))
        self.cs.add(hyperparameters)
        self.cs.add(conditions)

    def decode(self, config: Any) -> tuple[Any, dict[str, Any]]:
        """The family and the active dimensions' values, as plain Python objects."""
        raw = dict(config)  # a Configuration holds the active hyperparameters only
        family = self.families[self.family_labels.index(str(raw["schedule"]))]
        values: dict[str, Any] = {}
        for dim in self.dims:
            name = dim["name"]
            if family not in dim["parents"]:
                continue
            if dim["kind"] == "float":
                values[name] = min(max(float(raw[name]), float(dim["low"])), float(dim["high"]))
            else:
                values[name] = dim["values"][self.labels[name].index(str(raw[name]))]
        return family, values


def _epochs(budget: float, min_epochs: int) -> int:
    return max(int(min_epochs), round(float(budget)))


def _check_fidelities(min_epochs: int, max_epochs: int) -> None:
    if not 1 <= min_epochs < max_epochs:
        raise ValueError(f"need 1 <= min_epochs < max_epochs, got {min_epochs}, {max_epochs}")


def run_dehb(
    dims: list[dict],
    train: Callable[[str, dict, int], float],
    seed: int,
    min_epochs: int,
    max_epochs: int,
    stop: type[BaseException],
    workdir: Path,
) -> None:
    """DEHB over ``dims`` until ``train`` raises ``stop``; every call restarts from scratch."""
    _check_fidelities(min_epochs, max_epochs)
    from dehb import DEHB
    from loguru import logger

    space = _Space(dims, seed)

    def objective(config: Any, fidelity: float, **_: Any) -> dict[str, Any]:
        family, values = space.decode(config)
        epochs = _epochs(fidelity, min_epochs)
        accuracy = float(train(family, values, epochs))
        return {"fitness": 1.0 - accuracy, "cost": float(epochs)}

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        # DEHB reconfigures loguru: its handlers print WARNING and up to stdout and log to
        # workdir/dehb.log; save_freq "end" keeps it from writing its state (pyarrow) per step
        optimizer = DEHB(
            cs=space.cs,
            f=objective,
            min_fidelity=min_epochs,
            max_fidelity=max_epochs,
            eta=ETA,
            n_workers=1,
            seed=int(seed),
            output_path=workdir / "dehb",
            log_level="WARNING",
            save_freq="end",
        )
        optimizer.run(fevals=FOREVER)
    except stop:
        pass
    finally:
        logger.remove()  # closes DEHB's log file and its enqueue thread
        logger.add(sys.stderr, level="WARNING")


def run_smac(
    dims: list[dict],
    train: Callable[[str, dict, int], float],
    seed: int,
    min_epochs: int,
    max_epochs: int,
    stop: type[BaseException],
    workdir: Path,
) -> None:
    """SMAC3's multi-fidelity facade over ``dims`` until ``train`` raises ``stop``."""
    _check_fidelities(min_epochs, max_epochs)
    from ConfigSpace import Configuration
    from smac import MultiFidelityFacade, Scenario

    logging.getLogger("smac").setLevel(logging.WARNING)
    space = _Space(dims, seed)

    def target(config: Configuration, seed: int = 0, budget: float = 0.0) -> float:
        family, values = space.decode(config)
        return 1.0 - float(train(family, values, _epochs(budget, min_epochs)))

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = Scenario(
        space.cs,
        name="smac-mf",
        output_directory=workdir / "smac",
        deterministic=True,
        n_trials=FOREVER,
        walltime_limit=math.inf,
        min_budget=min_epochs,
        max_budget=max_epochs,
        seed=int(seed),
        n_workers=1,
    )
    facade = MultiFidelityFacade(
        scenario,
        target,
        intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=ETA),
        initial_design=MultiFidelityFacade.get_initial_design(
            scenario, n_configs=SMAC_INITIAL_CONFIGS
        ),
        logging_level=False,  # leave the root logger alone; "smac" is held to WARNING above
        overwrite=True,
    )
    try:
        with warnings.catch_warnings():
            # np.mean([]) in a debug message of SMAC's local search, when it took no step
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            warnings.filterwarnings(
                "ignore", "invalid value encountered in scalar divide", RuntimeWarning
            )
            facade.optimize()
    except stop:
        pass


# --- self-check ------------------------------------------------------------------------------


class _Stop(BaseException):
    """The fake budget's end."""


def _self_check() -> None:
    budget = 60
    dims: list[dict] = [
        {"name": "schedule", "kind": "choice", "values": ["constant", "cosine", "step"]},
        {
            "name": "initial_lr",
            "kind": "float",
            "low": 1e-4,
            "high": 0.3,
            "log": True,
            "parents": ["constant", "cosine", "step"],
        },
        {
            "name": "drop_every",
            "kind": "float",
            "low": 1.0,
            "high": 5.0,
            "log": False,
            "parents": ["step"],
        },
        {"name": "warmup", "kind": "choice", "values": [0, 1], "parents": ["cosine"]},
        {
            "name": "nesterov",
            "kind": "choice",
            "values": [True, False],
            "parents": ["constant", "cosine", "step"],
        },
    ]
    active = {
        "constant": {"initial_lr": float, "nesterov": bool},
        "cosine": {"initial_lr": float, "warmup": int, "nesterov": bool},
        "step": {"initial_lr": float, "drop_every": float, "nesterov": bool},
    }
    bounds = {"initial_lr": (1e-4, 0.3), "drop_every": (1.0, 5.0)}

    def fake_accuracy(family: str, values: dict[str, Any], epochs: int) -> float:
        lr = values["initial_lr"]
        accuracy = 0.9 - 0.02 * (math.log10(lr) + 1.5) ** 2 - 0.05 / epochs
        accuracy += {"constant": 0.0, "cosine": 0.02, "step": 0.01}[family]
        accuracy += 0.005 * values.get("warmup", 0) + (0.003 if values["nesterov"] else 0.0)
        accuracy -= 0.002 * abs(values.get("drop_every", 3.0) - 3.0)
        return accuracy

    def drive(peer: Callable[..., None], seed: int) -> dict[str, Any]:
        calls: list[tuple[str, dict[str, Any], int]] = []
        trained = 0
        best = -math.inf

        def train(family: str, values: dict[str, Any], epochs: int) -> float:
            nonlocal trained, best
            assert type(family) is str and family in active, family
            assert type(epochs) is int and epochs in (1, 3, 9), epochs
            assert set(values) == set(active[family]), (family, values)
            for key, value in values.items():
                assert type(value) is active[family][key], (key, value, type(value))
                if key in bounds:
                    assert bounds[key][0] <= value <= bounds[key][1], (key, value)
            assert values.get("warmup", 0) in (0, 1)
            calls.append((family, dict(values), epochs))
            accuracy = fake_accuracy(family, values, epochs)
            for _ in range(epochs):  # counted epoch by epoch, as the benchmark's callback does
                trained += 1
                if trained >= budget:
                    best = max(best, accuracy)  # the last epoch trained still counts
                    raise _Stop
            best = max(best, accuracy)
            return accuracy

        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            returned = peer(dims, train, seed, 1, 9, _Stop, Path(tmp))
            files = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file())
        return {
            "returned": returned is None,
            "calls": calls,
            "trained": trained,
            "best": best,
            "files": files,
            "seconds": time.perf_counter() - started,
        }

    peers: dict[str, Callable[..., None]] = {"dehb": run_dehb, "smac-mf": run_smac}
    for name, peer in peers.items():
        run = drive(peer, 0)
        calls = run["calls"]
        fidelities = sorted({epochs for _, _, epochs in calls})
        families = sorted({family for family, _, _ in calls})
        again = drive(peer, 0)["calls"] == calls
        other = drive(peer, 1)["calls"] != calls
        print(
            f"{name:8s} calls {len(calls):3d}  epochs {run['trained']}  fidelities {fidelities}  "
            f"families {families}  best acc {run['best']:.4f}  ({run['seconds']:.1f} s)"
        )
        print(f"{'':8s} same calls again with seed 0: {again}; other calls with seed 1: {other}")
        print(f"{'':8s} files under workdir: {run['files']}")
        assert run["returned"], f"{name}: did not return normally"
        assert run["trained"] == budget, f"{name}: trained {run['trained']} epochs, not {budget}"
        assert sum(epochs for _, _, epochs in calls) >= budget
        assert len(fidelities) >= 2, f"{name}: fidelities {fidelities}"
        assert again and other, f"{name}: not seeded"
    print("self-check passed: both peers stopped exactly at the budget and returned normally")


if __name__ == "__main__":
    _self_check()
