"""The ``castore-hook`` command (also ``python -m castore_hook``).

Exit codes are a contract: 0 fine, 1 problems found (for commands that check), 2 usage.
Text output fits 80 columns; colour only when stdout is a terminal and ``NO_COLOR`` is unset
(never with ``--json``). Heavy modules (``ssl``, ``tomlkit``, the doctor and verify modules)
are imported inside the command that needs them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, Callable, Optional, TextIO

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

WIDTH = 80

_EXIT_CODES = """\
exit status:
  0  {ok}
  1  {problems}
  2  usage error (unknown option, bad argument)
"""

_DESCRIPTION = """\
castore-hook makes every Python interpreter of this environment trust the certificate
authorities your configuration names, with no application change. It runs at start-up
from castore_hook.pth; these commands show and steer what it does.

commands that only read accept --json: status, doctor, verify, bundle, config path,
config show, refresh. Colour is used only on a terminal, and never when NO_COLOR is set.
"""

_MAIN_EPILOG = (
    _EXIT_CODES.format(ok="fine", problems="problems found (the command says which)")
    + """
examples:
  castore-hook status            what this interpreter trusts and why
  castore-hook doctor            every check, with a fix for each failure
  castore-hook verify pypi.org   a real TLS handshake with the effective trust
  castore-hook <command> --help  the manual of one command
"""
)

_STATUS_HELP = """\
Show what this interpreter trusts and why: the chosen source and its form (file, folder,
in-memory data), the variables the hook exported or removed, the configuration files read,
the decision trail, and every problem found. The command runs in a hooked interpreter, so
it shows what every other interpreter of this environment (same user, same variables) gets.
Use --json for the stable, documented keys (docs/status.md).
"""
_STATUS_EPILOG = (
    _EXIT_CODES.format(ok="always, even when problems are listed", problems="(never)")
    + """
examples:
  castore-hook status
  castore-hook status --json | jq .source
  CASTORE_HOOK_SOURCES=certifi castore-hook status   what a variable would change
"""
)

_DOCTOR_HELP = """\
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
  conflicts    pip-system-certs, certifi-linux, python-certifi-win32, an
               injected truststore, other .pth files touching CA variables
  openssl      an OpenSSL that ignores SSL_CERT_* (LibreSSL)
"""
_DOCTOR_EPILOG = (
    _EXIT_CODES.format(ok="no check failed (warnings allowed)", problems="a check failed")
    + """
examples:
  castore-hook doctor
  castore-hook doctor --json | jq '.checks[] | select(.verdict == "fail")'
  castore-hook doctor --no-timing     skip the start-up measurement (~0.2 s)
"""
)

_VERIFY_HELP = """\
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
_VERIFY_EPILOG = (
    _EXIT_CODES.format(ok="the handshake verified", problems="it did not, or the connection failed")
    + """
examples:
  castore-hook verify https://pypi.org/simple/
  castore-hook verify internal.corp.example:8443 --source system
  castore-hook verify 10.0.0.7:443 --name api.corp.example --timeout 3
"""
)

