"""Every command's ``--help``: an Examples section of command lines that parse, and a help text
for every option and argument (issue 30, "help and mistakes")."""

from __future__ import annotations

import re
import shlex

import click
import pytest
from click.testing import CliRunner

from sweeper.cli.commands import main

ENV_ASSIGNMENT = re.compile(r"^[A-Z_]+=\S+$")


def walk(
    group: click.Group, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command under ``group``, with the words that name it (``("best",)``)."""
    ctx = click.Context(group)
    out: list[tuple[tuple[str, ...], click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        out.append(((*path, name), command))
        if isinstance(command, click.Group):
            out.extend(walk(command, (*path, name)))
    return out


COMMANDS = walk(main)
IDS = [" ".join(path) for path, _ in COMMANDS]


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def examples(text: str) -> list[str]:
    """The command lines of the help's Examples section (each as written: unwrapped)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Examples"))
    out = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        out.append(line.strip())
    return out


def test_the_walk_finds_every_subcommand() -> None:
    assert {
        "tune",
        "worker",
        "studies",
        "families",
        "status",
        "best",
        "importance",
        "plot",
        "report",
        "export",
        "schedules",
        "evaluate",
        "confirm",
        "lr-find",
    } <= set(IDS)


def example_words(line: str) -> list[str]:
    """An example's command line as words: its description (after two spaces), variables set
    before ``sweeper`` and a redirection of the output left out."""
    words = shlex.split(re.split(r"\s{2,}", line)[0])
    while words and ENV_ASSIGNMENT.match(words[0]):  # SWEEPER_STORAGE=... sweeper status
        words.pop(0)
    return words[: words.index(">")] if ">" in words else words


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_help_has_examples_that_parse(path: tuple[str, ...], command: click.Command) -> None:
    lines = examples(help_text(path))
    assert 2 <= len(lines) <= 4, lines
    for line in lines:
        words = example_words(line)
        assert words[0] == "sweeper", line
        target: click.Command = main
        parent = click.Context(main)
        args = words[1:]
        while isinstance(target, click.Group):  # down to the command the line runs
            name, *args = args
            found = target.get_command(parent, name)
            assert found is not None, f"{line}: no command {name!r}"
            target, parent = found, click.Context(found, parent=parent, info_name=name)
        # click parses the line as the command would (options, their types, arguments)
        target.make_context(parent.info_name, args, parent=parent.parent)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_option_and_argument_is_documented(
    path: tuple[str, ...], command: click.Command
) -> None:
    ctx = click.Context(command, info_name=path[-1])
    doc = command.help or ""
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{' '.join(path)} {param.opts[0]} has no help"
        elif isinstance(param, click.Argument):
            for word in param.human_readable_name.replace("...", " ").split():
                assert word in doc, f"{' '.join(path)}: argument {word} is not in its help"


def test_examples_keep_their_lines() -> None:
    """``\\b`` keeps an example on its line, even where the terminal is narrower."""
    result = CliRunner().invoke(main, ["best", "--help"], terminal_width=50)
    line = "sweeper best digits --code --epochs 30 --examples 60000 --batch-size 64"
    assert line in [x.strip() for x in result.output.splitlines()], result.output
