"""The macOS store (castore_hook/stores/darwin.py): its one file on a fake root, and the
keychain export behind ``native`` bundles, with a fake ``security`` runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Sequence

import pytest
from tests.unit.stores_kit import NO_ENV, rooted, write

from castore_hook import certset
from castore_hook.sources import Material, probe
from castore_hook.stores import darwin

pytest.importorskip("trustme")


def test_darwin_list() -> None:
    assert darwin.FILES == ("/etc/ssl/cert.pem",)
    assert darwin.CAPATH_SEPARATOR == ":"


def test_system_darwin(tmp_path: Path, certs: List[bytes]) -> None:
    result = probe("system", NO_ENV, platform="darwin", root=str(tmp_path))
    assert result.material is None
    assert result.looked_at == [rooted(tmp_path, "/etc/ssl/cert.pem")]
    assert any("native" in p for p in result.problems)
    write(tmp_path / "etc/ssl/cert.pem", certs[0])
    result = probe("system", NO_ENV, platform="darwin", root=str(tmp_path))
    assert result.material == Material(cafile=rooted(tmp_path, "/etc/ssl/cert.pem"), count=1)


def test_native_roots_export_both_keychains(certs: List[bytes]) -> None:
    asked: List[List[str]] = []

    def security(argv: Sequence[str]) -> bytes:
        asked.append(list(argv))
        return certs[0] if argv[-1] == darwin.KEYCHAINS[0] else certs[0] + certs[1]

    got = darwin.native_roots({}, run=security)
    assert got == certset.of_text(b"".join(certs[:2]).decode())  # each root once
    assert [argv[-1] for argv in asked] == list(darwin.KEYCHAINS)
    assert asked[0][:4] == ["/usr/bin/security", "find-certificate", "-a", "-p"]


def test_native_roots_unavailable_when_the_export_fails_or_is_empty() -> None:
    def failing(argv: Any) -> bytes:
        raise OSError("no security tool")

    with pytest.raises(certset.Unavailable, match="no security tool"):
        darwin.native_roots({}, run=failing)
    with pytest.raises(certset.Unavailable, match="exported no certificate"):
        darwin.native_roots({}, run=lambda argv: b"")
