"""Which environments share a plan: the export record, the user's own values, a plan's key.

A plan is decided from the environment *as the user set it*. When a hooked interpreter starts
a child, the child inherits what the parent's hook exported (``SSL_CERT_FILE`` pointing at a
bundle, say); it must not take that for a choice of the user's, or every child would decide
a plan of its own and evict its parent's. So the hook records what it changed in
``CASTORE_HOOK_EXPORTED`` (``NAME<TAB>ORIGINAL<TAB>NEW`` per line), and a value still equal to
the recorded ``NEW`` stands for ``ORIGINAL``.

The hot path never parses that record. Instead a plan's key lists the variables that decide
it (``names``) and every state of them that this module has shown to mean the same decision
(``states``): the environment it was decided in, that environment with every parent export
undone, and the environment right after the plan is applied, which is what a child sees. At
start-up the check is one ``tuple(map(environ.get, names)) in states``
(``_castore_hook.valid_cached_plan``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import _castore_hook as hot

#: What the user sets to choose their own trust; the first source, ``env``, reads these.
USER_CA_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR")
#: castore-hook's own variables that change the decision (ignored under ``python -E``/``-I``).
HOOK_VARS = ("CASTORE_HOOK_CONFIG", "CASTORE_HOOK_SOURCES", "CASTORE_HOOK_EXTRA")
#: What platformdirs reads to place config files on this platform.
if os.name == "nt":
    LOCATION_VARS: tuple[str, ...] = (
        "APPDATA",
        "LOCALAPPDATA",
        "PROGRAMDATA",
        "WIN_PD_OVERRIDE_APPDATA",
        "WIN_PD_OVERRIDE_COMMON_APPDATA",
    )
    SITE_LOCATION_VARS: tuple[str, ...] = ("PROGRAMDATA", "WIN_PD_OVERRIDE_COMMON_APPDATA")
else:
    LOCATION_VARS = ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS")
    SITE_LOCATION_VARS = ("XDG_CONFIG_DIRS",)
#: A shared plan (``refresh --shared``) watches only the site locations: it must hold for
#: every user, and start-up checks this user's config file instead (``find_plan``).

Record = dict[str, tuple[str, str]]
Key = tuple[object, ...]


def getter(environ: Mapping[str, str]) -> Callable[[str], str]:
    """What the hot module's functions read the environment through: ``get(name)``, ``""``
    when unset (``_castore_hook.getenv`` is the fast one for ``os.environ``)."""
    return lambda name: environ.get(name, "")


def parse_exported(value: Optional[str]) -> Record:
    """Decode ``CASTORE_HOOK_EXPORTED`` into ``{name: (original, new)}``.

    Lines that are not three tab-separated fields naming an exportable variable are skipped:
    the record comes from the environment and is treated as hostile.
    """
    record: Record = {}
    for line in (value or "").split("\n"):
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] in hot.EXPORT_ALLOWED:
            record[parts[0]] = (parts[1], parts[2])
    return record


def parent_originals(environ: Mapping[str, str], ignore_env: bool) -> dict[str, Optional[str]]:
    """Variables a parent's hook changed that still hold what it set, mapped to the value
    they had before (``None``: unset). Under ``python -E`` the record is ignored like every
    other ``CASTORE_HOOK_*`` variable."""
    if ignore_env:
        return {}
    originals: dict[str, Optional[str]] = {}
    for name, (original, new) in parse_exported(environ.get(hot.EXPORTED_VAR)).items():
        if environ.get(name, "") == new:
            originals[name] = original or None
    return originals


def decision_environ(environ: Mapping[str, str], ignore_env: bool) -> dict[str, str]:
    """The environment as the *user* set it: parent exports undone, the record dropped, and
    ``CASTORE_HOOK_*`` dropped under ``python -E``. Config and probes see only this."""
    env = {
        name: value
        for name, value in environ.items()
        if not (ignore_env and name.startswith("CASTORE_HOOK_"))
    }
    for name, original in parent_originals(environ, ignore_env).items():
        if original:
            env[name] = original
        else:
            env.pop(name, None)
    env.pop(hot.EXPORTED_VAR, None)
    return env


def native_lookup(environ: Mapping[str, str]) -> Callable[[Any], Any]:
    """What ``_castore_hook.valid_cached_plan`` reads watched variables through: a name in
    ``os.environ``'s own encoding (bytes on POSIX, upper case on Windows) to its value in the
    same encoding, ``None`` when unset. For ``os.environ`` that is its internal mapping's
    ``get``, a C call; any other mapping (``activate()``'s overrides) is encoded here."""
    if environ is os.environ:
        return os.environ._data.get  # type: ignore[attr-defined,no-any-return]
    decode_key = os.environ.decodekey
    encode_value = os.environ.encodevalue

    def lookup(key: Any) -> Any:
        value = environ.get(decode_key(key))
        return None if value is None else encode_value(value)

    return lookup


def applied_user_values(
    environ: Mapping[str, str],
    ignore_env: bool,
    to_set: Sequence[tuple[str, str]],
    to_unset: Sequence[str],
) -> tuple[tuple[Optional[str], Optional[str]], ...]:
    """The ``(SSL_CERT_FILE, SSL_CERT_DIR)`` pairs ``os.environ`` holds right after this plan
    is applied, for every state its key accepts (see ``plan_key``): what the plan set or
    removed, else the value the interpreter started with, with or without a parent hook's
    exports. Any other pair means the program (or its parent) chose its own trust."""
    changes: dict[str, Optional[str]] = dict(to_set)
    changes.update(dict.fromkeys(to_unset))
    raw = {name: environ.get(name) for name in USER_CA_VARS}
    pristine = {**raw, **parent_originals(environ, ignore_env)}
    pairs: list[tuple[Optional[str], Optional[str]]] = []
    for state in (raw, pristine):
        cafile, capath = (changes[n] if n in changes else state[n] for n in USER_CA_VARS)
        if (cafile, capath) not in pairs:
            pairs.append((cafile, capath))
    return tuple(pairs)


def plan_key(
    environ: Mapping[str, str],
    ignore_env: bool,
    to_set: Sequence[tuple[str, str]],
    to_unset: Sequence[str],
    *,
    shared: bool = False,
) -> tuple[Key, Optional[str]]:
    """The key of a plan decided in ``environ`` that sets ``to_set`` and removes ``to_unset``,
    and the record its application exports (``None`` when it changes nothing).

    The key is the interpreter's identity, then ``names`` and ``states`` (see the module
    docstring), both in ``os.environ``'s own encoding (``native_lookup``), so that start-up
    compares them without decoding a single variable. Every state listed undoes, through the
    record it carries, to the same decision environment, so a hit in any of them is the
    decision the slow path would make.
    """
    originals = parent_originals(environ, ignore_env)
    changes: dict[str, Optional[str]] = dict(to_set)
    changes.update(dict.fromkeys(to_unset))
    # Parent exports this plan leaves alone stay recorded, so a grandchild still undoes them.
    carried = {name: original for name, original in originals.items() if name not in changes}
    names = list((SITE_LOCATION_VARS if shared else LOCATION_VARS) + USER_CA_VARS)
    if not ignore_env:
        names[:0] = HOOK_VARS
        names.append(hot.EXPORTED_VAR)
    names += sorted(name for name in {*changes, *carried} if name not in names)
    raw = {name: environ.get(name) for name in names}
    pristine = {**raw, **originals}
    if not ignore_env:
        pristine[hot.EXPORTED_VAR] = None
    record = None
    after = dict(raw)
    if changes:
        lines = [
            f"{name}\t{original or ''}\t{environ.get(name, '')}"
            for name, original in carried.items()
        ]
        for name, value in changes.items():
            original = pristine[name] or ""
            if "\n" not in original and "\t" not in original:
                lines.append(f"{name}\t{original}\t{value or ''}")
        record = "\n".join(lines)
        after.update(changes)
        after[hot.EXPORTED_VAR] = record
    encode_key = os.environ.encodekey
    encode_value = os.environ.encodevalue

    def encoded(state: Mapping[str, Optional[str]]) -> tuple[Any, ...]:
        return tuple(
            None if (value := state[name]) is None else encode_value(value) for name in names
        )

    # A tuple, not a set: start-up compares two or three tuples instead of hashing them all.
    states = tuple(dict.fromkeys(encoded(state) for state in (raw, pristine, after)))
    identity = (sys.hexversion, sys.platform, sys.prefix, ignore_env)  # as valid_cached_plan checks
    return (*identity, tuple(encode_key(name) for name in names), states), record
