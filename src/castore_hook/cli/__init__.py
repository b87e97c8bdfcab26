"""The ``castore-hook`` command (also ``python -m castore_hook``): a table of commands.

``COMMANDS`` is the table, in the order ``--help`` lists it; each row (a
``castore_hook.cli._registry.Command``) lives in its command's module beside that command's
manual, arguments, formatter and handler. Exit codes, width and colour: ``_output``.

Importing this package stays cheap, because the console script runs in a hooked interpreter:
heavy modules (``ssl``, ``tomlkit``, the doctor and verify modules) are imported inside the
handler that needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Optional

from castore_hook.cli import (
    _bundle,
    _config,
    _doctor,
    _enable,
    _refresh,
    _registry,
    _status,
    _verify,
)
from castore_hook.cli._bundle import effective_pem
from castore_hook.cli._config import format_config_show
from castore_hook.cli._doctor import format_checks
from castore_hook.cli._output import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    WIDTH,
    colour_enabled,
    paint,
    reflow,
    wrap,
)
from castore_hook.cli._registry import Command
from castore_hook.cli._status import format_status
from castore_hook.cli._verify import format_verify

__all__ = [
    "COMMANDS",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "WIDTH",
    "build_parser",
    "colour_enabled",
    "effective_pem",
    "format_checks",
    "format_config_show",
    "format_status",
    "format_verify",
    "main",
    "paint",
    "reflow",
    "wrap",
]

#: The table: every command, in the order ``castore-hook --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    _status.COMMAND,
    _doctor.COMMAND,
    _verify.COMMAND,
    _bundle.COMMAND,
    _config.COMMAND,
    _enable.ENABLE,
    _enable.DISABLE,
    _refresh.COMMAND,
)

DESCRIPTION = """\
castore-hook makes every Python interpreter of this environment trust the certificate
authorities your configuration names, with no application change. It runs at start-up
from castore_hook.pth; these commands show and steer what it does.

commands that only read accept --json: status, doctor, verify, bundle, config path,
config show, refresh. Colour is used on a terminal or when FORCE_COLOR is set, and never
when NO_COLOR is set (NO_COLOR wins).
"""

EPILOG = (
    EXIT_CODES.format(ok="fine", problems="problems found (the command says which)")
    + """
examples:
  castore-hook status            what this interpreter trusts and why
  castore-hook doctor            every check, with a fix for each failure
  castore-hook verify pypi.org   a real TLS handshake with the effective trust
  castore-hook <command> --help  the manual of one command
"""
)


def build_parser() -> argparse.ArgumentParser:
    from castore_hook import __version__ as version

    return _registry.build_parser(
        "castore-hook", DESCRIPTION, EPILOG, f"castore-hook {version}", COMMANDS
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except SystemExit as exc:  # parser.error() inside a command: a usage error
        return int(exc.code or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        from castore_hook.config import flag

        if flag(os.environ, "CASTORE_HOOK_DEBUG"):
            raise
        sys.stderr.write(
            f"castore-hook: internal error: {type(exc).__name__}: {exc} "
            "(set CASTORE_HOOK_DEBUG=1 for a traceback)\n"
        )
        return EXIT_PROBLEMS
