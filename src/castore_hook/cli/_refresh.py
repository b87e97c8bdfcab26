"""``castore-hook refresh``: decide the plan again and rewrite the cache."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional

from castore_hook.cli._output import EXIT_CODES, EXIT_OK, EXIT_PROBLEMS, wrap
from castore_hook.cli._registry import Command

HELP = """\
Decide the plan again now and rewrite the plan cache, as the next interpreter would. Use it
in image builds, or after changing a CA file in place. With --shared (as root or the owner of
the environment), write the environment's shared plan instead: every user of the
environment without a config file of their own then starts from it, without writing
anything (read-only images, service users without a home). A shared refresh also removes
the bundles only earlier shared plans used, and the shared plan an earlier release left in
castore_hook/shared/ (run it when no process of the environment still uses the old plan).
"""
EPILOG = (
    EXIT_CODES.format(
        ok="the plan was written", problems="the plan has problems, or the cache cannot be written"
    )
    + """
examples:
  RUN castore-hook refresh        (in a Dockerfile, after installing CA files)
  RUN pip install castore-hook && castore-hook refresh --shared
"""
)


def run(args: argparse.Namespace) -> int:
    from castore_hook import _slowpath, config

    # The key undoes what the hook did to *this* process, so the plan is decided (and cached,
    # under start-up's rules) as a fresh start would.
    path: Optional[str]
    removed: list[str] = []
    left: list[tuple[str, str]] = []
    if args.shared:
        shared, path, note = _slowpath.store_shared(dict(os.environ), config.hook_environ_ignored())
        plan = shared or {"info": {"problems": ()}}
        if shared is not None:  # this user may write there: tidy up after the refresh
            removed, left = _tidy_shared(os.path.dirname(path) if path and not note else None)
    else:
        plan, facts = _slowpath.plan_for(
            dict(os.environ), config.hook_environ_ignored(), use_cache=False, store=True
        )
        path, note = facts["cache_file"], facts["cache_note"]
    problems = list(plan["info"]["problems"]) + [(where, why) for where, why in left]
    label = "shared plan" if args.shared else "plan cache"
    if args.json:
        json.dump(
            {
                "cache_file": path,
                "shared": args.shared,
                "written": not note,
                "note": note,
                "removed": removed,
                "problems": [{"where": w, "message": m} for w, m in problems],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"{label}: {path} ({note or 'written'})\n")
        for gone in removed:
            for line in wrap(f"removed {gone}", 4, "  - "):
                sys.stdout.write(line + "\n")
        for where, message in problems:
            for line in wrap(f"{where + ': ' if where else ''}{message}", 4, "  ! "):
                sys.stdout.write(line + "\n")
    return EXIT_PROBLEMS if (note or problems) else EXIT_OK


def _tidy_shared(folder: Optional[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Bundles no shared plan names any more (only when the new plan was written into
    ``folder``), then an earlier release's ``castore_hook/shared/``: what was removed, and
    what was left with why."""
    from castore_hook import _sharedtidy

    removed: list[str] = []
    left: list[tuple[str, str]] = []
    for tidy in (
        _sharedtidy.prune_bundles(folder) if folder else _sharedtidy.Tidy(),
        _sharedtidy.remove_legacy(),
    ):
        removed += tidy.removed
        left += tidy.left
    return removed, left


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shared",
        action="store_true",
        help="write the environment's shared plan (for every user; run as its owner)",
    )


COMMAND = Command(
    "refresh",
    "decide the plan again and rewrite the cache",
    HELP,
    EPILOG,
    run,
    _arguments,
)
