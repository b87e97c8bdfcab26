"""Merging CA material into one PEM bundle in the cache folder.

When ``extra`` roots are configured, or the chosen source exists only in memory (certifi
inside a zip, the Windows store), clients that read a *file* (OpenSSL through
``SSL_CERT_FILE``, requests, curl) need one. The bundle is content-addressed — its name is a
digest of its content — so concurrent interpreters that decide the same trust write the same
file, and a changed trust never rewrites a file another process is reading.

certifi's own ``cacert.pem`` keeps what a program appends to it (a start-up script adding a
corporate root is common), until certifi is upgraded. A bundle handed out as
``certifi.where()`` does the same: certificates appended after its unchanged content are kept
until the trust changes and a bundle of another name is written (``write_bundle_keeping``).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from typing import Optional

from castore_hook import _plancache
from castore_hook import pem as pem_blocks
from castore_hook._plancache import write_atomic
from castore_hook._safefile import CA_LIMIT

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
    """Write ``pem`` to its content-addressed name in ``folder`` and return the path (see
    ``write_bundle_keeping``)."""
    return write_bundle_keeping(folder, pem)[0]


def write_bundle_keeping(folder: str, pem: str) -> tuple[str, list[bytes]]:
    """Write ``pem`` to its content-addressed name in ``folder`` (atomically, 0644); return
    the path and the certificates (DER) that a program appended to the bundle already there.

    An existing bundle with the same name is kept when it holds the same bytes, or the same
    bytes followed by nothing but well-formed certificates (appended, as to certifi's own
    file); anything else there is replaced. 0644 rather than 0600: exported paths are read by
    child processes, which may drop privileges; the folder's own mode still decides who can
    reach it.
    """
    data = pem.encode("ascii")
    name = bundle_name(pem)
    path = os.path.join(folder, name)
    appended = _reusable(path, data)
    if appended is not None:
        return path, appended
    # os.replace swaps out anything else at that name: a stale, foreign or planted file.
    return write_atomic(folder, name, data, mode=0o644), []


def _reusable(path: str, data: bytes) -> Optional[list[bytes]]:
    """The certificates appended to our bundle at ``path`` (``[]`` when it is exactly
    ``data``), or ``None`` when it is not ours to keep: it must be a regular file (not a
    symlink) that we own, that nobody else can write, holding ``data`` followed only by
    whole, well-formed certificate blocks. The name is predictable, so anything else may have
    been planted by another user while the folder was open."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    getuid = getattr(os, "getuid", None)
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o022:
        return None
    if st.st_size < len(data) or st.st_size > max(CA_LIMIT, len(data)):
        return None
    if getuid is not None and st.st_uid != getuid():
        return None
    try:
        with open(path, "rb") as handle:
            content = handle.read(st.st_size + 1)
    except OSError:
        return None
    if not content.startswith(data):
        return None
    tail = content[len(data) :]
    if not tail.strip():
        return [] if not tail else None  # trailing blank lines: rewrite, nothing to keep
    ders, corrupt, was_der = pem_blocks.parse_certificates(tail)
    if not ders or corrupt or was_der or sum(pem_blocks.trusted_certificates(tail)):
        return None
    return ders
