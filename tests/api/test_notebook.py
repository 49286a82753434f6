"""The notebook example run as a notebook: ``examples/notebook_quickstart.py``'s ``# %%`` cells
made into one with nbformat and executed cell by cell in a real IPython kernel (nbclient,
ipykernel), as a person running it in Jupyter sees it.

What a notebook shows of a run: no start-up notices of the backend and nothing on stderr (red in
Jupyter), the progress block (HTML, updated in place) and the best trial as an HTML table.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

import sweeper
from sweeper.environment import (
    CHECKPOINT_ENV,
    DATA_DIR_ENV,
    STORAGE_ENV,
    TRUSTED_HASH_ENV,
    VERBOSE_ENV,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "notebook_quickstart.py"
# lines written by TensorFlow, absl, CUDA or XLA themselves (as tests/cli/test_console.py)
NOISE = re.compile(
    r"^[IWEF]\d{4} |absl::|oneDNN|cuInit|cudart|cuda_|TF_ENABLE_ONEDNN_OPTS|"
    r"computation_placer|Unable to register|rebuild TensorFlow|tensorflow/core",
    re.MULTILINE,
)


def notebook_of(script: Path) -> Any:
    """A ``# %%`` script as a notebook: each ``# %%`` line starts a cell (``# %% [markdown]`` a
    markdown one, its lines without their ``# ``); the words after ``# %%`` stay as a comment."""
    cells: list[tuple[str, list[str]]] = []
    for line in script.read_text().splitlines():
        if line.startswith("# %%"):
            title = line.removeprefix("# %%").strip()
            kind = "markdown" if title.startswith("[markdown]") else "code"
            cells.append((kind, [f"# {title}"] if kind == "code" and title else []))
        elif cells:
            kind, lines = cells[-1]
            lines.append(line.removeprefix("#").removeprefix(" ") if kind == "markdown" else line)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, lines in cells:
        source = "\n".join(lines).strip("\n")
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(source))
    return nb


def kernel_env(tmp_path: Path) -> dict[str, str]:
    """A person's environment: no store, checkpoint folder or backend log level set; arrays and
    IPython's profile under ``tmp_path``."""
    dropped = {STORAGE_ENV, CHECKPOINT_ENV, VERBOSE_ENV, TRUSTED_HASH_ENV, "TF_CPP_MIN_LOG_LEVEL"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env[DATA_DIR_ENV] = str(tmp_path / "arrays")
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    return env


def outputs(nb: Any) -> list[tuple[int, Any]]:
    """Every output of every code cell, with its cell's index."""
    return [
        (i, out)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.outputs
    ]


def texts(output: Any) -> list[str]:
    """What an output says, whatever its kind: a stream's text, each text-like form of a
    display or result, an error's name, value and traceback."""
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return [output.ename, output.evalue, *output.traceback]
    data = output.get("data", {})
    return [v for k, v in data.items() if isinstance(v, str) and not k.startswith("image/")]


def test_converter_keeps_cells_and_markdown() -> None:
    nb = notebook_of(EXAMPLE)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# sweeper")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    starts = [x for x in EXAMPLE.read_text().splitlines() if x.startswith("# %%")]
    assert len(code) == len([x for x in starts if "[markdown]" not in x]) and all(code)
    assert any(
        s.startswith("# The best trial")
        and s.endswith("result.best  # noqa: B018  (a cell's last value is shown)")
        for s in code
    )
    nbformat.validate(nb)


def test_the_example_runs_in_a_kernel_quietly_with_progress_and_the_best_as_html(
    tmp_path: Path,
) -> None:
    nb = notebook_of(EXAMPLE)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    with contextlib.ExitStack() as stack:
        try:  # started here, so that only a kernel that cannot start skips the test
            stack.enter_context(client.setup_kernel(env=kernel_env(tmp_path), cleanup_kc=False))
        except Exception as error:
            pytest.skip(f"no IPython kernel could start here: {error!r}")
        client.execute()  # uses the kernel started above, and shuts it down

    every = outputs(nb)
    errors = [(i, out) for i, out in every if out.output_type == "error"]
    assert not errors, errors
    stderr = [(i, out.text) for i, out in every if out.get("name") == "stderr"]
    assert not stderr, stderr
    for i, out in every:
        for text in texts(out):
            assert NOISE.search(text) is None, (i, text[:2000])

    html = [(i, out.data["text/html"]) for i, out in every if "text/html" in out.get("data", {})]
    progress = [h for _, h in html if "<progress" in h]
    assert progress, "no progress block"
    # updated in place to the end of the run: 8 trials of 8
    assert any(re.search(r'<progress value="8" max="8"', h) for h in progress), progress
    best = sweeper.load("digits-quickstart", storage=f"sqlite:///{tmp_path / 'sweeper.db'}").best
    assert best.value is not None
    shown = [h for _, h in html if "val_accuracy" in h and f"{best.value:.4f}" in h]
    assert shown, [h[:500] for _, h in html]
    assert f"trial {best.number}" in shown[0]
