"""The table's record and the parser built from it; what several handlers share.

A ``Command`` is one row of the CLI's table (``castore_hook.cli.COMMANDS``): its name, the
one-line summary ``--help`` lists, its manual (help and epilog), a function adding its own
arguments, its handler, and, for ``config``, its sub-commands. Each command module defines
its rows beside the text and the handler they name; ``build_parser`` only walks the table.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Callable, Optional

from castore_hook._record import FrozenRecord
from castore_hook.cli._output import EXIT_USAGE, reflow

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]

JSON_HELP = "print the result as JSON (stable keys, no colour)"


class Command(FrozenRecord):
    """One command: ``json_help`` is ``None`` for a command without ``--json``;
    ``subcommands`` (listed as ACTION) make ``handler`` the usage error of a bare call."""

    __slots__ = (
        "arguments",
        "epilog",
        "handler",
        "help",
        "json_help",
        "name",
        "subcommands",
        "summary",
    )

    def __init__(
        self,
        name: str,
        summary: str,
        help: str,
        epilog: str,
        handler: Handler,
        arguments: Optional[Arguments] = None,
        json_help: Optional[str] = JSON_HELP,
        subcommands: Sequence[Command] = (),
    ) -> None:
        self.name = name
        self.summary = summary
        self.help = help
        self.epilog = epilog
        self.handler = handler
        self.arguments = arguments
        self.json_help = json_help
        self.subcommands = tuple(subcommands)


def build_parser(
    prog: str, description: str, epilog: str, version: str, commands: Sequence[Command]
) -> argparse.ArgumentParser:
    """The ``argparse`` parser of the whole table, sub-commands listed in table order."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=reflow(description),
        epilog=reflow(epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version)
    _add_commands(parser, "command", "COMMAND", commands)
    return parser


def _add_commands(
    parser: argparse.ArgumentParser, dest: str, metavar: str, commands: Sequence[Command]
) -> None:
    group = parser.add_subparsers(dest=dest, metavar=metavar)
    for command in commands:
        sub: argparse.ArgumentParser = group.add_parser(
            command.name,
            help=command.summary,
            description=reflow(command.help),
            epilog=reflow(command.epilog),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if command.json_help:
            sub.add_argument("--json", action="store_true", help=command.json_help)
        sub.set_defaults(handler=command.handler, parser=sub)
        if command.arguments is not None:
            command.arguments(sub)
        if command.subcommands:
            _add_commands(sub, f"{command.name}_command", "ACTION", command.subcommands)


def usage(args: argparse.Namespace) -> int:
    """The handler of a command called without its ACTION: its help on stderr, exit 2."""
    args.parser.print_help(sys.stderr)
    return EXIT_USAGE


# --------------------------------------------------------------------------------------------
# Shared by several handlers


def add_scope(parser: argparse.ArgumentParser) -> None:
    """``--site`` / ``--user``: which config file ``config init``, ``enable``, ``disable`` edit."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--site",
        action="store_true",
        help="the machine-wide file (first site config folder; needs root on Linux)",
    )
    group.add_argument("--user", action="store_true", help="this user's file")


def scope(args: argparse.Namespace) -> Optional[str]:
    return (
        "site"
        if getattr(args, "site", False)
        else ("user" if getattr(args, "user", False) else None)
    )


def decision_env() -> dict[str, str]:
    """The environment as the user set it (``_plankey.decision_environ``): what config and
    the probes see, whatever the hook exported into this process."""
    from castore_hook import _plankey, config

    return _plankey.decision_environ(dict(os.environ), config.hook_environ_ignored())
