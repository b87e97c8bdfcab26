"""The records every probe fills and the helpers the file-based probes share: ``Material``
(what a source yields), ``Probe`` (what probing one source found), and the first usable file
and folder of a candidate list.

Below both ``sources`` (the source tokens) and ``stores`` (one module per OS store), which
each use them, so that neither imports the other's module for them.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from castore_hook import cafiles
from castore_hook._record import FrozenRecord, Record

__all__ = ["Material", "Probe", "first_usable", "rooted"]


class Material(FrozenRecord):
    """CA material one source yields, in the form(s) OpenSSL or truststore can consume.

    ``count`` is the number of certificates in ``cafile``/``cadata``; for a folder alone it is
    the number of hash-named entries (a cheap proxy: a folder is never read entry by entry).
    ``implicit`` names the parts (``cafile``/``capath`` values) that are OpenSSL's own
    compiled-in defaults, which OpenSSL reads anyway: they count in-process and in bundles,
    but are never exported (a child given them as ``SSL_CERT_FILE`` would read them *instead
    of* what the user's own variable said, e.g. in httpx).
    ``strict`` says the material was named in castore-hook's config (``file:``, ``dir:``):
    everything read from it later (a folder's entries) is held to the ownership rules of
    files the hook introduces; other material is read as stock OpenSSL reads it.
    """

    __slots__ = ("cadata", "cafile", "capath", "count", "implicit", "native", "strict")
    cafile: Optional[str]
    capath: Optional[str]
    cadata: Optional[str]
    native: bool
    count: int
    implicit: Tuple[str, ...]
    strict: bool

    def __init__(
        self,
        cafile: Optional[str] = None,
        capath: Optional[str] = None,
        cadata: Optional[str] = None,
        native: bool = False,
        count: int = 0,
        implicit: Tuple[str, ...] = (),
        strict: bool = False,
    ) -> None:
        self.cafile = cafile
        self.capath = capath
        self.cadata = cadata
        self.native = native
        self.count = count
        self.implicit = implicit
        self.strict = strict

    @property
    def form(self) -> str:
        """One word for status output and for the resolver's dispatch.

        ``"native"``, ``"data"``, ``"file+folder"``, ``"file"``, ``"folder"``; ``"none"``
        only for an empty ``Material()``, which ``probe`` never returns.
        """
        if self.native:
            return "native"
        if self.cadata is not None:
            return "data"
        if self.cafile is not None and self.capath is not None:
            return "file+folder"
        if self.cafile is not None:
            return "file"
        if self.capath is not None:
            return "folder"
        return "none"


class Probe(Record):
    """The outcome of probing one source token (see the module docstring for each field)."""

    __slots__ = ("looked_at", "material", "problems", "token", "trail", "unusable_env")

    def __init__(
        self,
        token: str,
        material: Optional[Material],
        looked_at: List[str],
        trail: List[str],
        problems: List[str],
        unusable_env: Optional[List[str]] = None,
    ) -> None:
        self.token = token
        self.material = material
        self.looked_at = looked_at
        self.trail = trail
        self.problems = problems
        self.unusable_env: List[str] = [] if unusable_env is None else unusable_env


# --------------------------------------------------------------------------------------------
# Probing one token
# --------------------------------------------------------------------------------------------


def rooted(root: str, path: str) -> str:
    if not root:
        return path
    return root.rstrip("/\\") + path


def first_usable(
    result: Probe, files: Sequence[str], folders: Sequence[str], label: Tuple[str, str]
) -> Optional[Material]:
    """The first usable file and the first usable folder among candidates, as one material.

    Every candidate looked at is recorded (present or absent: the plan notices when one
    appears); unusable ones that are there are problems, named with ``label`` (what to call a
    file and a folder of this source). ``None`` when neither kind has a usable candidate.
    The candidates are the OS store and OpenSSL's defaults, which stock OpenSSL reads whoever
    owns them (a rootless container sees a bind-mounted host store as uid 65534): no
    ownership rule (``cafiles.AS_STOCK``), so the hook never falls back to something
    narrower than stock for an owner it would not accept for its own files.
    """
    cafile: Optional[str] = None
    capath: Optional[str] = None
    count = 0
    for path in files:
        result.looked_at.append(path)
        check = cafiles.inspect_file(path, cafiles.AS_STOCK)
        result.trail.append(cafiles.trail_line(path, check, "certificates"))
        if check.kind == "ok":
            cafile, count = path, check.count
            break
        if check.kind in ("bad", "convertible"):
            result.problems.append(f"{label[0]} {path}: {check.reason}")
    for path in folders:
        result.looked_at.append(path)
        check = cafiles.inspect_dir(path, cafiles.AS_STOCK)
        result.trail.append(cafiles.trail_line(path, check, "hash entries"))
        if check.kind == "ok":
            capath = path
            if cafile is None:
                count = check.count
            break
        if check.kind == "bad":
            result.problems.append(f"{label[1]} {path}: {check.reason}")
    if cafile is None and capath is None:
        return None
    return Material(cafile=cafile, capath=capath, count=count)
