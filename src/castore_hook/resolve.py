"""From configuration and probes to a *plan*: what this interpreter should trust and export.

A plan is a plain ``dict`` of ``marshal``-able values, because the start-up hot path reads it
back without importing anything (see ``_castore_hook``). Its fields:

``format``  cache format version.
``key``     who may use it: the interpreter's identity, the variables that decided it and
            the states of them that mean this decision (``_envstate.plan_key``).
``stats``   ``((path, signature), ...)`` of every path that decided it, present or absent.
``set``     ``((NAME, value), ...)`` environment variables to export.
``unset``   ``(NAME, ...)`` variables to remove (a user's dangling ``SSL_CERT_*``).
``record``  the ``CASTORE_HOOK_EXPORTED`` value that applying it exports, or ``None``.
``hooks``   in-process trust for the lazy patches: ``{"cafile", "capath", "cadata",
            "native", "patch", "certifi"}`` or ``None``.
``info``    the human side, for ``status``: source, form, files read, trail, problems.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any, Optional

import _castore_hook as hot
from castore_hook import _envstate, _plancache, bundle, config, sources
from castore_hook._safefile import CA_LIMIT, UnsafeFile, read_regular_file, stat_signature


class _Decision:
    """Collects a plan while it is being decided."""

    def __init__(self) -> None:
        self.looked_at: list[str] = []
        self.trail: list[str] = []
        self.problems: list[tuple[str, str]] = []
        self.to_set: list[tuple[str, str]] = []
        self.to_unset: list[str] = []

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
            continue
        except OSError as exc:
            decision.problem(f"extra {path} cannot be read ({exc.strerror or exc}); ignored", path)
            continue
        except ValueError as exc:
            decision.problem(f"extra {path!r} is not a usable path ({exc}); ignored", path)
            continue
        found = sources.pem_certificates(data)
        if not found:
            decision.problem(f"extra {path} holds no certificate; ignored", path)
            continue
        decision.trail.append(f"extra {path}: {len(found)} certificate(s)")
        blocks.extend(found)
    return blocks


def _material_pem(material: sources.Material, decision: _Decision) -> str:
    """The chosen material's file or in-memory data as PEM text, for merging (not a folder).

    The file is taken as it is: "usable" already means OpenSSL loads it whole, and
    re-encoding 150 certificates one by one would cost milliseconds of a cold start.
    """
    if material.cadata:
        return material.cadata
    if material.cafile:
        try:
            text = read_regular_file(material.cafile, CA_LIMIT).decode("ascii", "replace")
        except (OSError, UnsafeFile, ValueError) as exc:
            decision.problem(f"cannot re-read {material.cafile}: {exc}", material.cafile)
            return ""
        return text if text.endswith("\n") else text + "\n"
    return ""


def _user_var_unusable(name: str, value: str, decision: _Decision) -> bool:
    """Whether a user's ``SSL_CERT_FILE``/``SSL_CERT_DIR`` points nowhere useful."""
    decision.look([value])
    if not os.path.isabs(value):
        return True
    check = sources.check_ca_dir if name == "SSL_CERT_DIR" else sources.check_ca_file
    _count, reason = check(value)
    return reason is not None


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
    env: Mapping[str, str],
    file_value: Optional[str],
    dir_value: Optional[str],
    decision: _Decision,
) -> None:
    for name in cfg.export:
        value = dir_value if name == "SSL_CERT_DIR" else file_value
        if value:
            decision.to_set.append((name, value))
            continue
        user_value = env.get(name, "")
        dangling = (
            name in _envstate.USER_CA_VARS
            and bool(user_value)
            and _user_var_unusable(name, user_value, decision)
        )
        if dangling:
            decision.to_unset.append(name)
            decision.problem(f"{name}={user_value} points to nothing usable; removed it", name)


def _unsafe_for_export(path: str) -> bool:
    return "\n" in path or "\t" in path or "\0" in path or not os.path.isabs(path)


