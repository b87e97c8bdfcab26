"""doctor's ``sources`` and ``extra`` checks: every configured source probed (not only the
winner), with the source table's fix (``_sourcetable``) for one that is not usable, and every
``extra`` file read."""

from __future__ import annotations

import os
import sys
from typing import Optional

from castore_hook import _sourcetable, pem, sources
from castore_hook._safefile import CA_LIMIT, UnsafeFile, read_regular_file
from castore_hook.doctor.core import FAIL, INFO, OK, WARN, Check, Context


def check_sources(ctx: Context) -> list[Check]:
    checks: list[Check] = []
    if not ctx.cfg.usable:
        return [
            Check(
                "sources",
                INFO,
                "sources not probed: the configuration cannot be used (see config above)",
            )
        ]
    entries = [e for e in sys.path if e and os.path.isabs(e)]
    chosen: Optional[str] = None
    for token in ctx.cfg.sources:
        probe = sources.probe(token, ctx.env, path_entries=entries)
        material = probe.material
        if material is not None:
            where = material.cafile or material.capath or "in memory"
            unit = "hash entries" if material.form == "folder" else "roots"
            count = "" if material.native else f", {material.count} {unit}"
            if chosen is None:
                chosen = token
                checks.append(
                    Check(
                        "sources",
                        OK,
                        f"{token}: usable, chosen ({material.form}{count})",
                        [where, *probe.problems],
                    )
                )
            else:
                checks.append(
                    Check(
                        "sources",
                        INFO,
                        f"{token}: usable, not needed ({material.form}{count})",
                        [where],
                    )
                )
            continue
        verdict = INFO if token == "env" and not probe.problems else WARN  # noqa: S105
        fix = ""
        if probe.problems:
            fix = _source_fix(token)
        checks.append(
            Check(
                "sources",
                verdict,
                f"{token}: not usable",
                probe.problems or probe.trail[-1:],
                fix,
            )
        )
    if chosen is None:
        checks.append(
            Check(
                "sources",
                FAIL,
                "no configured source is usable: castore-hook changes nothing",
                [f"sources = {list(ctx.cfg.sources)}"],
                'add a usable source, e.g. sources = ["env", "system", "certifi"], and '
                "install ca-certificates or certifi",
            )
        )
    checks.extend(_check_extras(ctx))
    return checks


def _source_fix(token: str) -> str:
    """What to do about a source that is not usable: its kind's fix in the source table."""
    kind = _sourcetable.by_token(token)
    return kind.fix if kind is not None else "correct the path in the configuration"


def _check_extras(ctx: Context) -> list[Check]:
    checks = []
    for path in ctx.cfg.extra:
        try:
            data = read_regular_file(path, CA_LIMIT)
        except (UnsafeFile, OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            checks.append(
                Check(
                    "extra",
                    FAIL,
                    f"extra {path}: not usable ({reason})",
                    fix="fix the path or permissions, or remove it from `extra`",
                )
            )
            continue
        found = pem.pem_certificates(data)
        if not found:
            checks.append(
                Check(
                    "extra",
                    FAIL,
                    f"extra {path}: holds no certificate",
                    fix="put the PEM root certificate (BEGIN CERTIFICATE) in that file",
                )
            )
        else:
            checks.append(Check("extra", OK, f"extra {path}: {len(found)} certificate(s)"))
    return checks
