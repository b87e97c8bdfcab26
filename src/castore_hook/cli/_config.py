"""``castore-hook config path|show|init``: config file locations, effective values, a starter
file (the files themselves are ``castore_hook.configedit``'s job)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, Optional

from castore_hook import _keytable
from castore_hook.cli._output import EXIT_CODES, EXIT_OK, EXIT_PROBLEMS, WIDTH, dump_json, wrap
from castore_hook.cli._registry import Command, add_scope, decision_env, scope, usage

HELP = f"""\
Configuration files (TOML). Files are read in this order, a later file winning key by key:
each site file (Linux: each $XDG_CONFIG_DIRS entry, default /etc/xdg, plus
/castore-hook/config.toml), then the user file ($XDG_CONFIG_HOME/castore-hook/config.toml, default
~/.config/...). CASTORE_HOOK_CONFIG=/abs/file.toml replaces them all.

  path   the locations platformdirs gives on this machine, and which exist
  show   the effective merged values and where each came from (file, variable, default)
  init   write a commented starter file (every key commented out)

Keys (docs/configuration.md): {", ".join(key.name for key in _keytable.KEYS)}.
"""
EPILOG = (
    EXIT_CODES.format(
        ok="fine",
        problems="show: the configuration has problems; init: the file exists or cannot be written",
    )
    + """
examples:
  castore-hook config path
  castore-hook config show --json
  castore-hook config init --user
  sudo castore-hook config init --site
"""
)


def format_config_show(
    values: dict[str, Any], origins: dict[str, str], problems: Sequence[Any]
) -> list[str]:
    """``key = value  # origin`` lines, origin on its own line when too long.

    The output is a TOML document that reads back as ``values`` (values written by tomlkit,
    comments stripped of what TOML forbids in them), so it can be saved as a config file."""
    from castore_hook import configedit

    lines = ["# effective castore-hook configuration; each value's origin in a comment"]
    for key in configedit.KEYS:
        assignment = f"{key} = {configedit.toml_value(values[key])}"
        comment = configedit.toml_comment(origins[key])
        aligned = f"{assignment.ljust(32)}  {comment}"
        if len(aligned) <= WIDTH:
            lines.append(aligned)
        elif len(assignment) + 2 + len(comment) <= WIDTH:
            lines.append(f"{assignment}  {comment}")
        else:
            lines.append(comment)
            lines.append(assignment)
    if problems:
        lines.append("")
        lines.append("# problems:")
        for problem in problems:
            where = problem.where()
            text = configedit.toml_comment(f"{where + ': ' if where else ''}{problem.message}")
            body = wrap(text[2:], 6, "#   ! ")
            # Continuation lines stay comments, or the document would not parse.
            lines.extend([body[0], *("#" + line[1:] for line in body[1:])])
    return lines


def run_path(args: argparse.Namespace) -> int:
    from castore_hook import configedit

    env = decision_env()
    entries = configedit.locations(env)
    try:
        target: Optional[str] = configedit.target_path(env, None)
    except configedit.ConfigFileError:
        target = None
    if args.json:
        dump_json({"files": [e.as_json() for e in entries], "edit": target})
        return EXIT_OK
    for entry in entries:
        state = "read" if entry.read else ("present, not used" if entry.exists else "absent")
        sys.stdout.write(f"{entry.role:<8} {entry.path} ({state})\n")
    if target:
        sys.stdout.write(f"edited by enable, disable, init (unless --site/--user):\n  {target}\n")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    from castore_hook import configedit

    values, origins, cfg = configedit.effective(decision_env())
    if args.json:
        dump_json(
            {
                "values": values,
                "origins": origins,
                "usable": cfg.usable,
                "files_read": cfg.files_read,
                "problems": [
                    {"where": p.where(), "message": p.message, "fatal": p.fatal}
                    for p in cfg.problems
                ],
            }
        )
    else:
        for line in format_config_show(values, origins, cfg.problems):
            sys.stdout.write(line + "\n")
        if not cfg.usable:
            sys.stdout.write("# the configuration cannot be used: castore-hook stays off\n")
    return EXIT_PROBLEMS if cfg.problems else EXIT_OK


def run_init(args: argparse.Namespace) -> int:
    from castore_hook import configedit

    try:
        path = configedit.target_path(decision_env(), scope(args))
        configedit.init(path, args.force)
    except configedit.ConfigFileError as exc:
        sys.stderr.write(f"castore-hook config init: {exc}\n")
        return EXIT_PROBLEMS
    sys.stdout.write(f"wrote {path} (every key commented out; edit it, then run doctor)\n")
    return EXIT_OK


def _init_arguments(parser: argparse.ArgumentParser) -> None:
    add_scope(parser)
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")


#: The actions share the command's manual: it describes all three.
COMMAND = Command(
    "config",
    "config file locations, effective values, starter file",
    HELP,
    EPILOG,
    usage,
    json_help=None,
    subcommands=(
        Command("path", "where the config files are", HELP, EPILOG, run_path),
        Command("show", "effective values and where each came from", HELP, EPILOG, run_show),
        Command(
            "init",
            "write a commented starter file",
            HELP,
            EPILOG,
            run_init,
            _init_arguments,
            json_help=None,
        ),
    ),
)
