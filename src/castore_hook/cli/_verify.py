"""``castore-hook verify``: a real TLS handshake with the effective trust."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

from castore_hook.cli._output import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    colour_enabled,
    dump_json,
    paint,
    wrap,
)
from castore_hook.cli._registry import Command, decision_env

HELP = """\
Open a real TLS connection to TARGET and verify it with the effective trust: the default
context of this interpreter (ssl.create_default_context(), which castore-hook feeds), or
with --source the material of one source plus the `extra` roots, without changing any
configuration. TARGET is https://host[:port][/path], host, host:port or [ipv6]:port
(port 443 by default). No HTTP request is sent.

On success it prints the chain (subject, issuer, expiry) and which source anchored it. On
failure it names the OpenSSL reason in plain words and the likely fix: a missing root, a
server that sends no intermediate, an expired certificate, a name mismatch, a self-signed
certificate, or Python 3.13's strict checks (VERIFY_X509_STRICT) rejecting a CA without
proper extensions. Connection problems (unknown host, refused, timeout) give one line.

On Python 3.9 only the leaf can be shown; 3.10+ shows the whole chain.
"""
EPILOG = (
    EXIT_CODES.format(ok="the handshake verified", problems="it did not, or the connection failed")
    + """
examples:
  castore-hook verify https://pypi.org/simple/
  castore-hook verify internal.corp.example:8443 --source system
  castore-hook verify 10.0.0.7:443 --name api.corp.example --timeout 3
