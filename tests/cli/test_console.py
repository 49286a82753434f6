"""What a person sees from ``sweeper``: no backend noise, the device line, progress with an ETA.

Real processes, the embedded digits study shrunk to a few one-epoch trials.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SMALL = ["--n-trials", "2", "--set", "train.epochs=1", "--set", "data.subset=300"]
# lines written by TensorFlow, absl, CUDA or XLA themselves (glog-style prefixes and the notices
# seen on CPU machines), never by sweeper
NOISE = re.compile(
    r"^[IWEF]\d{4} |absl::|oneDNN|cuInit|cudart|cuda_|TF_ENABLE_ONEDNN_OPTS|"
    r"computation_placer|Unable to register|rebuild TensorFlow|tensorflow/core",
    re.MULTILINE,
)
DEVICE = re.compile(
    r"^Keras \d[\w.]* on (tensorflow|jax|torch)[\w. ]*, training on (CPU|GPU)", re.M
)


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SWEEPER_STORAGE", "SWEEPER_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _sweeper(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_tune_prints_no_backend_noise_but_the_device_and_progress_with_eta(
    tmp_path: Path,
) -> None:
    done = _sweeper(tmp_path, "tune", *SMALL)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert NOISE.search(output) is None, output
    assert len(DEVICE.findall(done.stderr)) == 1, done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 2, done.stderr
    for line in progress:
        assert re.search(r"\[\d+:\d\d eta \d+:\d\d\]", line), line
    assert progress[-1].split("eta ")[1].startswith("0:00]")  # the target is reached


def test_verbose_lets_the_backend_output_through(tmp_path: Path) -> None:
    bare = subprocess.run(
        [sys.executable, "-c", "import keras; keras.ops.ones(1)"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    done = _sweeper(tmp_path, "tune", "-v", *SMALL)
    assert done.returncode == 0, done.stderr
    assert DEVICE.search(done.stderr), done.stderr
    if NOISE.search(bare.stderr):  # this backend is noisy here: -v shows it as it is
        assert NOISE.search(done.stderr), done.stderr


def test_studies_lists_every_shipped_study_in_one_line() -> None:
    from click.testing import CliRunner

    from sweeper.cli.commands import main
    from sweeper.studyfile.config import load_study_file, shipped_study_files

    result = CliRunner().invoke(main, ["studies"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    files = shipped_study_files()
    assert len(lines) == len(files) + 1
    for file, line in zip(files, lines, strict=False):
        spec = load_study_file(file)
        assert line.split()[0] == file.stem
        assert spec.train.model in line
        assert f"{spec.train.epochs} epochs" in line
        assert f"{spec.n_trials} trials" in line
        assert spec.data.name in line
    assert "[default]" in next(line for line in lines if line.startswith("digits "))
    assert "sweeper tune NAME" in lines[-1]


def test_a_shipped_study_runs_by_name_in_an_empty_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from click.testing import CliRunner

    from sweeper.cli.commands import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWEEPER_STORAGE", raising=False)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = CliRunner().invoke(
            main,
            [
                *("tune", "mnist-t10k", "--n-trials", "1", "--set", "train.epochs=1"),
                *("--set", "data.subset=300", "--checkpoint-dir", str(tmp_path / "ckpt")),
            ],
        )
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert result.exit_code == 0, result.output
    assert "tuning 'mnist-t10k'" in result.stderr
    assert "1/1 configurations finished (1 complete" in result.stdout
    # the store, and the study's kept best model: no trial checkpoint left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "sweeper.db"]
    kept = sorted(p.name for p in (tmp_path / "ckpt" / "mnist-t10k").iterdir())
    assert kept == ["best-model.json", "best-model.keras", "best-model.lock"]


def test_readme_quotes_the_studies_listing_as_it_is() -> None:
    from click.testing import CliRunner

    from sweeper.cli.commands import main

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    quoted = readme.split("`sweeper studies` lists them:\n\n```\n", 1)[1].split("```", 1)[0]
    listed = CliRunner().invoke(main, ["studies"]).stdout
    assert quoted.splitlines()[:-1] == listed.splitlines()[:-1]
