"""The ``castore-hook`` command (also ``python -m castore_hook``).

Exit codes are a contract: 0 fine, 1 problems found (for commands that check), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, Optional

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

_DESCRIPTION = """\
castore-hook makes every Python interpreter of this environment trust the certificate
authorities your configuration names, with no application change. It runs at start-up
from castore_hook.pth; these commands show and steer what it does.
"""

_STATUS_HELP = """\
Show what this interpreter trusts and why: the chosen source and its form (file, folder,
in-memory data), the variables the hook exported or removed, the configuration files read,
the decision trail, and every problem found. Always exits 0; use --json for the stable,
documented keys (docs/status.md).
"""

_REFRESH_HELP = """\
Decide the plan again now and rewrite the plan cache, as the next interpreter would. Use it
in image builds, or after changing a CA file in place. Exits 1 if the plan has problems.
"""


def _print_status_text(report: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(f"castore-hook {report['version']} in {report['python']}\n")
    out(f"  state:    {'active' if report['active'] else 'inactive'} - {report['reason']}\n")
    source = report["source"] or "none"
    form = f" ({report['form']})" if report["form"] else ""
    out(f"  source:   {source}{form}\n")
    material = report["material"]
    for label in ("cafile", "capath"):
        if material.get(label):
            out(f"  {label}:   {material[label]}\n")
    if report["bundle"]:
        out(f"  bundle:   {report['bundle']}\n")
    for name, value in report["exported"].items():
        out(f"  exported: {name}={value}\n")
    for name in report["unset"]:
        out(f"  removed:  {name}\n")
    for entry in report["config_files"]:
        mark = "read" if entry["read"] else ("present, not used" if entry["exists"] else "absent")
        out(f"  config:   {entry['path']} ({mark})\n")
    cache = report["cache"]
    if cache["file"]:
        out(f"  cache:    {cache['file']} ({cache['state']})\n")
    if report["trail"]:
        out("  decision:\n")
        for line in report["trail"]:
            out(f"    - {line}\n")
    if report["problems"]:
        out("  problems:\n")
        for problem in report["problems"]:
            where = f"{problem['where']}: " if problem["where"] else ""
            out(f"    ! {where}{problem['message']}\n")
    else:
        out("  problems: none\n")


def _cmd_status(args: argparse.Namespace) -> int:
    from castore_hook import api

    report = api.status()
    if args.json:
        json.dump(report, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        _print_status_text(report)
    return EXIT_OK


def _cmd_refresh(args: argparse.Namespace) -> int:
    import os

    import _castore_hook as hot
    from castore_hook import _plancache, resolve

    environ = dict(os.environ)
    ignore_env = hot.hook_environ_ignored()
    # Undo what the hook did to *this* process, so the plan is decided as a fresh start would.
    key = hot.interpreter_key(environ, ignore_env)
    folder = hot.cache_dir(environ, sys.platform, ignore_env)
    path = os.path.join(folder, hot.plan_file_name()) if folder else None
    plan = resolve.build_plan(environ, key, folder, ignore_env)
    note = _plancache.store_plan(folder, path, plan)
    problems = list(plan["info"]["problems"])
    if args.json:
        json.dump(
            {
                "cache_file": path,
                "written": not note,
                "note": note,
                "problems": [{"where": w, "message": m} for w, m in problems],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"plan cache: {path} ({'written' if not note else note})\n")
        for where, message in problems:
            sys.stdout.write(f"  ! {where + ': ' if where else ''}{message}\n")
    return EXIT_PROBLEMS if (note or problems) else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="castore-hook",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from castore_hook import __version__

    parser.add_argument("--version", action="version", version=f"castore-hook {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    status = commands.add_parser(
        "status",
        help="what this interpreter trusts and why",
        description=_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--json", action="store_true", help="print the documented JSON object")
    status.set_defaults(handler=_cmd_status)
    refresh = commands.add_parser(
        "refresh",
        help="decide the plan again and rewrite the cache",
        description=_REFRESH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    refresh.add_argument("--json", action="store_true", help="print the result as JSON")
    refresh.set_defaults(handler=_cmd_refresh)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