"""
)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("the timeout must be between 0 and 3600 seconds")
    return value


def _extra_pems(paths: Sequence[str]) -> list[tuple[str, list[str]]]:
    from castore_hook import pem
    from castore_hook._safefile import CA_LIMIT, UnsafeFile, read_regular_file

    result = []
    for path in paths:
        try:
            blocks = pem.pem_certificates(read_regular_file(path, CA_LIMIT))
        except (OSError, UnsafeFile, ValueError):
            continue
        if blocks:
            result.append((path, blocks))
    return result


def _verify_setup(args: argparse.Namespace) -> tuple[Any, str, list[Any], Optional[str]]:
    """The context, a description of its trust, the extra anchors and the default anchor."""
    import ssl

    from castore_hook import api, config, sources, verify

    if args.source is None:
        report = api.status()
        extras = _extra_pems(report.get("extras", ()))
        anchors = [(f"extra {p}", verify.pem_to_ders(b)) for p, b in extras]
        if report["active"] and report["source"]:
            trust = f"castore-hook: source {report['source']} ({report['form']})"
            if extras:
                trust += f" + {len(extras)} extra file(s)"
            default = f"source {report['source']}"
        else:
            trust = f"stock OpenSSL defaults (castore-hook inactive: {report['outcome']})"
            default = "OpenSSL default trust"
            anchors = []
        return ssl.create_default_context(), trust, anchors, default
    token = args.source
    reason = config.validate_source(token)
    if reason:
        raise verify.UsageError(f"--source: {reason}")
    env = decision_env()
    entries = [e for e in sys.path if e and os.path.isabs(e)]
    probe = sources.probe(token, env, path_entries=entries)
    material = probe.material
    if material is None:
        detail = "; ".join(probe.problems or probe.trail[-1:]) or "nothing found"
        raise LookupError(f"source {token!r} is not usable here: {detail}")
    cfg = config.load_config(env)
    extras = _extra_pems(cfg.extra) if cfg.usable else []
    context = verify.context_from_material(
        material.cafile,
        material.capath,
        material.cadata,
        "".join(b for _p, blocks in extras for b in blocks),
        material.native,
    )
    trust = f"source {token} ({material.form}, {material.count} certificates)"
    if extras:
        trust += f" + {len(extras)} extra file(s)"
    anchors = [(f"extra {p}", verify.pem_to_ders(b)) for p, b in extras]
    return context, trust, anchors, f"source {token}"


def format_verify(result: Any, timeout: float, colour: bool = False) -> list[str]:
    from castore_hook import verify

    target = result.target
    name = "" if target.server_name == target.host else f", as {target.server_name}"
    lines = [f"verify {target.display()}{name} (timeout {timeout:g} s)"]
    lines.extend(wrap(result.trust, 11, "  trust:   "))
    if result.ok:
        state = paint("OK", "ok", colour)
        lines.append(
            f"  result:  {state} - verified ({result.tls_version}, {result.cipher}, "
            f"{result.elapsed_ms:.0f} ms)"
        )
        if getattr(result, "needed_relaxation", False):
            note = (
                "this handshake needed x509_strict = false: with Python 3.13's strict X.509 "
                "checks it fails; the durable fix is a conforming root or certificate"
            )
            lines.extend(wrap(paint(note, "warn", colour), 11, "  warning: "))
    else:
        failure = result.failure
        state = paint("FAILED", "fail", colour)
        lines.extend(wrap(f"{state} - {failure.message}", 11, "  result:  "))
        if failure.openssl:
            lines.extend(wrap(f"{failure.openssl} (verify code {failure.code})", 11, "  openssl: "))
        for detail in failure.details:
            lines.extend(wrap(detail, 11, "  note:    "))
        lines.extend(wrap(failure.fix, 11, "  fix:     "))
    if result.chain:
        label = {
            "verified": "chain (verified, leaf first):",
            "sent": "chain (as the server sent it, NOT verified):",
            "leaf": "leaf certificate (Python < 3.10 shows no chain):",
        }.get(result.chain_kind, "chain:")
        lines.append(f"  {label}")
        for index, cert in enumerate(result.chain):
            lines.extend(wrap(cert.subject, 6, f"    {index} "))
            lines.extend(wrap(cert.issuer, 15, "      issuer:  "))
            lines.append(f"      expires: {verify.expiry_text(cert.not_after)}")
            if index == 0 and cert.names:
                lines.extend(wrap(", ".join(cert.names), 15, "      names:   "))
    if result.anchor:
        lines.extend(wrap(f"anchored by {result.anchor}", 11, "  anchor:  "))
    return lines


_CONNECTION_KINDS = ("dns", "refused", "timeout", "network", "closed", "not-tls", "tls", "error")


def run(args: argparse.Namespace) -> int:
    from castore_hook import verify

    try:
        target = verify.parse_target(args.target)
        if args.name:
            target = verify.Target(target.host, target.port, args.name)
        context, trust, anchors, default = _verify_setup(args)
    except verify.UsageError as exc:
        args.parser.error(str(exc))
        return EXIT_USAGE  # not reached: error() exits
    except LookupError as exc:
        if args.json:
            dump_json(
                {
                    "target": args.target,
                    "ok": False,
                    "error": {"kind": "source", "message": str(exc)},
                }
            )
        else:
            sys.stderr.write(f"castore-hook verify: {exc}\n")
        return EXIT_PROBLEMS
    result = verify.run(context, target, args.timeout, trust, anchors, default)
    if args.json:
        dump_json(result.as_json())
    elif result.failure is not None and result.failure.kind in _CONNECTION_KINDS:
        sys.stderr.write(f"castore-hook verify: {result.failure.message}\n")
    else:
        for line in format_verify(result, args.timeout, colour_enabled(sys.stdout)):
            sys.stdout.write(line + "\n")
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", metavar="TARGET", help="https://host[:port][/path] or host[:port]"
    )
    parser.add_argument(
        "--source",
        metavar="TOKEN",
        help="trust only this source (+ extra) instead of the plan: env, system, certifi, "
        "openssl, native, file:/abs/path, dir:/abs/path",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="give up after this long (connect + handshake; default 10)",
    )
    parser.add_argument(
        "--name", metavar="NAME", help="the server name to send (SNI) and check (default: host)"
    )


COMMAND = Command(
    "verify",
    "a real TLS handshake with the effective trust",
    HELP,
    EPILOG,
    run,
    _arguments,
)
