"""From configuration and probes to a *plan*: what this interpreter should trust and export.

A plan is a plain ``dict`` of ``marshal``-able values, because the start-up hot path reads it
back without importing anything (see ``_castore_hook``). Its fields are described once, in
``castore_hook._contracts.Plan``; :func:`build_plan` is the one place that makes one.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Optional

import _castore_hook as hot
from castore_hook import (
    _plancache,
    _plankey,
    bundle,
    certifi_locate,
    certset,
    config,
    pem,
    sources,
    trustroots,
)
from castore_hook._safefile import (
    CA_LIMIT,
    UnsafeFile,
    portable_digest,
    portable_signature,
    read_regular_file,
    refusal_watch,
    stat_signature,
)

if TYPE_CHECKING:  # the contracts cost ~3 ms to import; annotations need only their names
    from castore_hook._contracts import Plan, PlanInfo, Signature, Trust


class _Decision:
    """Collects a plan while it is being decided."""

    def __init__(self) -> None:
        self.looked_at: list[str] = []
        self.trail: list[str] = []
        self.problems: list[tuple[str, str]] = []
        self.to_set: list[tuple[str, str]] = []
        self.to_unset: list[str] = []
        self.stepped_aside: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []
        # The user's SSL_CERT_FILE/SSL_CERT_DIR are set and the chosen source is not `env`:
        # load_default_certs must then stay stock for them (build_plan's default_env).
        self.hands_off = False
        self.appended: list[tuple[str, int]] = []

    def warn(self, message: str, where: str = "") -> None:
        """A setting that weakens a check on purpose: ``status`` and ``doctor`` always show it."""
        self.warnings.append((where, message))

    def aside(self, mechanism: str, reason: str) -> None:
        """Record that a mechanism is withheld (left stock) and why: ``status`` shows it."""
        self.stepped_aside.append((mechanism, reason))

    def look(self, paths: list[str]) -> None:
        self.looked_at.extend(paths)

    def problem(self, message: str, where: str = "") -> None:
        self.problems.append((where, message))


def _read_extras(paths: tuple[str, ...], decision: _Decision) -> list[str]:
    """PEM blocks of every usable ``extra`` file; unusable ones become problems."""
    blocks: list[str] = []
    for path in paths:
        decision.look([path])
        try:
            data = read_regular_file(path, CA_LIMIT)
        except UnsafeFile as exc:
            decision.problem(f"extra {exc}; ignored", path)
            decision.look(refusal_watch(path))
            continue
        except OSError as exc:
            decision.problem(f"extra {path} cannot be read ({exc.strerror or exc}); ignored", path)
            continue
        except ValueError as exc:
            decision.problem(f"extra {path!r} is not a usable path ({exc}); ignored", path)
            continue
        found = pem.pem_certificates(data)
        if not found:
            decision.problem(f"extra {path} holds no certificate; ignored", path)
            continue
        decision.trail.append(f"extra {path}: {len(found)} certificate(s)")
        blocks.extend(found)
    return blocks


def _choose(
    cfg: config.Config, env: Mapping[str, str], decision: _Decision
) -> Optional[sources.Probe]:
    # Only absolute sys.path entries: "" (the script's folder) would make the decision
    # depend on the current directory, which is not part of the plan's key.
    path_entries = [entry for entry in sys.path if entry and os.path.isabs(entry)]
    for token in cfg.sources:
        probe = sources.probe(token, env, path_entries=path_entries)
        decision.look(list(probe.looked_at))
        decision.trail.extend(f"{token}: {line}" for line in probe.trail)
        for message in probe.problems:
            decision.problem(message, token)
        if probe.material is not None:
            decision.trail.append(f"chose source {token!r} ({probe.material.form})")
            return probe
        decision.trail.append(f"source {token!r} is not usable; trying the next")
    return None


def _exports(
    cfg: config.Config,
    file_value: Optional[str],
    dir_value: Optional[str],
    kept: set[str],
    decision: _Decision,
) -> None:
    """Fill the exports; names in ``kept`` (the user's own variables) are never touched."""
    for name in cfg.export:
        value = dir_value if name == "SSL_CERT_DIR" else file_value
        if value and name not in kept:
            decision.to_set.append((name, value))


def _kept_user_vars(
    probe: sources.Probe,
    env: Mapping[str, str],
    file_value: Optional[str],
    decision: _Decision,
) -> set[str]:
    """The user's ``SSL_CERT_FILE``/``SSL_CERT_DIR`` that the plan must leave as they are
    (docs/architecture.md, "Do no harm", 1), each said in ``stepped_aside``.

    A variable present in the environment is the user's choice, whatever it points at. When
    the chosen source is not ``env`` (the user's material could not be judged, or ``sources``
    leaves ``env`` out), both are kept and ``decision.hands_off`` keeps the in-process
    loading stock while they hold. With ``env``, the hook may put its own bundle (the user's
    material plus the extras) in ``SSL_CERT_FILE`` only when it read the user's file; a
    file that gives OpenSSL nothing is kept, and ``SSL_CERT_DIR`` always is (the folder list
    is the user's string; a bundle already carries its roots).
    """
    present = {name: env[name] for name in _plankey.USER_CA_VARS if env.get(name) is not None}
    if not present:
        return set()
    if probe.token != "env":  # noqa: S105 - a source token, not a secret
        decision.hands_off = True
        for name, value in present.items():
            decision.aside(
                "variable",
                f"{name}={value} is the user's own choice and the chosen source is "
                f"{probe.token!r}, not 'env': castore-hook leaves SSL_CERT_FILE and SSL_CERT_DIR, "
                "and what OpenSSL loads through them, as they are",
            )
        return set(_plankey.USER_CA_VARS)
    kept = {"SSL_CERT_DIR"} & present.keys()
    own_file = present.get("SSL_CERT_FILE")
    if own_file is not None and "SSL_CERT_FILE" in probe.unusable_env:
        kept.add("SSL_CERT_FILE")
        if file_value and file_value != own_file:
            decision.aside(
                "variable",
                f"SSL_CERT_FILE={own_file} gives OpenSSL nothing and is the user's own choice: "
                f"castore-hook does not put its bundle {file_value} there, so child processes "
                "do not get the extra roots through it",
            )
    return kept


def _unsafe_for_export(path: str) -> bool:
    return "\n" in path or "\t" in path or "\0" in path or not os.path.isabs(path)


def build_plan(
    environ: Mapping[str, str],
    folder: Optional[str],
    ignore_env: bool,
    *,
    shared: bool = False,
) -> Plan:
    """Decide the plan for an interpreter whose environment is ``environ``.

    Never raises for bad input: every problem lands in ``info["problems"]``. Leaves the
    interpreter stock (no ``set``/``unset``/``trust``) when the config is unusable, the hook
    is disabled by config, or no source is usable. A ``shared`` plan (``refresh --shared``)
    holds for every user: no user config file is read or watched, and its key watches no
    per-user location variable (docs/architecture.md, "Where plans are cached").
    """
    env = _plankey.decision_environ(environ, ignore_env)
    decision = _Decision()
    cfg = config.load_config(env, user=not shared)
    decision.look(list(cfg.candidates))
    for path in cfg.candidates:
        decision.look(refusal_watch(path))  # a refused config file: its folders too
    for problem in cfg.problems:
        decision.problem(problem.message, problem.where())
    info: PlanInfo = {
        "enabled": cfg.enabled,
        "config_usable": cfg.usable,
        "config_files": tuple(
            (path, os.path.lexists(path), path in cfg.files_read) for path in cfg.candidates
        ),
        "origins": tuple(sorted(cfg.origins.items())),
        "source": None,
        "form": None,
        "cafile": None,
        "capath": None,
        "count": 0,
        "bundle": None,
        "extras": (),
        "decided_at": time.time(),
        "python": sys.executable,
        "shared": shared,
    }
    trust: Optional[Trust] = None
    if not cfg.usable:
        decision.trail.append("the configuration cannot be used; Python is left as it was")
        # A slow path that could not import its own dependencies (pex adds distributions one
        # by one, so our .pth can run before platformdirs is importable) must not be cached:
        # the next start, or activate() in the entry point, decides again.
        info["transient"] = any(problem.transient for problem in cfg.problems)
    elif not cfg.enabled:
        origin = cfg.origins.get("enabled", "config")
        decision.trail.append(f"disabled by enabled = false in {origin}")
    else:
        trust = _decide_trust(cfg, env, folder, decision, info)
        if trust is not None and not cfg.x509_strict:
            decision.warn(_relaxation_warning(cfg), _origin(cfg, "x509_strict"))
        if trust is not None and not (trust["patch"] or trust["certifi"]):
            trust = None  # nothing to do in-process: start-up installs no finder
    stats = []
    portable: dict[str, Optional[tuple[int, int]]] = {}
    seen: set[str] = set()
    for path in decision.looked_at:
        if path and path not in seen:
            seen.add(path)
            if shared:  # it must hold on every node that pulls the image
                stats.append((path, portable_signature(path)))
                portable[path] = portable_digest(path)
            else:
                stats.append((path, stat_signature(path)))
    key, record = _plankey.plan_key(
        environ, ignore_env, decision.to_set, decision.to_unset, shared=shared
    )
    if trust is not None:
        # The (SSL_CERT_FILE, SSL_CERT_DIR) values this plan leaves in os.environ: when a
        # program has set others, its choice wins and load_default_certs is stock. None at
        # all when the user's own values are kept and another source was chosen: they decide
        # what OpenSSL loads, not the plan.
        trust["default_env"] = (
            ()
            if decision.hands_off
            else _plankey.applied_user_values(
                environ, ignore_env, decision.to_set, decision.to_unset
            )
        )
    for path, count in decision.appended:
        message = (
            f"{count} certificate{'s were' if count != 1 else ' was'} appended to "
            f"certifi.where() by this environment; put them in `extra` (castore-hook keeps "
            f"them in {path} until the trust changes and that bundle is replaced)"
        )
        decision.problem(message, path)
        decision.aside("bundle", message)
    info["trail"] = tuple(decision.trail)
    info["problems"] = tuple(decision.problems)
    info["stepped_aside"] = tuple(decision.stepped_aside)
    info["warnings"] = tuple(decision.warnings)
    info["appended"] = tuple(decision.appended)
    plan: Plan = {
        "format": hot.PLAN_FORMAT,
        "key": key,
        "stats": tuple(stats),
        "set": tuple(decision.to_set),
        "unset": tuple(decision.to_unset),
        "record": record,
        "trust": trust,
        "info": info,
    }
    if shared:
        plan["portable"] = portable
    return plan


def _origin(cfg: config.Config, key: str) -> str:
    """``"file:line"`` (or the file, or the variable) that set ``key``."""
    origin = cfg.origins.get(key, "default")
    line = cfg.lines.get(key)
    return f"{origin}:{line}" if line else origin


def _relaxation_warning(cfg: config.Config) -> str:
    origin = cfg.origins.get("x509_strict", "default")
    line = cfg.lines.get("x509_strict")
    where = f"config file {origin}, line {line}" if line else origin
    applies = (
        "contexts whose trust castore-hook supplies do not set VERIFY_X509_STRICT"
        if sys.version_info >= (3, 13)
        else "it has no effect before Python 3.13"
    )
    return (
        f"strict X.509 checks relaxed by {where} (x509_strict = false): {applies}; chain, "
        "signature, expiry and hostname checks stay. The durable fix is a root that "
        "conforms to RFC 5280 (key usage, authority and subject key identifiers)"
    )


def _decide_trust(
    cfg: config.Config,
    env: Mapping[str, str],
    folder: Optional[str],
    decision: _Decision,
    info: PlanInfo,
) -> Optional[Trust]:
    """Choose the source, merge extras, and fill exports; return the in-process trust.

    The contract (docs/architecture.md, "Do no harm"): whatever file the hook exports or hands
    to certifi holds every root of the chosen material plus the extras; where such a file
    cannot be built, that mechanism is withheld (stock) and ``info["stepped_aside"]`` says why.
    certifi is only ever pointed at a file the hook owns (its cache) or at certifi's own file,
    never at an OS file that a program appending to ``certifi.where()`` would change.
    """
    probe = _choose(cfg, env, decision)
    if probe is None or probe.material is None:
        decision.problem("no configured source is usable; castore-hook changes nothing")
        return None
    material = probe.material
    info["source"] = probe.token
    info["form"] = material.form
    info["cafile"] = material.cafile
    info["capath"] = material.capath
    info["count"] = material.count
    extra_blocks = _read_extras(cfg.extra, decision)
    info["extras"] = tuple(cfg.extra)
    wants_export = bool(cfg.export)
    # A file is needed for exports when the material is not one file already (in-memory data,
    # or the OS verifier with extras) or extras must join it; certifi always gets one of ours.
    export_needs_bundle = wants_export and (
        bool(extra_blocks) or (material.cadata is not None and not material.cafile)
    )
    from_certifi = probe.token == "certifi"  # noqa: S105 - a source token, not a secret
    certifi_own = from_certifi and bool(material.cafile) and not extra_blocks
    certifi_needs_bundle = cfg.certifi and not certifi_own
    bundle_path: Optional[str] = None
    bundle_roots: frozenset[bytes] = frozenset()
    if export_needs_bundle or certifi_needs_bundle:
        bundle_path, bundle_roots = _complete_bundle(material, env, extra_blocks, folder, decision)
        info["bundle"] = bundle_path
    file_value: Optional[str] = None
    dir_value: Optional[str] = None
    if wants_export:
        if export_needs_bundle:
            if bundle_path is None:
                decision.aside("export", "no complete bundle could be written; nothing exported")
            else:
                file_value = bundle_path
                # With extras, SSL_CERT_DIR is not exported: curl reads SSL_CERT_FILE only when
                # SSL_CERT_DIR is unset, and the bundle already holds the folder's roots.
                if not extra_blocks and material.capath not in material.implicit:
                    dir_value = material.capath
        elif not material.native:
            if material.cafile not in material.implicit:
                file_value = material.cafile
            if material.capath not in material.implicit:
                dir_value = material.capath
    kept = _kept_user_vars(probe, env, file_value, decision)
    for value in (file_value, dir_value):
        if value and _unsafe_for_export(value):
            decision.problem(f"refusing to export the unsafe path {value!r}")
            return None
    _exports(cfg, file_value, dir_value, kept, decision)
    certifi_file: Optional[str] = None
    certifi_stand_in = False
    if cfg.certifi:
        certifi_file = material.cafile if certifi_own else bundle_path
        if certifi_file is None and cfg.patch and not material.native:
            # Nothing could be written (a read-only image without a usable shared plan): the
            # chosen trust still reaches requests, pip and urllib3 in this process through
            # certifi's own file, which the load_verify_locations wrapper loads as the plan's
            # trust (docs/architecture.md, "Where nothing can be written").
            certifi_file = _certifi_own_file()
            certifi_stand_in = certifi_file is not None
            if certifi_stand_in:
                decision.aside(
                    "certifi",
                    f"no bundle of the chosen trust could be written (see the problems above): "
                    f"certifi.where() names certifi's own {certifi_file}, which this process "
                    "loads as the chosen trust and the extras (requests, pip, urllib3 here); "
                    "a child process given that path reads certifi's own roots only",
                )
        if certifi_file is None:
            decision.aside(
                "certifi",
                "certifi is left stock: no complete bundle of the chosen trust could be written "
                "in a folder castore-hook owns (see the problems above)",
            )
    for path in (file_value, certifi_file):
        if path:
            decision.look([path])
    # The folder's own signatures before any proof reads it: a root linked in or unlinked
    # later changes them, and the proofs below then no longer hold (checked per context).
    proof = _folder_signatures(material.capath)
    fast_capath = _equivalent_folder(material, decision) if proof else None
    trust: Trust = {
        "cafile": None if fast_capath else material.cafile,
        "capath": fast_capath or material.capath,
        "cadata": material.cadata,
        "extra_pem": "".join(b for b in extra_blocks),
        "stands_for": material.cafile if fast_capath else None,
        "folder_proof": (),
        "lazy_files": (),
        "own_files": (),
        "x509_strict": cfg.x509_strict,
        "certifi_file": certifi_file,
        "certifi_stand_in": certifi_stand_in,
        "native": material.native,
        "patch": cfg.patch,
        "certifi": cfg.certifi and certifi_file is not None,
        "default_env": (),  # filled by build_plan, once the plan's key is known
    }
    if cfg.fast_contexts and cfg.patch and not material.native:
        candidates: dict[Optional[str], Optional[frozenset[bytes]]] = {file_value: None}
        candidates[bundle_path] = bundle_roots  # known: never re-read the bundle just written
        if proof:
            trust["lazy_files"] = _lazy_stand_ins(trust, extra_blocks, candidates, decision)
    if trust["stands_for"] or trust["lazy_files"]:
        trust["folder_proof"] = proof
    # Files the hook hands out (certifi.where(), an exported bundle): contexts loading them
    # get the hook's trust, and with x509_strict = false its relaxation too.
    handed_out = {path for path in (certifi_file, bundle_path if file_value else None) if path}
    trust["own_files"] = tuple(_signed(path) for path in sorted(handed_out))
    return trust


def _folder_signatures(capath: Optional[str]) -> tuple[tuple[str, Signature], ...]:
    """Each folder of ``capath`` with its own stat signature, or ``()`` when one is missing."""
    signed = []
    for folder in (capath or "").split(os.pathsep):
        if folder:
            signature = stat_signature(folder)
            if signature is None:
                return ()
            signed.append((folder, signature))
    return tuple(signed)


def _certifi_own_file() -> Optional[str]:
    """certifi's own ``cacert.pem`` on disk (where ``import certifi`` finds it), or ``None``
    (certifi zipped, embedded or absent)."""
    entries = [entry for entry in sys.path if entry and os.path.isabs(entry)]
    found = certifi_locate.certifi_location(entries)
    if found is None or found[1] is not None:
        return None
    return found[0]


def _signed(path: str) -> tuple[str, Signature]:
    signature = stat_signature(path)
    if signature is None:
        raise FileNotFoundError(path)
    return path, signature


def _complete_bundle(
    material: sources.Material,
    env: Mapping[str, str],
    extra_blocks: list[str],
    folder: Optional[str],
    decision: _Decision,
) -> tuple[Optional[str], frozenset[bytes]]:
    """Write the bundle of every root of ``material`` plus the extras; its path and roots, or
    ``None`` (with the reason in ``decision``) when it cannot be complete or be written."""
    try:
        ders = trustroots.of_material(material, dict(env))
    except certset.Unavailable as exc:
        decision.problem(f"cannot build a complete bundle of the chosen source: {exc}")
        return None, frozenset()
    roots = certset.unique([*ders, *certset.of_text("".join(extra_blocks))])
    path, appended = _materialise(folder, certset.to_pem(roots), decision)
    return path, frozenset([*roots, *appended]) if path else frozenset()


def _lazy_stand_ins(
    trust: Trust,
    extra_blocks: list[str],
    files: dict[Optional[str], Optional[frozenset[bytes]]],
    decision: _Decision,
) -> tuple[tuple[str, Signature], ...]:
    """The files the hook hands out (its bundle, the exported ``SSL_CERT_FILE``) that hold
    exactly what the in-process trust holds, with their stat signatures.

    When the in-process trust is a hashed folder (plus extras as data), a context that loads
    one of these files by path (requests, httpx, urllib3, pip all load ``certifi.where()`` or
    ``SSL_CERT_FILE``) may load the folder instead: the same roots, looked up lazily, instead
    of a bundle parsed for every context. Compared by content, never assumed, and with what
    OpenSSL's lookup reaches in the folder (``certset.reachable``), not every entry.
    """
    if not trust["capath"] or trust["cafile"] or trust["cadata"]:
        return ()
    try:
        lazy = set(certset.reachable(trust["capath"]))
    except certset.Unavailable:
        return ()
    lazy.update(certset.of_text("".join(extra_blocks)))
    stand_ins = []
    for path, roots in files.items():
        if not path:
            continue
        if roots is None:
            try:
                roots = frozenset(certset.of_file(path))
            except certset.Unavailable:
                continue
        if roots == lazy:
            stand_ins.append(_signed(path))
            decision.trail.append(
                f"contexts loading {path} get the folder {trust['capath']} instead "
                "(the same certificates, looked up lazily)"
            )
    return tuple(stand_ins)


def _equivalent_folder(material: sources.Material, decision: _Decision) -> Optional[str]:
    """The material's hashed folder if loading it alone trusts exactly what the material does.

    OpenSSL looks a folder's roots up lazily, so loading it costs ~0.5 ms per context where
    parsing a 150-root bundle costs ~30 ms. The material trusts the file and the folder
    together; the folder alone trusts the same only when OpenSSL's lookup finds every
    certificate of the file there (each under its subject hash, no gap before it), compared
    by content (DER bytes), never by count.
    """
    if not material.capath or not material.cafile:
        return None
    if certset.folder_covers_file(material.capath, material.cafile):
        decision.trail.append(
            f"in-process loading uses the folder {material.capath}: OpenSSL's lookup there finds "
            f"every certificate of {material.cafile} (compared by content), so roots are looked "
            "up lazily while the folder is unchanged"
        )
        return material.capath
    decision.trail.append(
        f"in-process loading uses {material.cafile} and {material.capath}: OpenSSL's lookup in "
        "the folder does not find every certificate of the file"
    )
    return None


def _materialise(
    plan_folder: Optional[str], pem: str, decision: _Decision
) -> tuple[Optional[str], list[bytes]]:
    """Write the bundle where bundles of this user go (``bundle.bundle_folder``); its path
    (``None`` with the reason in ``decision``) and the certificates a program appended to it
    since, which are kept (``bundle``) and reported."""
    if not pem:
        return None, []
    folder = bundle.bundle_folder(plan_folder)
    if not folder:
        decision.problem("no cache folder for the merged bundle; nothing exported")
        return None, []
    problem = _plancache.folder_problem(folder)
    if problem:
        decision.problem(problem + "; the merged bundle cannot be written, nothing exported")
        return None, []
    try:
        path, appended = bundle.write_bundle_keeping(folder, pem)
    except OSError as exc:
        decision.problem(f"cannot write the merged bundle in {folder}: {exc}")
        return None, []
    count = pem.count("-----BEGIN CERTIFICATE-----")
    decision.trail.append(f"merged bundle {path}: {count} certificates")
    if appended:
        decision.appended.append((path, len(appended)))
        decision.trail.append(f"merged bundle {path}: {len(appended)} appended certificate(s) kept")
    return path, appended
