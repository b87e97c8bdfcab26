"""``castore-hook status``: what this interpreter trusts and why."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from castore_hook.cli._output import (
    EXIT_CODES,
    EXIT_OK,
    colour_enabled,
    dump_json,
    paint,
    wrap,
)
from castore_hook.cli._registry import Command

if TYPE_CHECKING:
    from castore_hook._contracts import StatusReport

HELP = """\
Show what this interpreter trusts and why: the chosen source and its form (file, folder,
in-memory data), the variables the hook exported or removed, the configuration files read,
the decision trail, and every problem found. The command runs in a hooked interpreter, so
it shows what every other interpreter of this environment (same user, same variables) gets.
Use --json for the stable, documented keys (docs/status.md).
"""
EPILOG = (
    EXIT_CODES.format(ok="always, even when problems are listed", problems="(never)")
    + """
examples:
  castore-hook status
  castore-hook status --json | jq .source
  CASTORE_HOOK_SOURCES=certifi castore-hook status   what a variable would change
"""
)


def format_status(report: StatusReport, colour: bool = False) -> list[str]:
    """The text form of ``castore_hook.status()``: one fact per line, 80 columns."""
    import ssl

    lines = [
        f"castore-hook {report['version']} in {report['python']}",
        f"  python:   {sys.implementation.name} {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}",
    ]
    state = "active" if report["active"] else "inactive"
    styled = paint(state, "ok" if report["active"] else "warn", colour)
    lines.extend(wrap(f"{styled} - {report['reason']}", 12, "  state:    "))
    lines.append(f"  enabled:  {'yes' if report['enabled'] else 'no'}")
    source = report["source"] or "none"
    material = report["material"]
    form = ""
    if report["form"]:
        count = material.get("certificates") or 0
        unit = "hash entries" if report["form"] == "folder" else "certificates"
        form = f" ({report['form']}, {count} {unit})" if count else f" ({report['form']})"
    lines.append(f"  source:   {source}{form}")
    for label in ("cafile", "capath"):
        if material.get(label):
            lines.append(f"  {label}:   {material[label]}")
    for extra in report.get("extras", ()):
        lines.append(f"  extra:    {extra}")
    if report["bundle"]:
        lines.append(f"  bundle:   {report['bundle']}")
    for name, value in report["exported"].items():
        lines.append(f"  exported: {name}={value}")
    for name in report["unset"]:
        lines.append(f"  removed:  {name}")
    for entry in report["config_files"]:
        mark = "read" if entry["read"] else ("present, not used" if entry["exists"] else "absent")
        lines.append(f"  config:   {entry['path']} ({mark})")
    cache = report["cache"]
    if cache["file"]:
        where = cache.get("location") or "user"
        lines.append(f"  cache:    {cache['file']} ({cache['state']}, {where} plan)")
    if cache.get("location_reason"):
        lines.extend(wrap(f"user cache not used: {cache['location_reason']}", 12, " " * 12))
    shared = cache.get("shared")
    if shared:
        lines.extend(
            wrap(
                f"shared plan not used: {shared['file']}: {shared['why']}; fix: {shared['fix']}",
                12,
                " " * 12,
            )
        )
    if cache.get("miss_reason"):
        lines.extend(wrap(f"slow path at start-up: {cache['miss_reason']}", 12, " " * 12))
    if report["trail"]:
        lines.append("  decision:")
        for line in report["trail"]:
            lines.extend(wrap(line, 6, "    - "))
    for warning in report.get("warnings", ()):
        where = f"{warning['where']}: " if warning["where"] else ""
        lines.extend(
            wrap(paint("warning:", "warn", colour) + f" {where}{warning['message']}", 12, "  ")
        )
    if report.get("stepped_aside"):
        lines.append("  " + paint("stepped aside:", "warn", colour))
        for aside in report["stepped_aside"]:
            lines.extend(wrap(f"{aside['mechanism']}: {aside['reason']}", 6, "    ~ "))
    if report["problems"]:
        lines.append("  " + paint("problems:", "fail", colour))
        for problem in report["problems"]:
            where = f"{problem['where']}: " if problem["where"] else ""
            lines.extend(wrap(where + problem["message"], 6, "    ! "))
    else:
        lines.append("  problems: none")
    return lines


def run(args: argparse.Namespace) -> int:
    from castore_hook import api

    report = api.status()
    if args.json:
        dump_json(report)
    else:
        for line in format_status(report, colour_enabled(sys.stdout)):
            sys.stdout.write(line + "\n")
    return EXIT_OK


COMMAND = Command(
    "status",
    "what this interpreter trusts and why",
    HELP,
    EPILOG,
    run,
    json_help="print the documented JSON object (docs/status.md)",
)