_BUNDLE_HELP = """\
Print the effective trust of this interpreter as PEM: the plan's merged bundle (chosen
source + `extra`), the chosen CA file, the in-memory data, or, for a folder-only source,
the certificates of its hash-named files. Useful to hand the same trust to a tool that
takes a CA file (curl --cacert, docker build secrets, Java keytool -importcert).
"""
_BUNDLE_EPILOG = (
    _EXIT_CODES.format(
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

_CONFIG_HELP = """\
Configuration files (TOML). Files are read in this order, a later file winning key by key:
each site file (Linux: each $XDG_CONFIG_DIRS entry, default /etc/xdg, plus
/castore-hook/config.toml), then the user file ($XDG_CONFIG_HOME/castore-hook/config.toml, default
~/.config/...). CASTORE_HOOK_CONFIG=/abs/file.toml replaces them all.

  path   the locations platformdirs gives on this machine, and which exist
  show   the effective merged values and where each came from (file, variable, default)
  init   write a commented starter file (every key commented out)

Keys: enabled, sources, extra, export, patch, certifi (docs/configuration.md).
"""
_CONFIG_EPILOG = (
    _EXIT_CODES.format(
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

_ENABLE_HELP = """\
Set `enabled = {value}` in one config file, keeping its comments and layout (the file is
created if missing). Every interpreter notices on its next start: the file's change makes
the cached plan stale. Without --site/--user the file is CASTORE_HOOK_CONFIG when set, else
the user file. If another file or variable still decides otherwise, the command says so and
exits 1. CASTORE_HOOK_DISABLE=1 remains the per-process kill switch.
"""
_ENABLE_EPILOG = (
    _EXIT_CODES.format(
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

_REFRESH_HELP = """\
Decide the plan again now and rewrite the plan cache, as the next interpreter would. Use it
in image builds, or after changing a CA file in place. With --shared (as root or the owner of
the environment), write the environment's shared plan instead: every user of the
environment without a config file of their own then starts from it, without writing
anything (read-only images, service users without a home).
"""
_REFRESH_EPILOG = (
    _EXIT_CODES.format(
        ok="the plan was written", problems="the plan has problems, or the cache cannot be written"
    )
    + """
examples:
  RUN castore-hook refresh        (in a Dockerfile, after installing CA files)
  RUN pip install castore-hook && castore-hook refresh --shared
"""
)


# --------------------------------------------------------------------------------------------
# Output helpers

_STYLES = {
    "ok": "32",
    "warn": "33",
    "fail": "1;31",
    "info": "2",
    "bold": "1",
}


def colour_enabled(stream: TextIO, environ: Optional[dict[str, str]] = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR", ""):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, style: str, enabled: bool) -> str:
    code = _STYLES.get(style)
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


def wrap(text: str, indent: int, first: str = "", width: int = WIDTH) -> list[str]:
    """``first`` + ``text`` wrapped at ``width``; continuation lines indented by ``indent``.
    Long words (paths) are never broken."""
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return lines or [first.rstrip()]


_COLUMN = re.compile(r"^(\s+\S+(?: \S+)*?\s{2,})\S")


def reflow(text: str, width: int = WIDTH - 1) -> str:
    """Help text fitted to ``width``: runs of plain lines become filled paragraphs; indented
    lines (tables, examples) are kept, and wrapped under their second column when too long."""
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.extend(textwrap.wrap(" ".join(paragraph), width, break_on_hyphens=False))
            paragraph.clear()

    for line in text.split("\n"):
        header = line.endswith(":") and len(line) < 30
        if line and not line[0].isspace() and not header:
            paragraph.append(line.strip())
            continue
        flush()
        if len(line) <= width:
            out.append(line)
            continue
        column = _COLUMN.match(line)
        indent = len(column.group(1)) if column else len(line) - len(line.lstrip()) + 2
        out.extend(
            textwrap.wrap(line, width, subsequent_indent=" " * indent, break_on_hyphens=False)
        )
    flush()
    return "\n".join(out)


def _dump_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _decision_env() -> dict[str, str]:
    from castore_hook import _envstate, config

    return _envstate.decision_environ(dict(os.environ), config.hook_environ_ignored())


# --------------------------------------------------------------------------------------------
# status


def format_status(report: dict[str, Any], colour: bool = False) -> list[str]:
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
    if cache.get("miss_reason"):
        lines.extend(wrap(f"slow path at start-up: {cache['miss_reason']}", 12, " " * 12))
    if report["trail"]:
        lines.append("  decision:")
        for line in report["trail"]:
            lines.extend(wrap(line, 6, "    - "))
    if report["problems"]:
        lines.append("  " + paint("problems:", "fail", colour))
        for problem in report["problems"]:
            where = f"{problem['where']}: " if problem["where"] else ""
            lines.extend(wrap(where + problem["message"], 6, "    ! "))
    else:
        lines.append("  problems: none")
    return lines


def _cmd_status(args: argparse.Namespace) -> int:
    from castore_hook import api

    report = api.status()
    if args.json:
        _dump_json(report)
    else:
        for line in format_status(report, colour_enabled(sys.stdout)):
            sys.stdout.write(line + "\n")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# doctor

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


def _cmd_doctor(args: argparse.Namespace) -> int:
    import ssl

    from castore_hook import __version__, doctor

    ctx = doctor.make_context(timing=not args.no_timing)
    checks = doctor.run_checks(ctx)
    counts = doctor.summary(checks)
    failed = counts.get(doctor.FAIL, 0)
    if args.json:
        _dump_json(
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


# --------------------------------------------------------------------------------------------
# verify


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("the timeout must be between 0 and 3600 seconds")
    return value


def _extra_pems(paths: Sequence[str]) -> list[tuple[str, list[str]]]:
    from castore_hook import sources
    from castore_hook._safefile import CA_LIMIT, UnsafeFile, read_regular_file

    result = []
    for path in paths:
        try:
            blocks = sources.pem_certificates(read_regular_file(path, CA_LIMIT))
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
    env = _decision_env()
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


def _cmd_verify(args: argparse.Namespace) -> int:
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
            _dump_json(
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
        _dump_json(result.as_json())
    elif result.failure is not None and result.failure.kind in _CONNECTION_KINDS:
        sys.stderr.write(f"castore-hook verify: {result.failure.message}\n")
    else:
        for line in format_verify(result, args.timeout, colour_enabled(sys.stdout)):
            sys.stdout.write(line + "\n")
    return EXIT_OK if result.ok else EXIT_PROBLEMS


# --------------------------------------------------------------------------------------------
# bundle


def effective_pem(plan: Optional[dict[str, Any]]) -> tuple[Optional[str], str]:
    """The plan's trust as PEM text, or ``(None, why not)``."""
    from castore_hook import _plancache, bundle, sources
    from castore_hook._safefile import CA_LIMIT, read_regular_file

    hooks = _plancache.hooks_of(plan)
    if hooks is None:
        return None, "castore-hook changes nothing in this interpreter (see castore-hook status)"
    if hooks.get("native"):
        return None, "the 'native' source is the OS verifier; it has no PEM form"
    blocks: list[str] = []
    extras_included = False
    if hooks.get("cafile"):
        blocks = sources.pem_certificates(read_regular_file(hooks["cafile"], CA_LIMIT))
        extras_included = bool(hooks.get("cafile_has_extras"))
    elif hooks.get("cadata"):
        blocks = sources.pem_certificates(str(hooks["cadata"]).encode("ascii", "replace"))
    elif hooks.get("capath"):
        for folder in str(hooks["capath"]).split(os.pathsep):
            blocks.extend(_folder_blocks(folder))
    if hooks.get("extra_pem") and not extras_included:
        blocks.extend(sources.pem_certificates(str(hooks["extra_pem"]).encode("ascii")))
    pem = bundle.merge_pem(blocks)
    if not pem:
        return None, "the plan's CA material holds no certificate"
    return pem, ""


def _folder_blocks(folder: str) -> list[str]:
    """PEM blocks of a hashed folder's ``[0-9a-f]{8}.N`` entries (in name order)."""
    import re

    from castore_hook import sources
    from castore_hook._safefile import CA_LIMIT, UnsafeFile, read_regular_file

    pattern = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")
    blocks: list[str] = []
    try:
        names = sorted(n for n in os.listdir(folder) if pattern.match(n))
    except OSError:
        return blocks
    for name in names:
        try:
            data = read_regular_file(os.path.join(folder, name), CA_LIMIT, check_owner=False)
        except (OSError, UnsafeFile, ValueError):
            continue
        blocks.extend(sources.pem_certificates(data))
    return blocks


def _effective_plan() -> Optional[dict[str, Any]]:
    import _castore_hook as hot

    state = hot.state
    if state is not None and isinstance(state.get("plan"), dict):
        plan: dict[str, Any] = state["plan"]
        return plan
    if state is not None and state.get("outcome") in ("deactivated", "disabled"):
        return None
    from castore_hook import api

    return api._fresh_plan()


def _cmd_bundle(args: argparse.Namespace) -> int:
    try:
        pem, why = effective_pem(_effective_plan())
    except OSError as exc:
        pem, why = None, f"cannot read the plan's CA file: {exc.strerror or exc}"
    if pem is None:
        if args.json:
            _dump_json({"ok": False, "certificates": 0, "pem": None, "error": why})
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
            _dump_json({"ok": True, "certificates": count, "output": args.output, "pem": None})
        else:
            sys.stderr.write(f"wrote {count} certificates to {args.output}\n")
        return EXIT_OK
    if args.json:
        _dump_json({"ok": True, "certificates": count, "output": None, "pem": pem})
    else:
        sys.stdout.write(pem)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# config, enable, disable


def _scope(args: argparse.Namespace) -> Optional[str]:
    return (
        "site"
        if getattr(args, "site", False)
        else ("user" if getattr(args, "user", False) else None)
    )


def format_config_show(
    values: dict[str, Any], origins: dict[str, str], problems: Sequence[Any]
) -> list[str]:
    """``key = value  # origin`` lines (valid TOML), origin on its own line when too long."""
    from castore_hook import configfile

    lines = ["# effective castore-hook configuration; each value's origin in a comment"]
    for key in configfile.KEYS:
        assignment = f"{key} = {configfile.toml_value(values[key])}"
        comment = f"# {origins[key]}"
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
            lines.extend(wrap(f"{where + ': ' if where else ''}{problem.message}", 4, "#   ! "))
    return lines


def _cmd_config_path(args: argparse.Namespace) -> int:
    from castore_hook import configfile

    env = _decision_env()
    entries = configfile.locations(env)
    try:
        target: Optional[str] = configfile.target_path(env, None)
    except configfile.ConfigFileError:
        target = None
    if args.json:
        _dump_json({"files": [e.as_json() for e in entries], "edit": target})
        return EXIT_OK
    for entry in entries:
        state = "read" if entry.read else ("present, not used" if entry.exists else "absent")
        sys.stdout.write(f"{entry.role:<8} {entry.path} ({state})\n")
    if target:
        sys.stdout.write(f"edited by enable, disable, init (unless --site/--user):\n  {target}\n")
    return EXIT_OK


def _cmd_config_show(args: argparse.Namespace) -> int:
    from castore_hook import configfile

    values, origins, cfg = configfile.effective(_decision_env())
    if args.json:
        _dump_json(
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


def _cmd_config_init(args: argparse.Namespace) -> int:
    from castore_hook import configfile

    try:
        path = configfile.target_path(_decision_env(), _scope(args))
        configfile.init(path, args.force)
    except configfile.ConfigFileError as exc:
        sys.stderr.write(f"castore-hook config init: {exc}\n")
        return EXIT_PROBLEMS
    sys.stdout.write(f"wrote {path} (every key commented out; edit it, then run doctor)\n")
    return EXIT_OK


def _cmd_enabled(args: argparse.Namespace) -> int:
    from castore_hook import config, configfile

    value: bool = args.value
    word = "enabled" if value else "disabled"
    try:
        path = configfile.target_path(_decision_env(), _scope(args))
        changed = configfile.set_enabled(path, value)
    except configfile.ConfigFileError as exc:
        sys.stderr.write(f"castore-hook {args.command}: {exc}\n")
        return EXIT_PROBLEMS
    written = "written" if changed else "already so"
    sys.stdout.write(f"{path}: enabled = {str(value).lower()} ({written})\n")
    env = _decision_env()
    cfg = config.load_config(env)
    problems = []
    if not cfg.usable:
        problems.append("the configuration cannot be used (castore-hook config show)")
    elif cfg.enabled != value:
        origin = cfg.origins.get("enabled", "default")
        problems.append(f"still {'enabled' if cfg.enabled else 'disabled'}: {origin} decides")
    elif path not in cfg.files_read:
        problems.append(f"{path} is not read here (CASTORE_HOOK_CONFIG names another file)")
    if value and not config.hook_environ_ignored() and config.flag(env, "CASTORE_HOOK_DISABLE"):
        problems.append("CASTORE_HOOK_DISABLE is set in this environment")
    for problem in problems:
        for line in wrap(problem, 6, "  ! "):
            sys.stdout.write(line + "\n")
    if not problems:
        sys.stdout.write(f"castore-hook is {word} for the next interpreters\n")
    return EXIT_PROBLEMS if problems else EXIT_OK


# --------------------------------------------------------------------------------------------
# refresh


def _cmd_refresh(args: argparse.Namespace) -> int:
    from castore_hook import _slowpath, config

    # The key undoes what the hook did to *this* process, so the plan is decided (and cached,
    # under start-up's rules) as a fresh start would.
    path: Optional[str]
    if args.shared:
        shared, path, note = _slowpath.store_shared(dict(os.environ), config.hook_environ_ignored())
        plan = shared or {"info": {"problems": ()}}
    else:
        plan, path, note = _slowpath.decide(
            dict(os.environ), config.hook_environ_ignored(), store=True
        )
    problems = list(plan["info"]["problems"])
    label = "shared plan" if args.shared else "plan cache"
    if args.json:
        json.dump(
            {
                "cache_file": path,
                "shared": args.shared,
                "written": not note,
                "note": note,
                "problems": [{"where": w, "message": m} for w, m in problems],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"{label}: {path} ({note or 'written'})\n")
        for where, message in problems:
            for line in wrap(f"{where + ': ' if where else ''}{message}", 4, "  ! "):
                sys.stdout.write(line + "\n")
    return EXIT_PROBLEMS if (note or problems) else EXIT_OK


# --------------------------------------------------------------------------------------------
# Parser


def _add(
    commands: Any,
    name: str,
    summary: str,
    description: str,
    epilog: str,
    handler: Callable[[argparse.Namespace], int],
    json_help: Optional[str] = "print the result as JSON (stable keys, no colour)",
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=reflow(description),
        epilog=reflow(epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if json_help:
        parser.add_argument("--json", action="store_true", help=json_help)
    parser.set_defaults(handler=handler, parser=parser)
    return parser


def _add_scope(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--site",
        action="store_true",
        help="the machine-wide file (first site config folder; needs root on Linux)",
    )
    group.add_argument("--user", action="store_true", help="this user's file")


def build_parser() -> argparse.ArgumentParser:
    from castore_hook import __version__

    parser = argparse.ArgumentParser(
        prog="castore-hook",
        description=reflow(_DESCRIPTION),
        epilog=reflow(_MAIN_EPILOG),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"castore-hook {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add(
        commands,
        "status",
        "what this interpreter trusts and why",
        _STATUS_HELP,
        _STATUS_EPILOG,
        _cmd_status,
        "print the documented JSON object (docs/status.md)",
    )
    doctor = _add(
        commands,
        "doctor",
        "every check, with a fix for each problem",
        _DOCTOR_HELP,
        _DOCTOR_EPILOG,
        _cmd_doctor,
    )
    doctor.add_argument("--no-timing", action="store_true", help="skip measuring the start-up cost")
    verify = _add(
        commands,
        "verify",
        "a real TLS handshake with the effective trust",
        _VERIFY_HELP,
        _VERIFY_EPILOG,
        _cmd_verify,
    )
    verify.add_argument(
        "target", metavar="TARGET", help="https://host[:port][/path] or host[:port]"
    )
    verify.add_argument(
        "--source",
        metavar="TOKEN",
        help="trust only this source (+ extra) instead of the plan: env, system, certifi, "
        "openssl, native, file:/abs/path, dir:/abs/path",
    )
    verify.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="give up after this long (connect + handshake; default 10)",
    )
    verify.add_argument(
        "--name", metavar="NAME", help="the server name to send (SNI) and check (default: host)"
    )
    bundle = _add(
        commands,
        "bundle",
        "the effective trust as PEM",
        _BUNDLE_HELP,
        _BUNDLE_EPILOG,
        _cmd_bundle,
    )
    bundle.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of standard output"
    )

    config = _add(
        commands,
        "config",
        "config file locations, effective values, starter file",
        _CONFIG_HELP,
        _CONFIG_EPILOG,
        _cmd_config_usage,
        json_help=None,
    )
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    _add(
        config_commands,
        "path",
        "where the config files are",
        _CONFIG_HELP,
        _CONFIG_EPILOG,
        _cmd_config_path,
    )
    _add(
        config_commands,
        "show",
        "effective values and where each came from",
        _CONFIG_HELP,
        _CONFIG_EPILOG,
        _cmd_config_show,
    )
    init = _add(
        config_commands,
        "init",
        "write a commented starter file",
        _CONFIG_HELP,
        _CONFIG_EPILOG,
        _cmd_config_init,
        json_help=None,
    )
    _add_scope(init)
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    for name, value in (("enable", True), ("disable", False)):
        sub = _add(
            commands,
            name,
            f"set enabled = {str(value).lower()} in a config file",
            _ENABLE_HELP.format(value=str(value).lower()),
            _ENABLE_EPILOG.format(name=name, state="enabled" if value else "disabled"),
            _cmd_enabled,
            json_help=None,
        )
        _add_scope(sub)
        sub.set_defaults(value=value)

    _add(
        commands,
        "refresh",
        "decide the plan again and rewrite the cache",
        _REFRESH_HELP,
        _REFRESH_EPILOG,
        _cmd_refresh,
    ).add_argument(
        "--shared",
        action="store_true",
        help="write the environment's shared plan (for every user; run as its owner)",
    )
    return parser


def _cmd_config_usage(args: argparse.Namespace) -> int:
    args.parser.print_help(sys.stderr)
    return EXIT_USAGE


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except SystemExit as exc:  # parser.error() inside a command: a usage error
        return int(exc.code or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("CASTORE_HOOK_DEBUG"):
            raise
        sys.stderr.write(
            f"castore-hook: internal error: {type(exc).__name__}: {exc} "
            "(set CASTORE_HOOK_DEBUG=1 for a traceback)\n"
        )
        return EXIT_PROBLEMS
