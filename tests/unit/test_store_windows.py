"""The Windows store (castore_hook/stores/windows.py): the CA and ROOT system stores read
through a fake ``ssl.enum_certificates``, its ``native`` roots, and OpenSSL's ``;``-separated
folder lists there."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from tests.unit.stores_kit import NO_ENV, ca_pem, der_of, hashed_folder

from castore_hook import certset, trustroots
from castore_hook.pem import pem_certificates
from castore_hook.sources import Material, probe
from castore_hook.stores import windows

pytest.importorskip("trustme")


def test_system_win32_fake_enumerator(certs: List[bytes]) -> None:
    ders = [der_of(p) for p in certs]
    extra_ca = der_of(ca_pem())
    stores: Dict[str, List[Tuple[bytes, str, Any]]] = {
        "ROOT": [
            (ders[0], "x509_asn", True),  # trusted for everything
            (ders[1], "x509_asn", {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}),  # server auth
            (ders[2], "x509_asn", {"1.3.6.1.5.5.7.3.4"}),  # e-mail only: dropped
            (b"\x30\x03\x02\x01\x00", "pkcs_7_asn", True),  # PKCS#7: dropped
        ],
        "CA": [
            (ders[0], "x509_asn", True),  # duplicate: dropped
            (extra_ca, "x509_asn", frozenset({"1.3.6.1.5.5.7.3.1"})),
            (b"not a certificate", "x509_asn", True),  # corrupt: dropped
            (ders[2], "x509_asn", set()),  # no usage at all: dropped
        ],
    }
    asked: List[str] = []

    def enumerator(name: str) -> List[Tuple[bytes, str, Any]]:
        asked.append(name)
        return stores[name]

    result = probe("system", NO_ENV, platform="win32", windows_enumerator=enumerator)
    assert sorted(asked) == ["CA", "ROOT"]
    assert result.material is not None
    assert result.material.form == "data"
    assert result.material.count == 3
    assert result.looked_at == []
    kept = pem_certificates((result.material.cadata or "").encode())
    assert {der_of(p.encode()) for p in kept} == {ders[0], ders[1], extra_ca}
    assert len(kept) == 3
    # The in-memory data loads into OpenSSL as is.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=result.material.cadata)
    assert ctx.cert_store_stats()["x509_ca"] == 3


def test_system_win32_enumerator_failure_and_empty() -> None:
    def broken(name: str) -> List[Tuple[bytes, str, Any]]:
        raise PermissionError("access denied")

    result = probe("system", NO_ENV, platform="win32", windows_enumerator=broken)
    assert result.material is None
    assert any("access denied" in p for p in result.problems)

    result = probe("system", NO_ENV, platform="win32", windows_enumerator=lambda name: [])
    assert result.material is None
    assert result.problems


@pytest.mark.skipif(sys.platform == "win32", reason="needs a build without enum_certificates")
def test_system_win32_without_enumerator_is_unusable() -> None:
    result = probe("system", NO_ENV, platform="win32")
    assert result.material is None
    assert result.problems


def test_native_roots_are_the_system_sources_certificates(certs: List[bytes]) -> None:
    ders = [der_of(p) for p in certs]

    def enumerator(name: str) -> List[Tuple[bytes, str, Any]]:
        if name == "ROOT":
            return [(ders[0], "x509_asn", True), (ders[1], "x509_asn", {"1.3.6.1.5.5.7.3.4"})]
        return [(ders[2], "x509_asn", {windows.SERVER_AUTH_OID})]

    assert windows.native_roots({}, enumerator=enumerator) == [ders[2], ders[0]]
    with pytest.raises(certset.Unavailable, match="no server-auth certificate"):
        windows.native_roots({}, enumerator=lambda name: [])


def test_capath_lists_are_separated_by_semicolons(tmp_path: Path, certs: List[bytes]) -> None:
    a = hashed_folder(tmp_path / "a", certs[:1])
    b = hashed_folder(tmp_path / "b", certs[1:2])
    assert windows.CAPATH_SEPARATOR == ";"
    result = probe("env", {"SSL_CERT_DIR": f"{a};{b}"}, platform="win32", root=str(tmp_path))
    assert result.material is not None
    assert result.material.capath == f"{a};{b}"
    material = Material(capath=f"{a};{b}")
    got = trustroots.of_material(material, {}, platform="win32")
    assert set(got) == {der_of(certs[0]), der_of(certs[1])}