def build_plan(
    environ: Mapping[str, str],
    folder: Optional[str],
    ignore_env: bool,
    *,
    shared: bool = False,
) -> dict[str, Any]:
    """Decide the plan for an interpreter whose environment is ``environ``.

    Never raises for bad input: every problem lands in ``info["problems"]``. Leaves the
    interpreter stock (no ``set``/``unset``/``hooks``) when the config is unusable, the hook
    is disabled by config, or no source is usable. A ``shared`` plan (``refresh --shared``)
    holds for every user: no user config file is read or watched, and its key watches no
    per-user location variable (docs/architecture.md, "Where plans are cached").
    """
    env = _envstate.decision_environ(environ, ignore_env)
    decision = _Decision()
    cfg = config.load_config(env, user=not shared)
    decision.look(list(cfg.candidates))
    for problem in cfg.problems:
        decision.problem(problem.message, problem.where())
    info: dict[str, Any] = {
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
    hooks: Optional[dict[str, Any]] = None
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
        hooks = _decide_trust(cfg, env, folder, decision, info)
        if hooks is not None and not (hooks["patch"] or hooks["certifi"]):
            hooks = None  # nothing to do in-process: start-up installs no finder
    stats = []
    seen: set[str] = set()
    for path in decision.looked_at:
        if path and path not in seen:
            seen.add(path)
            stats.append((path, stat_signature(path)))
    key, record = _envstate.plan_key(
        environ, ignore_env, decision.to_set, decision.to_unset, shared=shared
    )
    return {
        "format": hot.PLAN_FORMAT,
        "key": key,
        "stats": tuple(stats),
        "set": tuple(decision.to_set),
        "unset": tuple(decision.to_unset),
        "record": record,
        "hooks": hooks,
        "info": {
            **info,
            "trail": tuple(decision.trail),
            "problems": tuple(decision.problems),
        },
    }


def _decide_trust(
    cfg: config.Config,
    env: Mapping[str, str],
    folder: Optional[str],
    decision: _Decision,
    info: dict[str, Any],
) -> Optional[dict[str, Any]]:
    """Choose the source, merge extras, and fill exports; return the in-process trust."""
    probe = _choose(cfg, env, decision)
    if probe is None or probe.material is None:
        decision.problem("no configured source is usable; castore-hook changes nothing")
        return None
    material = probe.material
    info.update(
        source=probe.token,
        form=material.form,
        cafile=material.cafile,
        capath=material.capath,
        count=material.count,
    )
    extra_blocks = _read_extras(cfg.extra, decision)
    info["extras"] = tuple(cfg.extra)
    file_value = material.cafile
    dir_value = material.capath
    wants_file = bool(cfg.export) or cfg.certifi
    needs_file = bool(extra_blocks) or (material.cadata is not None and not material.cafile)
    merged = False
    if needs_file and wants_file:
        source_pem = _material_pem(material, decision)
        pem = source_pem + bundle.merge_pem(b for b in extra_blocks if b not in source_pem)
        file_value = _materialise(folder, pem, decision)
        info["bundle"] = file_value
        merged = file_value is not None
        if file_value is None and extra_blocks:
            # Exporting the source alone would silently drop the extra roots the operator
            # asked for; exporting nothing keeps the failure visible (status says why).
            dir_value = None
        elif merged and extra_blocks:
            # The merged bundle holds the source's roots and the extras. curl (7.88) reads
            # SSL_CERT_FILE only when SSL_CERT_DIR is unset, so exporting the folder too
            # would hide the extras from it; the folder stays in use in-process.
            dir_value = None
    for value in (file_value, dir_value):
        if value and _unsafe_for_export(value):
            decision.problem(f"refusing to export the unsafe path {value!r}")
            return None
    _exports(cfg, env, file_value, dir_value, decision)
    if file_value:
        decision.look([file_value])
    fast_capath = _complete_folder(material, decision)
    return {
        "cafile": file_value if merged else material.cafile,
        "capath": material.capath,
        "fast_capath": fast_capath,
        "cadata": None if merged else material.cadata,
        "extra_pem": "".join(extra_blocks),
        "cafile_has_extras": merged and bool(extra_blocks),
        "native": material.native,
        "patch": cfg.patch,
        "certifi": cfg.certifi,
    }


def _complete_folder(material: sources.Material, decision: _Decision) -> Optional[str]:
    """The material's hashed folder if it can stand in for its bundle in the ssl patch.

    OpenSSL looks a folder's roots up lazily, so loading it costs ~0.5 ms per context where
    parsing a 150-root bundle costs ~30 ms. It may replace the file only when it holds at
    least as many hash entries as the file holds certificates, so trust never shrinks.
    """
    if not material.capath:
        return None
    if not material.cafile:
        return material.capath
    folders = material.capath.split(os.pathsep)
    entries = 0
    for folder in folders:
        count, reason = sources.check_ca_dir(folder)
        if reason is None:
            entries += count
    if entries >= material.count > 0:
        decision.trail.append(
            f"in-process loading uses the folder ({entries} entries >= {material.count} "
            "certificates in the file): lazy lookups instead of parsing the bundle"
        )
        return material.capath
    decision.trail.append(
        f"in-process loading uses the file: the folder has {entries} entries for "
        f"{material.count} certificates"
    )
    return None


def _materialise(folder: Optional[str], pem: str, decision: _Decision) -> Optional[str]:
    if not pem:
        return None
    if not folder:
        decision.problem("no cache folder for the merged bundle; nothing exported")
        return None
    problem = _plancache.folder_problem(folder)
    if problem:
        decision.problem(problem + "; the merged bundle cannot be written, nothing exported")
        return None
    try:
        path = bundle.write_bundle(folder, pem)
    except OSError as exc:
        decision.problem(f"cannot write the merged bundle in {folder}: {exc}")
        return None
    count = pem.count("-----BEGIN CERTIFICATE-----")
    decision.trail.append(f"merged bundle {path}: {count} certificates")
    return path
