"""``castore-hook doctor``: every check, with a fix for each problem."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from castore_hook.cli._output import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_PROBLEMS,
    colour_enabled,
    dump_json,
    paint,
    wrap,
)
from castore_hook.cli._registry import Command

HELP = """\
Run every check and give each a verdict (ok, warn, FAIL, info) and, for each
problem, a fix. The checks:

  startup      which site folders hold castore_hook.pth / .start and whether
               this interpreter processes them (-S, user site, PEP 829 on
               3.15+); whether the hook ran here without errors
  config       each config file read, with file:line for every problem
  permissions  owner and mode of config, extra and plan-cache files (files
               that other users can write, or another non-root user owns,
               are refused)
  sources      each configured source's probe result and number of roots;
               each extra file
  cache        whether the plan cache folder can be written; whether the
               plan is fresh
  cost         the measured start-up (hot-path) cost in this process, next
               to a bare `python -c pass`
  conflicts    every peer that also decides trust (pip-system-certs,
               auto-truststore, certifi-linux, python-certifi-win32,
               certifi-system-store, httpx-system-certs, truststore): what it
               does, which one wins, the order site runs the two .pth files,
               the fix; an injected truststore; other .pth files touching CA
               settings
  openssl      an OpenSSL that ignores SSL_CERT_* (LibreSSL)
"""
EPILOG = (
    EXIT_CODES.format(ok="no check failed (warnings allowed)", problems="a check failed")
    + """
examples:
  castore-hook doctor
  castore-hook doctor --json | jq '.checks[] | select(.verdict == "fail")'
  castore-hook doctor --no-timing     skip the start-up measurement (~0.2 s)
"""
)


_TAGS = {"ok": "ok", "warn": "warn", "fail": "FAIL", "info": "info"}


def format_checks(checks: Sequence[Any], colour: bool = False) -> list[str]:
    """Doctor's checks as text: ``[tag] area: title``, details and fix indented."""
    lines: list[str] = []
    area = None
    for check in checks:
        if check.area != area:
            area = check.area
            lines.append(paint(f"{area}:", "bold", colour))
        tag = _TAGS.get(check.verdict, check.verdict)
        first = f"  {paint(tag.ljust(4), check.verdict, colour)}  "
        # The tag's colour codes are zero-width: wrap the plain text, then colour.
        body = wrap(check.title, 8, " " * 8)
        body[0] = first + body[0][8:]
        lines.extend(body)
        for detail in check.details:
            lines.extend(wrap(detail, 10, " " * 8 + "- "))
        if check.fix and check.verdict in ("fail", "warn"):
            lines.extend(wrap(check.fix, 13, " " * 8 + "fix: "))
    return lines


def run(args: argparse.Namespace) -> int:
    import ssl

    from castore_hook import __version__, doctor

    ctx = doctor.make_context(timing=not args.no_timing)
    checks = doctor.run_checks(ctx)
    counts = doctor.summary(checks)
    failed = counts.get(doctor.FAIL, 0)
    if args.json:
        dump_json(
            {
                "version": __version__,
                "python": sys.executable,
                "python_version": sys.version.split()[0],
                "openssl": ssl.OPENSSL_VERSION,
                "ok": not failed,
                "checks": [c.as_json() for c in checks],
                "summary": counts,
            }
        )
    else:
        colour = colour_enabled(sys.stdout)
        out = sys.stdout.write
        out(f"castore-hook {__version__} doctor for {sys.executable}\n")
        out(f"python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}\n\n")
        for line in format_checks(checks, colour):
            out(line + "\n")
        verdict = paint("FAILED" if failed else "OK", "fail" if failed else "ok", colour)
        out(
            f"\n{verdict}: {len(checks)} checks, {counts['ok']} ok, {counts['warn']} "
            f"warning(s), {failed} failed, {counts['info']} info\n"
        )
    return EXIT_PROBLEMS if failed else EXIT_OK


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-timing", action="store_true", help="skip measuring the start-up cost")


COMMAND = Command(
    "doctor",
    "every check, with a fix for each problem",
    HELP,
    EPILOG,
    run,
    _arguments,
)
