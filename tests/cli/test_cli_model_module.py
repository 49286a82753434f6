"""``sweeper tune`` with a user model whose module is not there: one line naming the module and
the folders looked in, in a moment, before the backend starts (no Keras, no TensorFlow), and
nothing written. A real process; a driver reports which modules it imported.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from process_helpers import sweeper_env

STUDY = """\
[study]
name = "missing"

[data]
dataset = "digits"
subset = 300

[train]
model = "{model}"
epochs = 1
"""
# ``python -m sweeper ARGS``, then one line on stdout: the backends this process imported
DRIVER = """
import runpy, sys
sys.argv = ["sweeper", *sys.argv[1:]]
try:
    runpy.run_module("sweeper", run_name="__main__", alter_sys=True)
finally:
    backends = {"keras", "tensorflow", "jax", "torch"}
    loaded = sorted({name.split(".")[0] for name in sys.modules} & backends)
    print("backends imported:", ",".join(loaded) or "none", file=sys.__stdout__, flush=True)
"""


def test_a_missing_model_module_is_one_line_before_the_backend_starts(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(STUDY.format(model="mymodels_missing:build"))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, "tune", "s.toml", "--storage", "sqlite:///s.db"],
        cwd=tmp_path,
        env=sweeper_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    seconds = time.monotonic() - start
    assert done.returncode != 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "backends imported: none", done.stdout
    lines = [line for line in done.stderr.splitlines() if not line.startswith("tuning ")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(
        f"error: model 'mymodels_missing:build': no module 'mymodels_missing' in {tmp_path}, "
    ), lines[0]
    assert str(Path(__file__).resolve().parents[1]) in lines[0]  # PYTHONPATH: tests/
    assert lines[0].endswith(
        "or the installed packages; put mymodels_missing.py beside the study file or install it"
    ), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # no store, no checkpoints
    assert seconds < 20, seconds  # the backend's start-up alone takes longer on a busy machine
