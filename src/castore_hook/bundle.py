"""Merging CA material into one PEM bundle in the cache folder.

When ``extra`` roots are configured, or the chosen source exists only in memory (certifi
inside a zip, the Windows store), clients that read a *file* (OpenSSL through
``SSL_CERT_FILE``, requests, curl) need one. The bundle is content-addressed — its name is a
digest of its content — so concurrent interpreters that decide the same trust write the same
file, and a changed trust never rewrites a file another process is reading.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from typing import Optional

from castore_hook import _plancache
from castore_hook._plancache import write_atomic

BUNDLE_PREFIX = "bundle-"


def bundle_folder(plan_folder: Optional[str]) -> Optional[str]:
    """Where a plan decided for ``plan_folder`` keeps the bundles it hands out.

    Bundles are public data named by path to other programs: ``certifi.where()``, the exported
    ``SSL_CERT_FILE``, read by children that may run as another user. For root and the
    environment's owner (who may write the environment anyway) they go beside the environment,
    in the shared folder (``castore-hook-shared/`` in site-packages, 0755, files 0644), like
    certifi's own ``cacert.pem``: readable after the process drops privileges (gunicorn,
    ``subprocess.run(..., user=...)``) and untouched by cache cleaners. Everyone else, and a
    hook not installed inside ``sys.prefix`` (a user site, tests running from a checkout), or
    an environment that cannot be written (a read-only image): the plan's own folder.
    """
    shared = _plancache.shared_dir()
    getuid = getattr(os, "getuid", None)
    if (
        shared is None
        or getuid is None
        or getuid() not in _plancache.shared_owners()
        or not shared.startswith(os.path.join(sys.prefix, ""))
        or _plancache.folder_problem(shared) is not None
    ):
        return plan_folder
    return shared


def merge_pem(blocks: Iterable[str]) -> str:
    """Concatenate PEM certificate blocks, dropping exact duplicates, keeping first order."""
    seen: set[str] = set()
    merged: list[str] = []
    for block in blocks:
        text = block.strip() + "\n"
        if text not in seen:
            seen.add(text)
            merged.append(text)
    return "".join(merged)


def _digest(data: bytes) -> str:
    """CRC-32 and Adler-32 of ``data`` (64 bits) and its length: enough to tell bundles apart
    in one cache folder, which is all the name has to do, because a bundle is reused only
    after its bytes are compared (``_reusable``). A cryptographic hash is not needed, and
    CPython's built-in SHA-256 costs ~4 M instructions per 200 kB bundle on a cold start;
    these cost ~0.3 M, and zlib is already loaded by then (platformdirs imports shutil)."""
    try:
        import zlib
    except ImportError:  # a CPython built without zlib: hashlib's SHA-256 instead
        import hashlib

        return hashlib.sha256(data).hexdigest()[:24]
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}-{len(data)}"


def bundle_name(pem: str) -> str:
    """The content-addressed file name of a bundle."""
    return BUNDLE_PREFIX + _digest(pem.encode("ascii")) + ".pem"


def write_bundle(folder: str, pem: str) -> str:
    """Write ``pem`` to its content-addressed name in ``folder`` (atomically, 0644) and
    return the path. An existing bundle with the same name already holds the same bytes.

    0644 rather than 0600: exported paths are read by child processes, which may drop
    privileges; the folder's own mode still decides who can reach it.
    """
    data = pem.encode("ascii")
    name = bundle_name(pem)
    path = os.path.join(folder, name)
    if _reusable(path, data):
        return path
    # os.replace swaps out anything else at that name: a stale, foreign or planted file.
    return write_atomic(folder, name, data, mode=0o644)


def _reusable(path: str, data: bytes) -> bool:
    """Whether ``path`` already is exactly our bundle: a regular file (not a symlink) that
    we own, that nobody else can write, holding exactly ``data``. The name is predictable,
    so anything else may have been planted by another user while the folder was open."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    getuid = getattr(os, "getuid", None)
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o022 or st.st_size != len(data):
        return False
    if getuid is not None and st.st_uid != getuid():
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(len(data) + 1) == data
    except OSError:
        return False
