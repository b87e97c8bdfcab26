"""What the source and store tests share: fake CA files and hashed folders on a fake root.

Every probe in them gets an explicit ``env`` (``NO_ENV`` when none matters): the developer
shell presets ``SSL_CERT_FILE`` and friends, and nothing here may depend on them. The
``certs`` and ``key_pem`` fixtures are in tests/unit/conftest.py.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Dict, Iterable

NO_ENV: Dict[str, str] = {}


def ca_pem() -> bytes:
    """A fresh CA certificate as PEM bytes (trustme: a test dependency)."""
    import trustme

    return bytes(trustme.CA().cert_pem.bytes())


def write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def hashed_folder(folder: Path, pems: Iterable[bytes], *, symlinks: bool = True) -> Path:
    """A c_rehash-style folder: one file per certificate plus ``xxxxxxxx.0`` names."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, pem in enumerate(pems):
        target = write(folder / f"cert{i}.pem", pem)
        name = folder / f"{i:08x}.0"
        if symlinks:
            name.symlink_to(target.name)
        else:
            write(name, pem)
    return folder


def der_of(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))


def rooted(root: Path, path: str) -> str:
    return str(root) + path
