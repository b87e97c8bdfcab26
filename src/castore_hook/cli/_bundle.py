"""``castore-hook bundle``: the effective trust as PEM."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Optional

from castore_hook.cli._output import EXIT_CODES, EXIT_OK, EXIT_PROBLEMS, dump_json
from castore_hook.cli._registry import Command

if TYPE_CHECKING:
    from castore_hook._contracts import Plan

HELP = """\
Print the effective trust of this interpreter as PEM: the plan's merged bundle (chosen
source + `extra`), the chosen CA file, the in-memory data, or, for a folder-only source,
the certificates of its hash-named files. Useful to hand the same trust to a tool that
takes a CA file (curl --cacert, docker build secrets, Java keytool -importcert).
"""
EPILOG = (
    EXIT_CODES.format(
        ok="the PEM was written",
        problems="castore-hook is not active here, the source is 'native', or writing failed",
    )
    + """
examples:
  castore-hook bundle > trust.pem
  castore-hook bundle -o /tmp/trust.pem
  castore-hook bundle --json | jq .certificates
"""
)


def effective_pem(plan: Optional[Plan]) -> tuple[Optional[str], str]:
    """The plan's in-process trust as PEM text (every root of the material, then the extras),
    or ``(None, why not)``: ``bundle`` prints what the hook trusts."""
    from castore_hook import _inprocess, _plancache, certset

    section = _plancache.trust_of(plan)
    if section is None:
        return None, "castore-hook changes nothing in this interpreter (see castore-hook status)"
    trust = _inprocess.CheckedTrust(section)
    if trust.native:
        return None, "the 'native' source is the OS verifier; it has no PEM form"
    try:
        pem = trust.pem()
    except certset.Unavailable as exc:
        return None, str(exc)
    if not pem:
        return None, "the plan's CA material holds no certificate"
    return pem, ""


def _effective_plan() -> Optional[Plan]:
    from castore_hook import _session, _slowpath

    plan = _session.plan()
    if plan is not None:
        return plan
    state = _session.current()
    if state is not None and state.get("outcome") in ("deactivated", "disabled"):
        return None
    return _slowpath.fresh_plan()


def run(args: argparse.Namespace) -> int:
    try:
        pem, why = effective_pem(_effective_plan())
    except OSError as exc:
        pem, why = None, f"cannot read the plan's CA file: {exc.strerror or exc}"
    if pem is None:
        if args.json:
            dump_json({"ok": False, "certificates": 0, "pem": None, "error": why})
        else:
            sys.stderr.write(f"castore-hook bundle: {why}\n")
        return EXIT_PROBLEMS
    count = pem.count("-----BEGIN CERTIFICATE-----")
    if args.output and args.output != "-":
        try:
            with open(args.output, "w", encoding="ascii") as handle:
                handle.write(pem)
        except OSError as exc:
            sys.stderr.write(f"castore-hook bundle: cannot write {args.output}: {exc.strerror}\n")
            return EXIT_PROBLEMS
        if args.json:
            dump_json({"ok": True, "certificates": count, "output": args.output, "pem": None})
        else:
            sys.stderr.write(f"wrote {count} certificates to {args.output}\n")
        return EXIT_OK
    if args.json:
        dump_json({"ok": True, "certificates": count, "output": None, "pem": pem})
    else:
        sys.stdout.write(pem)
    return EXIT_OK


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of standard output"
    )


COMMAND = Command(
    "bundle",
    "the effective trust as PEM",
    HELP,
    EPILOG,
    run,
    _arguments,
)
