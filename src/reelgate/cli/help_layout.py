"""How ``--help`` shows commands: a flag shows no value type, a repeatable option the type of one value, and a
docstring's paragraphs are wrapped to the terminal rather than at the source's line breaks.

Typer 0.29 prints every option's type beside it, and for a flag that type is ``<bool>`` (``--json <bool>``,
``--help <bool>``), which reads as if the flag took a value (``--json true``); a repeatable option shows
``<list[str]>``, which reads as if it took a list. The type column comes from ``TyperOption.display_type_rich``,
which prints the option's ``metavar`` instead when one is set, so an empty metavar on a flag (and ``<str>`` on a
repeatable option) fixes the help without touching parsing. ``HelpfulGroup`` applies this to the whole command
tree as commands are looked up (a help screen or a run), including groups and commands registered by other
modules and the ``--help`` option Typer adds to each command.

In its rich mode Typer also keeps the single line breaks of a docstring (in the command lists, and in every
paragraph after the first), so a help text wrapped at 120 columns in the source showed ragged on an 80-column
terminal; ``reflow`` joins each paragraph's lines, and Rich wraps them to the terminal.
"""

from __future__ import annotations

import inspect
import re

from typer import _click as click  # Typer 0.29 vendors Click here; TyperGroup's hooks take its Context
from typer.core import TyperGroup, TyperOption

_LIST_TYPE = re.compile(r"^<list\[(.+)\]>$")


def tidy_option(param: object, ctx: click.Context) -> None:
    """Give a flag an empty type column and a repeatable option the type of one value (unless it has a metavar)."""
    if not isinstance(param, TyperOption) or param.metavar is not None:
        return
    if param.is_flag:
        param.metavar = ""
    elif param.multiple:
        one = _LIST_TYPE.match(param.display_type(ctx))
        if one:
            param.metavar = f"<{one.group(1)}>"


def reflow(text: str | None) -> str | None:
    """Each paragraph on one line (a paragraph starting with ``\\b`` keeps its lines, as in Click)."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def tidy_command(command: click.Command, ctx: click.Context) -> None:
    """Tidy a command's help, options and --help option, and those of every command below it (idempotent)."""
    command.help, command.short_help = reflow(command.help), reflow(command.short_help)
    for param in [*command.params, command.get_help_option(ctx)]:
        tidy_option(param, ctx)
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            tidy_command(sub, ctx)


class HelpfulGroup(TyperGroup):
    """The root group: tidies its own options and, as each command is looked up, that command's whole subtree."""

    def get_help_option(self, ctx: click.Context) -> TyperOption | None:
        for param in self.params:
            tidy_option(param, ctx)
        option = super().get_help_option(ctx)
        tidy_option(option, ctx)
        return option

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            tidy_command(command, ctx)
        return command
