"""``castore-hook enable`` / ``disable``: set ``enabled`` in one config file."""

from __future__ import annotations

import argparse
import os
import sys

from castore_hook.cli._output import EXIT_CODES, EXIT_OK, EXIT_PROBLEMS, wrap
from castore_hook.cli._registry import Command, add_scope, decision_env, scope

HELP = """\
{action}, keeping its comments and layout. Every interpreter notices on its next start: the
file's change makes the cached plan stale. Without --site/--user the file is
CASTORE_HOOK_CONFIG when set, else the user file. If another file or variable still decides
otherwise, the command says so and exits 1. CASTORE_HOOK_DISABLE=1 remains the per-process
kill switch.
"""
EPILOG = (
    EXIT_CODES.format(
        ok="the file says so and castore-hook is now {state} here",
        problems="the file cannot be read/parsed/written, or another file or variable "
        "still decides otherwise",
    )
    + """
examples:
  castore-hook {name}
  sudo castore-hook {name} --site      for every user of this machine
"""
)


def run(args: argparse.Namespace) -> int:
    from castore_hook import config, configedit

    value: bool = args.value
    word = "enabled" if value else "disabled"
    try:
        path = configedit.target_path(decision_env(), scope(args))
        done = configedit.set_enabled(path, value)
    except configedit.ConfigFileError as exc:
        sys.stderr.write(f"castore-hook {args.command}: {exc}\n")
        return EXIT_PROBLEMS
    for line in wrap(f"{path}: {done}", 2, ""):
        sys.stdout.write(line + "\n")
    env = decision_env()
    cfg = config.load_config(env)
    problems = []
    if not cfg.usable:
        problems.append("the configuration cannot be used (castore-hook config show)")
    elif cfg.enabled != value:
        origin = cfg.origins.get("enabled", "default")
        problems.append(f"still {'enabled' if cfg.enabled else 'disabled'}: {origin} decides")
    elif path not in cfg.files_read and os.path.lexists(path):
        problems.append(f"{path} is not read here (CASTORE_HOOK_CONFIG names another file)")
    if value and not config.hook_environ_ignored() and config.flag(env, "CASTORE_HOOK_DISABLE"):
        problems.append("CASTORE_HOOK_DISABLE is set in this environment")
    for problem in problems:
        for line in wrap(problem, 6, "  ! "):
            sys.stdout.write(line + "\n")
    if not problems:
        sys.stdout.write(f"castore-hook is {word} for the next interpreters\n")
    return EXIT_PROBLEMS if problems else EXIT_OK


ACTIONS = {
    False: "Set `enabled = false` in one config file (created if missing), with a comment that "
    "records what was there before",
    True: "Undo `disable` in one config file: put back what `disable` replaced (no `enabled` "
    "key, the old value, or no file at all), or remove an `enabled = false`; never write an "
    "explicit `enabled = true`, which in a user file would override an administrator's "
    "site-wide `enabled = false`",
}


def _command(name: str, value: bool) -> Command:
    def arguments(parser: argparse.ArgumentParser) -> None:
        add_scope(parser)
        parser.set_defaults(value=value)

    return Command(
        name,
        "undo `disable` in a config file" if value else "set enabled = false in a config file",
        HELP.format(action=ACTIONS[value]),
        EPILOG.format(name=name, state="enabled" if value else "disabled"),
        run,
        arguments,
        json_help=None,
    )


ENABLE = _command("enable", True)
DISABLE = _command("disable", False)
