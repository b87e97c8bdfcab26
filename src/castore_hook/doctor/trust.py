"""doctor's ``trust`` and ``openssl`` checks: whether the chosen trust reaches this Python:
every mechanism the hook withheld (and how to get it back), a bundle of ours someone changed,
a relaxed ``x509_strict``, and an OpenSSL (LibreSSL) that ignores ``SSL_CERT_*``."""

from __future__ import annotations

import os

from castore_hook._safefile import CA_LIMIT, UnsafeFile, read_regular_file
from castore_hook.doctor.core import FAIL, INFO, OK, WARN, Check, Context


def check_openssl(ctx: Context) -> list[Check]:
    import ssl

    version = ssl.OPENSSL_VERSION
    if version.startswith("LibreSSL"):
        if ctx.cfg.patch:
            return [
                Check(
                    "openssl",
                    WARN,
                    f"{version} ignores SSL_CERT_FILE/SSL_CERT_DIR",
                    [
                        "in this Python only the in-process patch (patch = true) applies the "
                        "trust; exports still reach other programs"
                    ],
                    "keep patch = true",
                )
            ]
        return [
            Check(
                "openssl",
                FAIL,
                f"{version} ignores SSL_CERT_* and patch = false: no trust reaches this Python",
                fix="set patch = true in the config",
            )
        ]
    return [Check("openssl", OK, f"{version} honours SSL_CERT_FILE and SSL_CERT_DIR")]


#: How to get each withheld mechanism back (docs/architecture.md, "Do no harm").
_ASIDE_FIXES = {
    "certifi": "let castore-hook write its cache (a writable home, or CASTORE_HOOK_CACHE_DIR); "
    "the problems above say what failed",
    "export": "let castore-hook write its cache (a writable home, or CASTORE_HOOK_CACHE_DIR); "
    "the problems above say what failed",
    "bundle": "add the roots you appended to `extra` in the config file: appending to "
    "certifi.where() only changes castore-hook's copy, which is replaced when the trust "
    "changes",
    "variable": "nothing to fix if the variable is meant: castore-hook never changes the "
    "user's SSL_CERT_FILE/SSL_CERT_DIR; if it is a mistake, unset it or point it at a CA "
    "file or hashed folder",
    "patch": "nothing to fix: the program chose its own SSL_CERT_FILE/SSL_CERT_DIR, and "
    "castore-hook leaves that choice alone",
}


def check_stepped_aside(ctx: Context) -> list[Check]:
    """Every mechanism the hook withheld, and a bundle of ours that someone changed."""
    from castore_hook import api, bundle

    report = api.status()
    checks = [
        Check(
            "trust",
            INFO if entry["mechanism"] == "patch" else WARN,
            f"stepped aside ({entry['mechanism']}): {entry['reason']}",
            fix=_ASIDE_FIXES.get(entry["mechanism"], ""),
        )
        for entry in report["stepped_aside"]
    ]
    path = report.get("bundle")
    reported = any(entry["mechanism"] == "bundle" for entry in report["stepped_aside"])
    if path and not reported and os.path.isfile(path):
        try:
            text = read_regular_file(path, CA_LIMIT).decode("ascii")
        except (OSError, UnsafeFile, ValueError, UnicodeDecodeError) as exc:
            text, problem = "", f"cannot be read: {exc}"
        else:
            problem = "" if bundle.bundle_name(text) == os.path.basename(path) else "modified"
        if problem:
            checks.append(
                Check(
                    "trust",
                    WARN,
                    f"castore-hook's bundle {path} {problem}",
                    fix=_ASIDE_FIXES["bundle"],
                )
            )
    for warning in report.get("warnings", ()):
        checks.append(
            Check(
                "trust",
                WARN,
                warning["message"],
                [warning["where"]] if warning["where"] else [],
                "reissue the root with the RFC 5280 extensions (key usage, key identifiers), "
                "then remove x509_strict = false",
            )
        )
    if not checks:
        checks.append(Check("trust", OK, "nothing withheld: every mechanism applies in full"))
    return checks
