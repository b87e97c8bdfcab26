"""The BSD store (castore_hook/stores/bsd.py): its file list on a fake root, and that its
``native`` roots are what truststore reads on Linux."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest
from tests.unit.stores_kit import NO_ENV, rooted, write

from castore_hook.sources import Material, probe
from castore_hook.stores import bsd, linux

pytest.importorskip("trustme")


def test_bsd_list() -> None:
    assert bsd.FILES == (
        "/usr/local/etc/ssl/cert.pem",
        "/etc/ssl/cert.pem",
        "/usr/local/share/certs/ca-root-nss.crt",
        "/etc/openssl/certs/ca-certificates.crt",
    )
    assert bsd.CAPATH_SEPARATOR == ":"
    assert bsd.native_roots is linux.native_roots  # truststore's _openssl serves both


def test_system_freebsd(tmp_path: Path, certs: List[bytes]) -> None:
    write(tmp_path / "etc/ssl/cert.pem", certs[0] + certs[1])
    result = probe("system", NO_ENV, platform="freebsd14", root=str(tmp_path))
    assert result.material == Material(cafile=rooted(tmp_path, "/etc/ssl/cert.pem"), count=2)
    assert result.looked_at == [
        rooted(tmp_path, "/usr/local/etc/ssl/cert.pem"),
        rooted(tmp_path, "/etc/ssl/cert.pem"),
    ]


def test_system_bsd_reads_no_folder_and_says_how_to_fix(tmp_path: Path) -> None:
    (tmp_path / "etc/ssl/certs").mkdir(parents=True)  # a Linux folder: not a BSD candidate
    for name in ("openbsd7", "netbsd10", "dragonfly6"):
        result = probe("system", NO_ENV, platform=name, root=str(tmp_path))
        assert result.material is None
        assert result.looked_at == [rooted(tmp_path, p) for p in bsd.FILES]
        assert result.problems == [
            "no usable system CA file or folder found; install the distribution's "
            "ca-certificates package"
        ]
