"""Merging CA material into one PEM bundle in the cache folder.

When ``extra`` roots are configured, or the chosen source exists only in memory (certifi
inside a zip, the Windows store), clients that read a *file* (OpenSSL through
``SSL_CERT_FILE``, requests, curl) need one. The bundle is content-addressed — its name is the
hash of its content — so concurrent interpreters that decide the same trust write the same
file, and a changed trust never rewrites a file another process is reading.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from castore_hook._plancache import write_atomic

BUNDLE_PREFIX = "bundle-"


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


def bundle_name(pem: str) -> str:
    """The content-addressed file name of a bundle."""
    return BUNDLE_PREFIX + hashlib.sha256(pem.encode("ascii")).hexdigest()[:32] + ".pem"


def write_bundle(folder: str, pem: str) -> str:
    """Write ``pem`` to its content-addressed name in ``folder`` (atomically, 0644) and
    return the path. An existing bundle with the same name already holds the same bytes.

    0644 rather than 0600: exported paths are read by child processes, which may drop
    privileges; the folder's own mode still decides who can reach it.
    """
    path = os.path.join(folder, bundle_name(pem))
    if os.path.isfile(path):
        return path
    return write_atomic(folder, bundle_name(pem), pem.encode("ascii"), mode=0o644)
