"""Every option of every `farm` command and subcommand says what it does, and shows its default where it has
one (click's show_default), so `farm X --help` answers a new user without the docs (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.core import UNSET

from farm.cli.main import COMMANDS, cli


def _walk(group: click.Group, ctx: click.Context, path: str) -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{path} {name}"
        yield f"{path} {name}", command
        if isinstance(command, click.Group):
            yield from _walk(command, click.Context(command, parent=ctx, info_name=name), f"{path} {name}")


def _commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(cli, info_name="farm")
    found = [("farm", cli), *_walk(cli, ctx, "farm")]
    assert {path.split()[1] for path, _ in found[1:]} >= set(COMMANDS)
    return found


def _has_default(option: click.Option) -> bool:
    if option.is_flag or option.count:
        return False
    default = option.default
    return default is not None and default is not UNSET and default != () and not callable(default)


def test_every_option_has_help_and_shows_its_default() -> None:
    missing_help, hidden_default = [], []
    for path, command in _commands():
        for param in command.params:
            if not isinstance(param, click.Option) or param.name == "help" or param.hidden:
                continue
            where = f"{path} {param.opts[-1]}"
            if not (param.help or "").strip():
                missing_help.append(where)
            if _has_default(param) and not param.show_default:
                hidden_default.append(where)
    assert not missing_help, "options without help: " + ", ".join(missing_help)
    assert not hidden_default, "defaults not shown (show_default=True): " + ", ".join(hidden_default)


def test_every_format_option_is_documented_with_its_choices() -> None:
    seen = 0
    for path, command in _commands():
        for param in command.params:
            if isinstance(param, click.Option) and "--format" in param.opts:
                seen += 1
                assert param.show_default and param.help, path
                assert isinstance(param.type, click.Choice) and "table" in param.type.choices, path
    assert seen >= 15
