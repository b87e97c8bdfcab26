"""The Linux store (castore_hook/stores/linux.py): the ``system`` source's file and folder
lists on fake roots, and what the ``native`` source (truststore) reads there.

The ``system`` tests go through ``sources.probe`` with ``platform="linux"``, the way the
resolver reaches the store, so they pin the whole path from the token to the store module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest
from tests.unit.stores_kit import NO_ENV, hashed_folder, rooted, write

from castore_hook import certset
from castore_hook.sources import Material, probe
from castore_hook.stores import bsd, darwin, linux

trustme = pytest.importorskip("trustme")


# --------------------------------------------------------------------------------------------
# the lists
# --------------------------------------------------------------------------------------------


def test_linux_lists() -> None:
    files, folders = linux.FILES, linux.FOLDERS
    assert files[0] == "/etc/ssl/certs/ca-certificates.crt"
    assert "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem" in files
    assert files[-1] == "/opt/etc/ssl/certs/ca-certificates.crt"
    assert folders == ("/etc/ssl/certs", "/etc/pki/tls/certs", "/system/etc/security/cacerts")
    assert len(set(files)) == len(files) == 8
    assert linux.CAPATH_SEPARATOR == ":"


#: The peers that probe ``/etc/pki/tls/cert.pem`` (truststore's ``_CA_FILE_CANDIDATES``:
#: ``tls-ca-bundle.pem``, then ``/etc/pki/tls/cert.pem``, then Debian's bundle) put it right
#: after the extracted RHEL bundle it usually links to; castore-hook keeps Debian first (as
#: Go's crypto/x509 does) and the two RHEL names in truststore's relative order.
def test_system_probes_rhel_cert_pem_in_the_peers_order() -> None:
    files = linux.FILES
    rhel = files.index("/etc/pki/tls/cert.pem")
    assert files.index("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem") == rhel - 1
    assert files.index("/etc/pki/tls/certs/ca-bundle.crt") == rhel + 1
    assert files.index("/etc/ssl/certs/ca-certificates.crt") < rhel
    assert "/etc/pki/tls/cert.pem" not in bsd.FILES + darwin.FILES


def test_system_rhel_cert_pem_alone(tmp_path: Path, certs: List[bytes]) -> None:
    """A RHEL-like image with only ``/etc/pki/tls/cert.pem`` (the extracted bundle and the
    legacy ``ca-bundle.crt`` removed, as slimmed containers do): ``system`` now finds it."""
    cert_pem = write(tmp_path / "etc/pki/tls/cert.pem", certs[0] + certs[1])
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material == Material(cafile=str(cert_pem), count=2)
    files, folders = linux.FILES, linux.FOLDERS
    upto = files.index("/etc/pki/tls/cert.pem") + 1
    assert result.looked_at == [rooted(tmp_path, p) for p in files[:upto] + folders]
    assert result.trail[upto - 1] == f"{cert_pem}: 2 certificates"
    assert result.problems == []


def test_system_rhel_cert_pem_is_a_link_to_the_extracted_bundle(
    tmp_path: Path, certs: List[bytes]
) -> None:
    """On Fedora/RHEL ``cert.pem`` links to ``tls-ca-bundle.pem``: the real file comes first
    and wins, so the plan names the file update-ca-trust rewrites."""
    bundle = write(tmp_path / "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", certs[0])
    link = tmp_path / "etc/pki/tls/cert.pem"
    link.parent.mkdir(parents=True)
    link.symlink_to(os.path.relpath(bundle, link.parent))
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material is not None
    assert result.material.cafile == str(bundle)
    assert str(link) not in result.looked_at
    # Without the extracted bundle the link dangles and is passed over.
    bundle.unlink()
    write(tmp_path / "etc/ssl/cert.pem", certs[1])
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material is not None
    assert result.material.cafile == rooted(tmp_path, "/etc/ssl/cert.pem")
    assert str(link) in result.looked_at


def test_system_debian_layout(tmp_path: Path, certs: List[bytes]) -> None:
    folder = hashed_folder(tmp_path / "etc/ssl/certs", certs)
    write(folder / "ca-certificates.crt", b"".join(certs))
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    bundle = rooted(tmp_path, "/etc/ssl/certs/ca-certificates.crt")
    certs_dir = rooted(tmp_path, "/etc/ssl/certs")
    assert result.material == Material(cafile=bundle, capath=certs_dir, count=3)
    assert result.material.form == "file+folder"
    assert result.looked_at == [bundle, certs_dir]
    assert result.trail == [f"{bundle}: 3 certificates", f"{certs_dir}: 3 hash entries"]
    assert result.problems == []


def test_system_fedora_layout(tmp_path: Path, certs: List[bytes]) -> None:
    bundle = write(tmp_path / "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", b"".join(certs))
    legacy = tmp_path / "etc/pki/tls/certs/ca-bundle.crt"
    legacy.parent.mkdir(parents=True)
    legacy.symlink_to(os.path.relpath(bundle, legacy.parent))
    (tmp_path / "etc/ssl").mkdir(parents=True)
    (tmp_path / "etc/ssl/certs").symlink_to("../pki/tls/certs")
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material == Material(cafile=str(bundle), count=3)
    assert result.material.form == "file"
    files, folders = linux.FILES, linux.FOLDERS
    assert result.looked_at == [rooted(tmp_path, p) for p in files[:2] + folders]
    assert result.trail[0] == f"{rooted(tmp_path, files[0])}: missing"
    assert result.trail[1] == f"{bundle}: 3 certificates"
    # Fedora's cert folders hold bundles, not hash names: normal, so not a problem.
    assert "no hash-named entries" in result.trail[2]
    assert result.problems == []


def test_system_alpine_layout(tmp_path: Path, certs: List[bytes]) -> None:
    cert_pem = write(tmp_path / "etc/ssl/cert.pem", certs[0])
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material == Material(cafile=str(cert_pem), count=1)
    files, folders = linux.FILES, linux.FOLDERS
    upto = files.index("/etc/ssl/cert.pem") + 1
    assert result.looked_at == [rooted(tmp_path, p) for p in files[:upto] + folders]
    assert all(line.endswith(": missing") for line in result.trail[: upto - 1])


def test_system_nothing_found(tmp_path: Path) -> None:
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material is None
    files, folders = linux.FILES, linux.FOLDERS
    assert result.looked_at == [rooted(tmp_path, p) for p in files + folders]
    assert len(result.problems) == 1
    assert "ca-certificates" in result.problems[0]


def test_system_probe_order_first_usable_wins(tmp_path: Path, certs: List[bytes]) -> None:
    files = linux.FILES
    write(tmp_path / "etc/pki/tls/certs/ca-bundle.crt", certs[0])  # files[3]
    write(tmp_path / "etc/ssl/cert.pem", certs[1] + certs[2])  # files[6]
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material is not None
    assert result.material.cafile == rooted(tmp_path, "/etc/pki/tls/certs/ca-bundle.crt")
    assert result.material.count == 1
    assert result.looked_at[:4] == [rooted(tmp_path, p) for p in files[:4]]
    assert rooted(tmp_path, "/etc/ssl/cert.pem") not in result.looked_at


def test_system_skips_bad_file_and_reports_it(
    tmp_path: Path, certs: List[bytes], key_pem: bytes
) -> None:
    write(tmp_path / "etc/ssl/certs/ca-certificates.crt", key_pem)  # a key, not certificates
    write(tmp_path / "etc/ssl/ca-bundle.pem", certs[0])
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material is not None
    assert result.material.cafile == rooted(tmp_path, "/etc/ssl/ca-bundle.pem")
    bad = rooted(tmp_path, "/etc/ssl/certs/ca-certificates.crt")
    assert result.trail[0] == f"{bad}: holds no certificate"
    assert any(bad in p and "holds no certificate" in p for p in result.problems)


def test_system_folder_order(tmp_path: Path, certs: List[bytes]) -> None:
    (tmp_path / "etc/ssl/certs").mkdir(parents=True)  # exists, no hash names
    hashed_folder(tmp_path / "etc/pki/tls/certs", certs[:2], symlinks=False)
    hashed_folder(tmp_path / "system/etc/security/cacerts", certs)
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material is not None
    assert result.material.form == "folder"
    assert result.material.capath == rooted(tmp_path, "/etc/pki/tls/certs")
    assert result.material.count == 2
    files, folders = linux.FILES, linux.FOLDERS
    assert result.looked_at == [rooted(tmp_path, p) for p in files + folders[:2]]


def test_system_store_is_used_whatever_its_owner_and_mode(
    tmp_path: Path, certs: List[bytes]
) -> None:
    # Stock OpenSSL reads the OS store whoever owns it (a rootless container sees a
    # bind-mounted host store as uid 65534; RHEL's umask 002 leaves files 0664): refusing it
    # would only fall back to something narrower than stock.
    loose = write(tmp_path / "etc/ssl/certs/ca-certificates.crt", certs[0], mode=0o666)
    write(tmp_path / "etc/ssl/cert.pem", certs[1])
    folder = hashed_folder(tmp_path / "etc/ssl/certs", certs[:1])
    os.chmod(folder, 0o777)
    if os.geteuid() == 0:
        os.chown(loose, 65534, 65534)
        os.chown(folder, 65534, 65534)
    result = probe("system", NO_ENV, platform="linux", root=str(tmp_path))
    assert result.material == Material(cafile=str(loose), capath=str(folder), count=1)
    assert result.problems == []
    # Negative control: a config-named file in the same place is refused.
    refused = probe(f"file:{loose}", NO_ENV)
    assert refused.material is None
    assert "refused" in refused.problems[0]


# --------------------------------------------------------------------------------------------
# native: what truststore reads
# --------------------------------------------------------------------------------------------


def test_native_locations_follow_truststore(tmp_path: Path, certs: List[bytes]) -> None:
    root = tmp_path / "r"
    # Neither OpenSSL default exists: truststore takes the first candidate file.
    write(root / "etc" / "pki" / "tls" / "cert.pem", certs[0])
    got = linux.native_locations({}, ("/usr/lib/ssl/cert.pem", "/usr/lib/ssl/certs"), str(root))
    assert got == (str(root / "etc" / "pki" / "tls" / "cert.pem"), None)
    # OpenSSL's default file exists: set_default_verify_paths, i.e. that file.
    write(root / "usr" / "lib" / "ssl" / "cert.pem", certs[0])
    got = linux.native_locations({}, ("/usr/lib/ssl/cert.pem", "/usr/lib/ssl/certs"), str(root))
    assert got == (str(root / "usr" / "lib" / "ssl" / "cert.pem"), None)


def test_native_roots_read_the_file_and_folder_truststore_loads(
    tmp_path: Path, certs: List[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = write(tmp_path / "bundle.pem", certs[0])
    folder = hashed_folder(tmp_path / "certs", certs[1:])
    monkeypatch.setattr(linux, "native_locations", lambda env: (str(bundle), str(folder)))
    assert linux.native_roots({}) == certset.of_text(b"".join(certs).decode())
    monkeypatch.setattr(linux, "native_locations", lambda env: (None, None))
    with pytest.raises(certset.Unavailable, match="not found"):
        linux.native_roots({})


def test_truststore_candidate_list_is_pinned() -> None:
    """Pinned to truststore's own list (truststore/_openssl.py) when it is installed."""
    try:
        from truststore import _openssl  # type: ignore[import-not-found]
    except Exception:
        pytest.skip("truststore is not installed")
    assert tuple(_openssl._CA_FILE_CANDIDATES) == linux.TRUSTSTORE_FILES
