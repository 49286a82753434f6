"""A stored study refuses a changed study file naming the settings that differ, old -> new, in
one line (sweeper.studyfile.study_diff through Store.check_study_file, on real SQLite stores)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import pytest

from sweeper.errors import StudyChangedError
from sweeper.search.runner import prepare_study
from sweeper.store.store import Store
from sweeper.studyfile.config import parse_study
from sweeper.studyfile.study_diff import MAX_SHOWN, changes, changes_text

pytestmark = pytest.mark.usefixtures("clean_process")

STUDY = """\
[study]
name = "small"

[data]
dataset = "digits"
subset = 400

[train]
epochs = 9

[space]
schedules = ["constant", "cosine"]
initial_lr = { low = 0.01, high = 0.2, log = true }

[[baselines]]
name = "constant 0.01"
schedule = "constant"
initial_lr = 0.01
"""


def test_changes_name_each_setting_old_to_new_in_file_order() -> None:
    new = (
        STUDY.replace("epochs = 9", "epochs = 12")
        .replace("high = 0.2", "high = 0.3")
        .replace('["constant", "cosine"]', '["cosine"]')
        .replace("initial_lr = 0.01\n", "initial_lr = 0.02\n")
        + '\n[pruner]\ntype = "none"\n'
    )
    assert changes(STUDY, (), new, ("train.batch_size=16",)) == [
        "[train] epochs 9 -> 12",
        "[train] batch_size unset -> 16",
        '[space] schedules ["constant", "cosine"] -> ["cosine"]',
        "[space] initial_lr.high 0.2 -> 0.3",
        "[[baselines]] #1 initial_lr 0.01 -> 0.02",
        '[pruner] type unset -> "none"',
    ]


def test_changes_of_baselines_added_or_removed_and_of_comments_only() -> None:
    more = STUDY + '\n[[baselines]]\nname = "cosine"\nschedule = "cosine"\ninitial_lr = 0.1\n'
    assert changes(STUDY, (), more, ()) == [
        '[[baselines]] #2 unset -> { name = "cosine", schedule = "cosine", initial_lr = 0.1 }'
    ]
    assert changes(more, (), STUDY, ()) == [
        '[[baselines]] #2 { name = "cosine", schedule = "cosine", initial_lr = 0.1 } -> unset'
    ]
    assert changes(STUDY, (), STUDY + "# a comment\n", ()) == []
    assert changes_text(STUDY, (), STUDY + "# a comment\n", ()) == (
        "no setting differs, only comments or layout"
    )
    assert changes(STUDY, (), "[train\n", ()) is None  # unreadable: no list of changes


def test_changes_text_counts_what_it_does_not_name() -> None:
    many = (
        STUDY
        + "[pruner]\n"
        + "".join(
            f"{k} = {v}\n"
            for k, v in (
                ("n_startup_trials", 1),
                ("n_warmup_steps", 2),
                ("min_resource", 2),
                ("reduction_factor", 4),
                ("stall_factor", 2.0),
                ("brackets", 2),
                ("type", '"asha"'),
            )
        )
    )
    text = changes_text(STUDY, (), many, ())
    assert text is not None
    assert text.count("->") == MAX_SHOWN
    assert text.endswith(" and 1 more")


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_changed_study_file_is_refused_naming_what_changed(tmp_path: Path) -> None:
    file = tmp_path / "small.toml"
    db = tmp_path / "s.db"
    store = Store(f"sqlite:///{db}")
    prepare = functools.partial(
        prepare_study, store=store, name="small", steps_per_epoch=4, target=2
    )
    prepare(parse_study(STUDY, str(file)), allow_changed=False)
    before = digest_of(db)

    changed = parse_study(
        STUDY.replace("epochs = 9", "epochs = 12").replace("high = 0.2", "high = 0.3"), str(file)
    )
    with pytest.raises(StudyChangedError) as info:
        prepare(changed, allow_changed=False)
    assert str(info.value) == (
        f"study 'small' in sqlite:///{db} was created from a different study file (stored from "
        f"{file}); the study file changed: [train] epochs 9 -> 12, [space] initial_lr.high "
        "0.2 -> 0.3; use the same file, another --study-name, or --allow-changed to continue "
        "it with the new file"
    )
    assert digest_of(db) == before  # refused before any write

    # a file and --set items changed together: both named, the --set ones as settings too
    both = parse_study(
        STUDY.replace("subset = 400", "subset = 300"), str(file), overrides=["train.epochs=3"]
    )
    with pytest.raises(StudyChangedError, match=r"changed: \[data\] subset 400 -> 300, "):
        prepare(both, allow_changed=False)

    # --set items alone changed: named as such, as before
    overridden = parse_study(STUDY, str(file), overrides=["train.epochs=3"])
    with pytest.raises(StudyChangedError) as info:
        prepare(overridden, allow_changed=False)
    assert "was run with no --set, this run has --set train.epochs=3" in str(info.value)
    assert digest_of(db) == before

    prepare(changed, allow_changed=True)  # allowed: the new file is the study's now
    prepare(changed, allow_changed=False)
    with pytest.raises(StudyChangedError, match=r"changed: \[train\] epochs 12 -> 9, "):
        prepare(parse_study(STUDY, str(file)), allow_changed=False)
    store.close()


def test_a_comment_alone_is_named_as_such(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    prepare = functools.partial(
        prepare_study, store=store, name="small", steps_per_epoch=4, target=2
    )
    prepare(parse_study(STUDY, "small.toml"), allow_changed=False)
    with pytest.raises(StudyChangedError) as info:
        prepare(parse_study(STUDY + "# tuned on Monday\n", "small.toml"), allow_changed=False)
    assert (
        "the study file changed: no setting differs, only comments or layout; use the same file"
        in str(info.value)
    )
    store.close()
