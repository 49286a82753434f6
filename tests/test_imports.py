"""The package's import graph: arrows only go down (no cycle, and no import from a higher
sub-package: cli > api > analysis > retraining, testing > search > store > studyfile >
training > errors, environment, interrupts), and no module
imports another module's private names. Read from the source with ``ast``, function-level
imports included. Inside training, the schedule families are plug-ins: a family's module imports
only the schedules' shared code, and no module names a family (the registry finds them). And the
read-only side (sweeper.analysis, the read-only commands) and the schedule families import no
Keras."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sweeper"
# the read-only side: every module of sweeper.analysis and the read-only commands
READ_ONLY = ("sweeper.analysis", "sweeper.cli.read")
# the schedule families and what finds them: a family's Keras twin is imported inside keras()
FAMILIES = "sweeper.training.families"
# ...and what a training run imports before it needs Keras (Keras is loaded inside the functions)
TRAINING_SETUP = (
    "sweeper.studyfile.config",
    "sweeper.search.space",
    "sweeper.training.train_trial",
    "sweeper.training.models",
    "sweeper.training.data",
)
KERAS_FREE = (
    *READ_ONLY,
    FAMILIES,
    "sweeper.training.schedules",
    "sweeper.search.trial_record",
    *TRAINING_SETUP,
)


def _modules() -> dict[str, Path]:
    out = {}
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = file
    return out


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private: list[str] = []
    for name, file in modules.items():
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sweeper"):
                target = str(node.module)
                if target in modules and target != name:
                    edges[name].add(target)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        edges[name].add(sub)
                    elif alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{name}: from {target} import {alias.name}")
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name in modules)
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_no_import_cycle_in_the_package() -> None:
    edges, _ = _graph()
    assert len(edges) > 20  # the walk found the package
    assert _cycles(edges) == []


def test_no_module_imports_another_modules_private_names() -> None:
    _, private = _graph()
    assert private == []


# the sub-packages as layers: a module imports only from its own layer or the ones below
LAYERS = {
    "sweeper.errors": 0,
    "sweeper.environment": 0,  # the SWEEPER_* variables, declared once
    "sweeper.interrupts": 0,
    "sweeper.faults": 0,  # SWEEPER_KILL_AT crash points for the fault tests
    "sweeper.training": 1,
    "sweeper.studyfile": 2,
    "sweeper.store": 3,
    "sweeper.search": 4,
    "sweeper.retraining": 5,
    "sweeper.testing": 5,  # a synthetic study straight into a store, for tests and benchmarks
    "sweeper.analysis": 6,
    "sweeper.api": 7,
    "sweeper.cli": 8,
}


# inside a layer, a package of plug-ins: what each of its modules may import (nothing else of
# sweeper), and no module outside it imports one of them by name
# (sweeper.training.schedules finds the families with pkgutil)
PLUG_INS = {
    FAMILIES: {
        "sweeper.errors",
        "sweeper.training.schedule_base",  # Schedule, Horizon, the checks
        "sweeper.training.warmup_decay",  # the warm-up / hold / decay kernel
        "sweeper.training.schedule_code",  # the pieces of Keras code
        "sweeper.training.keras_schedules",  # the keras.ops twins, inside keras()
    },
}


def _plug_in_breaches(edges: dict[str, set[str]]) -> list[str]:
    out = []
    for package, allowed in PLUG_INS.items():
        for a, bs in edges.items():
            if a.startswith(f"{package}."):  # a plug-in: its shared code only
                out += [f"{a} -> {b}" for b in bs if b not in allowed]
            else:  # elsewhere: no plug-in by name
                out += [f"{a} -> {b}" for b in bs if b.startswith(f"{package}.")]
    return sorted(out)


def _layer(module: str) -> int:
    if module == "sweeper":  # __version__ and the API loaded lazily: no static import
        return 0
    top = ".".join(module.split(".")[:2])
    return LAYERS.get(top, len(LAYERS))  # sweeper.__main__: above everything


def _upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, bs in edges.items() for b in bs if _layer(b) > _layer(a))


def test_imports_go_down_the_layers() -> None:
    edges, _ = _graph()
    assert set(LAYERS) <= set(edges)  # every layer is still there
    assert _upward(edges) == []


def test_plug_ins_import_only_their_shared_code_and_nothing_names_them() -> None:
    edges, _ = _graph()
    modules = [m for m in edges if m.startswith(f"{FAMILIES}.")]
    assert len(modules) >= 14  # every family is a module of the package
    assert _plug_in_breaches(edges) == []


def test_the_plug_in_check_can_fail() -> None:
    family = f"{FAMILIES}.constant"
    assert _plug_in_breaches({family: {"sweeper.training.train_trial"}}) == [
        f"{family} -> sweeper.training.train_trial"
    ]
    assert _plug_in_breaches({"sweeper.training.schedule_code": {family}}) == [
        f"sweeper.training.schedule_code -> {family}"
    ]
    assert _plug_in_breaches({"sweeper.training.schedules": {FAMILIES}}) == []


def test_the_layer_check_can_fail() -> None:
    edges = {"sweeper.training.train_trial": {"sweeper.store.store"}, "sweeper.store.store": set()}
    assert _upward(edges) == ["sweeper.training.train_trial -> sweeper.store.store"]
    assert _upward({"sweeper.cli.read": {"sweeper", "sweeper.analysis.plots"}}) == []


def test_the_read_only_side_and_the_families_import_no_keras_or_tensorflow() -> None:
    # the package itself too: its public names load lazily
    modules = sorted(m for m in _modules() if m == "sweeper" or m.startswith(KERAS_FREE))
    assert len(modules) > 10 and "sweeper.analysis.queries" in modules
    assert f"{FAMILIES}.constant" in modules and "sweeper" in modules
    assert set(TRAINING_SETUP) <= set(modules)
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "print(sorted(m for m in sys.modules "
    code += "if m.split('.')[0] in ('keras', 'tensorflow', 'tf_keras')))"
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_cycle_finder_can_fail() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _reexports(source: str) -> list[str]:
    """Names a module hands on without defining them: ``from x import y as y``, and names in
    its ``__all__`` it does not define at the top level."""
    tree = ast.parse(source)
    defined: set[str] = set()
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.ImportFrom):
            out += [f"{a.name} as {a.asname}" for a in node.names if a.asname == a.name]
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            names = [
                e.value for e in getattr(node.value, "elts", []) if isinstance(e, ast.Constant)
            ]
            out += [f"__all__: {n}" for n in names if n not in defined]
    return out


def test_no_module_hands_on_a_name_it_does_not_define() -> None:
    """Every name is imported from the module that defines it: no shim re-exports, no
    ``__all__`` listing another module's names (the public ``sweeper/__init__`` and its typed
    stub excepted: they are the package's names)."""
    found = {
        str(path.relative_to(ROOT)): names
        for name, path in _modules().items()
        if path.name != "__init__.py" and (names := _reexports(path.read_text()))
    }
    assert found == {}


def test_the_reexport_check_can_fail() -> None:
    assert _reexports("from a import b as b\n") == ["b as b"]
    assert _reexports("from a import b\n__all__ = ['b', 'c']\nc = 1\n") == ["__all__: b"]
