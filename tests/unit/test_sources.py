"""Unit tests for castore_hook.sources: probing CA sources on fake file systems.

Every test passes an explicit ``env`` mapping: the developer shell presets ``SSL_CERT_FILE``
and friends, and nothing here may depend on them.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
from tests.helpers import examples
from tests.unit.stores_kit import NO_ENV, der_of, hashed_folder, rooted, write

from castore_hook import sources
from castore_hook.cafiles import check_ca_dir, check_ca_file
from castore_hook.certifi_locate import certifi_location
from castore_hook.pem import pem_certificates
from castore_hook.sources import Material, Probe, probe

trustme = pytest.importorskip("trustme")

# --------------------------------------------------------------------------------------------
# Material
# --------------------------------------------------------------------------------------------


def test_material_form() -> None:
    assert Material(cafile="/a").form == "file"
    assert Material(capath="/d").form == "folder"
    assert Material(cafile="/a", capath="/d").form == "file+folder"
    assert Material(cadata="x").form == "data"
    assert Material(native=True).form == "native"
    assert Material().form == "none"


# --------------------------------------------------------------------------------------------
# env
# --------------------------------------------------------------------------------------------


def test_env_unset_is_unusable_without_problems() -> None:
    result = probe("env", {})
    assert result.material is None
    assert result.problems == []
    assert result.unusable_env == []
    assert result.looked_at == []


def test_env_empty_values_give_openssl_nothing(tmp_path: Path, certs: List[bytes]) -> None:
    # An empty variable is still set: OpenSSL loads nothing from it, and not its default.
    result = probe("env", {"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}, root=str(tmp_path))
    assert result.material is None
    assert result.unusable_env == ["SSL_CERT_FILE", "SSL_CERT_DIR"]
    assert all("leaves it as it is" in problem for problem in result.problems)


def test_env_dangling_file_and_good_dir(tmp_path: Path, certs: List[bytes]) -> None:
    folder = hashed_folder(tmp_path / "certs", certs)
    missing = str(tmp_path / "gone.pem")
    env = {"SSL_CERT_FILE": missing, "SSL_CERT_DIR": str(folder)}
    result = probe("env", env)
    # OpenSSL trusts the folder only: the missing file replaces its default file.
    assert result.material == Material(capath=str(folder), count=3)
    assert result.unusable_env == ["SSL_CERT_FILE"]
    assert result.problems == [
        f"SSL_CERT_FILE={missing} points to a missing file; OpenSSL loads nothing from it "
        "(nor its default in its place), and castore-hook leaves it as it is. Fix: unset it, "
        "or point it at a CA file or hashed folder"
    ]
    assert result.looked_at == [missing, str(folder)]


def test_env_both_usable(tmp_path: Path, certs: List[bytes]) -> None:
    bundle = write(tmp_path / "b.pem", certs[0] + certs[1])
    folder = hashed_folder(tmp_path / "certs", certs)
    result = probe("env", {"SSL_CERT_FILE": str(bundle), "SSL_CERT_DIR": str(folder)})
    assert result.material == Material(cafile=str(bundle), capath=str(folder), count=2)
    assert result.unusable_env == []
    assert result.problems == []


def test_env_both_unusable(tmp_path: Path, key_pem: bytes) -> None:
    key = write(tmp_path / "key.pem", key_pem)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    result = probe("env", {"SSL_CERT_FILE": str(key), "SSL_CERT_DIR": str(empty_dir)})
    assert result.material is None
    assert result.unusable_env == ["SSL_CERT_FILE", "SSL_CERT_DIR"]
    assert len(result.problems) == 2
    assert "without a PEM certificate" in result.problems[0]


def test_env_dir_list(tmp_path: Path, certs: List[bytes]) -> None:
    a = hashed_folder(tmp_path / "a", certs[:1])
    b = hashed_folder(tmp_path / "b", certs[1:])
    missing = tmp_path / "missing"
    result = probe(
        "env", {"SSL_CERT_DIR": f"{a}:{missing}:{b}"}, platform="linux", root=str(tmp_path)
    )
    assert result.material is not None
    assert result.material.capath == f"{a}:{b}"
    assert result.unusable_env == []
    assert result.looked_at[:3] == [str(a), str(missing), str(b)]
    assert any(str(missing) in p for p in result.problems)


def test_env_relative_path_is_unusable(tmp_path: Path, certs: List[bytes]) -> None:
    # What OpenSSL loads depends on the current folder, which no plan can know: the source
    # is unusable even with a good SSL_CERT_DIR beside it (the material would lack the file).
    folder = hashed_folder(tmp_path / "certs", certs)
    for env in (
        {"SSL_CERT_FILE": "certs/ca.pem"},
        {"SSL_CERT_FILE": "certs/ca.pem", "SSL_CERT_DIR": str(folder)},
        {"SSL_CERT_DIR": "certs"},
    ):
        result = probe("env", env)
        assert result.material is None, env
        assert "relative path" in result.problems[0]
        assert "leaves this variable" in result.problems[0]


def _finishes_quickly(fn: Callable[[], Any], limit: float = 2.0) -> Any:
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) if it blocks."""
    box: Dict[str, Any] = {}

    def run() -> None:
        box["value"] = fn()

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), "probe blocked"
    assert time.monotonic() - start < limit
    return box["value"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_env_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result: Probe = _finishes_quickly(lambda: probe("env", {"SSL_CERT_FILE": str(fifo)}))
    assert result.material is None
    assert result.unusable_env == ["SSL_CERT_FILE"]
    assert "FIFO" in result.problems[0] and "cannot tell" in result.problems[0]
    # Through a symlink and as an explicit token too.
    link = tmp_path / "link.pem"
    link.symlink_to(fifo)
    result = _finishes_quickly(lambda: probe(f"file:{link}", NO_ENV))
    assert result.material is None
    count, reason = _finishes_quickly(lambda: check_ca_file(str(fifo)))
    assert count == 0 and reason and "FIFO" in reason


def test_env_weird_values_never_raise() -> None:
    for value in ("\x00", "/nul\x00byte", "/", "//", "/" + "a" * 5000):
        result = probe("env", {"SSL_CERT_FILE": value, "SSL_CERT_DIR": value})
        assert result.material is None
        assert isinstance(result.problems, list)


# --------------------------------------------------------------------------------------------
# file: and dir: tokens, check_ca_file, check_ca_dir
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs /proc")
def test_proc_self_mem_is_refused(tmp_path: Path) -> None:
    result = probe("file:/proc/self/mem", NO_ENV)
    assert result.material is None
    assert "virtual filesystem" in result.problems[0]
    assert result.looked_at == ["/proc/self/mem"]
    link = tmp_path / "innocent.pem"
    link.symlink_to("/proc/self/mem")
    count, reason = check_ca_file(str(link))
    assert count == 0 and reason and "virtual filesystem" in reason


def test_dev_null_and_folder_as_file(tmp_path: Path) -> None:
    assert check_ca_file("/dev/null")[1] == "a device, not a regular file"
    assert check_ca_file(str(tmp_path))[1] == "a folder, not a file"


def test_private_key_file(tmp_path: Path, key_pem: bytes) -> None:
    key = write(tmp_path / "key.pem", key_pem)
    assert check_ca_file(str(key)) == (0, "holds no certificate")
    # A DER private key is a SEQUENCE too, but not a certificate.
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_private_key(key_pem, password=None)
    der_key = loaded.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_der = write(tmp_path / "key.der", der_key)
    assert check_ca_file(str(key_der)) == (0, "holds no certificate")
    assert pem_certificates(der_key) == []


def test_empty_and_garbage_files(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.pem", b"")
    assert check_ca_file(str(empty)) == (0, "holds no certificate")
    garbage = write(tmp_path / "garbage.pem", os.urandom(4096))
    assert check_ca_file(str(garbage))[0] == 0
    result = probe(f"file:{empty}", NO_ENV)
    assert result.material is None
    assert result.problems == [f"file:{empty} is unusable: holds no certificate"]


def test_missing_file_token(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    result = probe(f"file:{missing}", NO_ENV)
    assert result.material is None
    assert result.looked_at == [missing]
    assert result.trail == [f"{missing}: missing"]
    assert result.problems == [f"file:{missing} points to a missing file"]
    assert check_ca_file(missing) == (0, "missing")


def test_good_file_token(tmp_path: Path, certs: List[bytes]) -> None:
    bundle = write(tmp_path / "corp.pem", b"# comment\n" + certs[0] + b"\ntext\n" + certs[1])
    result = probe(f"file:{bundle}", NO_ENV)
    assert result.material == Material(cafile=str(bundle), count=2, strict=True)
    assert result.trail == [f"{bundle}: 2 certificates"]
    assert check_ca_file(str(bundle)) == (2, None)


def test_file_with_corrupt_block_becomes_data(tmp_path: Path, certs: List[bytes]) -> None:
    corrupt = b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
    path = write(tmp_path / "mixed.pem", certs[0] + corrupt + certs[1])
    count, reason = check_ca_file(str(path))
    assert count == 2 and reason and "corrupt" in reason
    # OpenSSL itself refuses such a file: that is why it is not offered as cafile.
    with pytest.raises(ssl.SSLError):
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    result = probe(f"file:{path}", NO_ENV)
    assert result.material is not None
    assert result.material.form == "data"
    assert result.material.count == 2
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=result.material.cadata)
    assert ctx.cert_store_stats()["x509_ca"] == 2
    assert result.problems and "corrupt" in result.problems[0]
    # The same file as SSL_CERT_FILE is not rewritten: it is unusable and reported.
    env_result = probe("env", {"SSL_CERT_FILE": str(path)})
    assert env_result.material is None
    assert env_result.unusable_env == ["SSL_CERT_FILE"]


def test_der_file_token_becomes_data(tmp_path: Path, certs: List[bytes]) -> None:
    path = write(tmp_path / "root.cer", der_of(certs[0]))
    count, reason = check_ca_file(str(path))
    assert count == 1 and reason and "DER" in reason
    result = probe(f"file:{path}", NO_ENV)
    assert result.material is not None
    assert result.material.cadata == ssl.DER_cert_to_PEM_cert(der_of(certs[0]))


def test_group_writable_and_foreign_owned_files_refused(tmp_path: Path, certs: List[bytes]) -> None:
    loose = write(tmp_path / "loose.pem", certs[0], mode=0o664)
    count, reason = check_ca_file(str(loose))
    assert count == 0 and reason and reason.startswith("refused: ") and "writable" in reason
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    foreign = write(tmp_path / "foreign.pem", certs[0])
    os.chown(foreign, 65534, 65534)
    count, reason = check_ca_file(str(foreign))
    assert count == 0 and reason and "owned by uid 65534" in reason


def test_folder_without_hash_names(tmp_path: Path, certs: List[bytes]) -> None:
    folder = tmp_path / "certs"
    write(folder / "ca.pem", certs[0])
    write(folder / "1234567.0", certs[0])  # 7 hex digits: not a hash name
    write(folder / "ABCDEF01.0", certs[0])  # OpenSSL hash names are lowercase
    write(folder / "abcdef01.r0", certs[0])  # CRL hash names do not count
    count, reason = check_ca_dir(str(folder))
    assert count == 0 and reason and "hash-named" in reason
    result = probe(f"dir:{folder}", NO_ENV)
    assert result.material is None
    assert result.looked_at == [str(folder)]
    assert result.problems == [f"dir:{folder} is unusable: {reason}"]


def test_hashed_folder_token(tmp_path: Path, certs: List[bytes]) -> None:
    folder = hashed_folder(tmp_path / "certs", certs)
    write(folder / "0a1b2c3d.12", certs[0])
    result = probe(f"dir:{folder}", NO_ENV)
    assert result.material == Material(capath=str(folder), count=4, strict=True)
    assert result.trail == [f"{folder}: 4 hash entries"]
    assert check_ca_dir(str(folder)) == (4, None)


def test_folder_with_only_dangling_hash_links(tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "0123abcd.0").symlink_to("nowhere.pem")
    count, reason = check_ca_dir(str(folder))
    assert count == 1 and reason and "dangle" in reason


def test_folder_refusals(tmp_path: Path, certs: List[bytes]) -> None:
    folder = hashed_folder(tmp_path / "certs", certs)
    os.chmod(folder, 0o777)
    count, reason = check_ca_dir(str(folder))
    assert count == 0 and reason and "writable" in reason
    os.chmod(folder, 0o755)
    assert check_ca_dir(str(folder)) == (3, None)
    assert check_ca_dir(str(tmp_path / "missing")) == (0, "missing")
    assert check_ca_dir(str(folder / "cert0.pem")) == (0, "not a folder")
    assert check_ca_dir("relative/dir")[1] == "not an absolute path"
    if sys.platform.startswith("linux"):
        assert "virtual" in (check_ca_dir("/proc/self")[1] or "")


@pytest.mark.parametrize("token", ["file:", "file:relative.pem", "dir:certs", "bogus", "FILE:/x"])
def test_bad_tokens(token: str) -> None:
    result = probe(token, NO_ENV)
    assert result.material is None
    assert len(result.problems) == 1
    assert result.looked_at == []


# --------------------------------------------------------------------------------------------
# certifi
# --------------------------------------------------------------------------------------------


def make_certifi(site: Path, pem: bytes) -> Path:
    write(site / "certifi/__init__.py", b"")
    return write(site / "certifi/cacert.pem", pem)


def test_certifi_on_disk(tmp_path: Path, certs: List[bytes]) -> None:
    missing = tmp_path / "missing"
    plain = tmp_path / "plain"
    plain.mkdir()
    half = tmp_path / "half"  # cacert.pem without __init__.py: not a certifi package
    write(half / "certifi/cacert.pem", certs[0])
    site = tmp_path / "site"
    cacert = make_certifi(site, certs[0] + certs[1])
    later = tmp_path / "later"
    make_certifi(later, certs[2])
    entries = [str(missing), str(plain), str(half), str(site), str(later)]

    assert certifi_location(entries) == (str(cacert), None)
    result = probe("certifi", NO_ENV, path_entries=entries)
    assert result.material == Material(cafile=str(cacert), count=2)
    assert result.looked_at == [
        str(missing),
        str(plain / "certifi/cacert.pem"),
        str(half / "certifi/cacert.pem"),
        str(half / "certifi/__init__.py"),
        str(cacert),
        str(site / "certifi/__init__.py"),
    ]
    assert str(later / "certifi/cacert.pem") not in result.looked_at
    assert result.problems == []


def test_certifi_in_zip(tmp_path: Path, certs: List[bytes]) -> None:
    app = tmp_path / "app.zip"
    with zipfile.ZipFile(app, "w") as zf:
        zf.writestr("certifi/__init__.py", "")
        zf.writestr("certifi/cacert.pem", certs[0] + b"junk\n" + certs[1])
    os.chmod(app, 0o644)
    empty = tmp_path / "empty"
    empty.mkdir()
    entries = [str(empty), str(app)]
    assert certifi_location(entries) == (str(app), "certifi/cacert.pem")
    result = probe("certifi", NO_ENV, path_entries=entries)
    assert result.material is not None
    assert result.material.form == "data"
    assert result.material.count == 2
    assert result.looked_at == [str(empty / "certifi/cacert.pem"), str(app)]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=result.material.cadata)
    assert ctx.cert_store_stats()["x509_ca"] == 2


def test_certifi_in_zip_subfolder(tmp_path: Path, certs: List[bytes]) -> None:
    app = tmp_path / "app.pyz"
    with zipfile.ZipFile(app, "w") as zf:
        zf.writestr("lib/certifi/__init__.pyc", b"")
        zf.writestr("lib/certifi/cacert.pem", certs[0])
    os.chmod(app, 0o644)
    assert certifi_location([str(app)]) is None
    assert certifi_location([str(app / "lib")]) == (str(app), "lib/certifi/cacert.pem")


def test_certifi_zip_without_certifi_and_non_zip_file(tmp_path: Path) -> None:
    app = tmp_path / "other.zip"
    with zipfile.ZipFile(app, "w") as zf:
        zf.writestr("other/__init__.py", "")
    os.chmod(app, 0o644)
    not_zip = write(tmp_path / "notzip.zip", b"hello")
    result = probe("certifi", NO_ENV, path_entries=[str(app), str(not_zip)])
    assert result.material is None
    assert result.looked_at == [str(app), str(not_zip)]
    assert any("certifi is not installed" in p for p in result.problems)


def test_certifi_unusable_bundle(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_certifi(site, b"")
    result = probe("certifi", NO_ENV, path_entries=[str(site)])
    assert result.material is None
    assert "holds no certificate" in result.problems[0]


def test_certifi_real_sys_path() -> None:
    # The test venv has certifi installed; default path_entries is sys.path.
    location = certifi_location(sys.path)
    if location is None:
        pytest.skip("certifi is not installed here")
    result = probe("certifi", NO_ENV)
    assert result.material is not None
    assert result.material.count > 50
    assert all(os.path.isabs(p) for p in result.looked_at)
    assert location[0] in result.looked_at


# --------------------------------------------------------------------------------------------
# openssl
# --------------------------------------------------------------------------------------------


def fake_verify_paths(cafile: Optional[str], capath: Optional[str]) -> Callable[[], Any]:
    def get() -> Any:
        return ssl.DefaultVerifyPaths(  # type: ignore[call-arg]
            cafile=None,
            capath=None,
            openssl_cafile_env="SSL_CERT_FILE",
            openssl_cafile=cafile,
            openssl_capath_env="SSL_CERT_DIR",
            openssl_capath=capath,
        )

    return get


def test_openssl_token(tmp_path: Path, certs: List[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = write(tmp_path / "usr/lib/ssl/cert.pem", certs[0])
    folder = hashed_folder(tmp_path / "usr/lib/ssl/certs", certs)
    monkeypatch.setattr(
        ssl, "get_default_verify_paths", fake_verify_paths(str(bundle), str(folder))
    )
    result = probe("openssl", {"SSL_CERT_FILE": "/ignored"})
    assert result.material == Material(cafile=str(bundle), capath=str(folder), count=1)
    assert result.looked_at == [str(bundle), str(folder)]

    # With a fake root, the compiled-in paths are prefixed.
    monkeypatch.setattr(
        ssl, "get_default_verify_paths", fake_verify_paths("/usr/lib/ssl/cert.pem", "/nope")
    )
    result = probe("openssl", NO_ENV, root=str(tmp_path))
    assert result.material == Material(cafile=str(bundle), count=1)
    assert result.looked_at == [str(bundle), rooted(tmp_path, "/nope")]


def test_openssl_token_nothing_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        ssl,
        "get_default_verify_paths",
        fake_verify_paths(str(tmp_path / "cert.pem"), str(tmp_path / "certs")),
    )
    result = probe("openssl", NO_ENV)
    assert result.material is None
    assert result.looked_at == [str(tmp_path / "cert.pem"), str(tmp_path / "certs")]


def test_openssl_token_raising_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> Any:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(ssl, "get_default_verify_paths", boom)
    result = probe("openssl", NO_ENV)
    assert result.material is None
    assert any("kaboom" in p for p in result.problems)


# --------------------------------------------------------------------------------------------
# native
# --------------------------------------------------------------------------------------------


def test_native_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    result = probe("native", NO_ENV, path_entries=[str(tmp_path)])
    assert result.material is None
    assert any("castore-hook[native]" in p or "3.10" in p for p in result.problems)


@pytest.mark.skipif(sys.version_info < (3, 10), reason="truststore needs 3.10")
def test_native_present(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.machinery
    import importlib.util

    origin = str(tmp_path / "truststore/__init__.py")
    spec = importlib.machinery.ModuleSpec("truststore", None, origin=origin)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec)
    result = probe("native", NO_ENV, path_entries=["/elsewhere", str(tmp_path), "/after"])
    assert result.material == Material(native=True)
    assert result.material.form == "native"
    assert result.looked_at == ["/elsewhere/truststore", str(tmp_path / "truststore"), origin]


# --------------------------------------------------------------------------------------------
# pem_certificates
# --------------------------------------------------------------------------------------------


def test_pem_certificates_good_and_corrupt(certs: List[bytes]) -> None:
    corrupt = certs[1].replace(b"\n", b"\n!", 3)  # invalid base64
    truncated = certs[2][: len(certs[2]) // 2] + b"\n-----END CERTIFICATE-----\n"
    found = pem_certificates(certs[0] + corrupt + truncated)
    assert found == [ssl.DER_cert_to_PEM_cert(der_of(certs[0]))]


def test_pem_certificates_normalises(certs: List[bytes]) -> None:
    crlf = certs[0].replace(b"\n", b"\r\n")
    found = pem_certificates(b"Bag Attributes\r\n" + crlf)
    assert len(found) == 1
    assert found[0].endswith("-----END CERTIFICATE-----\n")
    assert "\r" not in found[0]
    assert found[0] == pem_certificates(certs[0])[0]
    assert all(len(line) <= 64 for line in found[0].splitlines())


def test_pem_certificates_der_and_rubbish(certs: List[bytes], key_pem: bytes) -> None:
    der = der_of(certs[0])
    assert pem_certificates(der) == [ssl.DER_cert_to_PEM_cert(der)]
    assert pem_certificates(der + b"\x00") == []
    assert pem_certificates(der[:-1]) == []
    assert pem_certificates(b"") == []
    assert pem_certificates(key_pem) == []
    # A BEGIN without END does not swallow the next, good block.
    assert len(pem_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n" + certs[1])) == 1
    # A CRL is a signed SEQUENCE too, but not a certificate.
    crl = (
        b"\x30\x1c"  # CertificateList
        b"\x30\x14\x02\x01\x01\x30\x03\x06\x01\x00\x30\x00\x17\x0b"
        + b"0" * 11
        + b"\x30\x00\x03\x02\x00\x00"
    )
    assert pem_certificates(crl) == []


def test_fuzz_never_raises(tmp_path: Path) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    path = tmp_path / "fuzz.pem"

    @hypothesis.settings(max_examples=examples(200), deadline=None)
    @hypothesis.given(
        st.one_of(
            st.binary(max_size=300),
            st.builds(
                lambda body: (
                    b"-----BEGIN CERTIFICATE-----\n" + body + b"\n-----END CERTIFICATE-----\n"
                ),
                st.binary(max_size=200),
            ),
            st.builds(lambda b: b"\x30" + b, st.binary(max_size=50)),
        )
    )
    def check(data: bytes) -> None:
        assert isinstance(pem_certificates(data), list)
        path.write_bytes(data)
        os.chmod(path, 0o644)
        count, reason = check_ca_file(str(path))
        assert count > 0 or reason is not None
        result = probe(f"file:{path}", NO_ENV)
        assert isinstance(result, Probe)

    check()


def test_probe_never_raises_on_odd_tokens() -> None:
    for token in ("", "file:\x00", "dir:/\x00", "env ", "file:" + "/a" * 3000):
        result = probe(token, NO_ENV)
        assert result.material is None


def test_module_exports() -> None:
    assert set(sources.__all__) == {
        "Material",
        "Probe",
        "openssl_defaults",
        "probe",
    }
