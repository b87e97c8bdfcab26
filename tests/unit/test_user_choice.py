"""Unit tests of docs/architecture.md's "Do no harm" contract: what the user chose is never overruled (1), never
less than stock (2), appends to the hook's bundle are kept once (7).

Plans are decided by ``resolve.build_plan`` with OpenSSL's compiled-in defaults pointed at a
fake root (``fake_openssl``: default file S, default folder S2); in-process trust is checked
with real in-memory handshakes, and the ``load_default_certs`` wrapper with the real ``ssl``.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any, Dict

import pytest
from tests.unit.test_do_no_harm import (
    bundle_ders,
    decide,
    ders,
    empty_config,
    in_process,
    reaches,
)
from tests.unit.test_inprocess import Site, rehashed_folder

from castore_hook import _inprocess, _slowpath, bundle, certset, pem, sources

pytestmark = pytest.mark.usefixtures("stock_ssl")

ROOT = os.geteuid() == 0


@pytest.fixture
def site_a(tmp_path: Path) -> Site:
    return Site(tmp_path, "a")


@pytest.fixture
def site_b(tmp_path: Path) -> Site:
    return Site(tmp_path, "b")


@pytest.fixture
def defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dict[str, Site]:
    """OpenSSL's compiled-in defaults pointed at a fake root: default file holds S, folder S2
    (as test_do_no_harm's ``fake_openssl``)."""
    s = Site(tmp_path, "s")
    s2 = Site(tmp_path, "s2")
    root = tmp_path / "root"
    (root / "ssl").mkdir(parents=True)
    shutil.copyfile(s.pem, root / "ssl" / "cert.pem")
    rehashed_folder(root / "ssl" / "certs", s2)
    paths = (str(root / "ssl" / "cert.pem"), str(root / "ssl" / "certs"))
    monkeypatch.setattr(sources, "openssl_defaults", lambda root="": paths)
    return {"s": s, "s2": s2}


def aside(plan: Dict[str, Any]) -> Dict[str, str]:
    return {mechanism: reason for mechanism, reason in plan["info"]["stepped_aside"]}


def hooked_default_context(plan: Dict[str, Any]) -> ssl.SSLContext:
    """``ssl.create_default_context()`` with the plan's in-process trust installed, in the
    environment the test set (the wrapper reads ``os.environ``)."""
    assert _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust(plan["trust"]))
    return ssl.create_default_context()


# --------------------------------------------------------------------------------------------
# 1. the user's variables: used as OpenSSL uses them, never rewritten or removed
# --------------------------------------------------------------------------------------------


def test_users_file_of_another_owner_and_mode_0664_is_the_trust(
    tmp_path: Path, site_a: Site, site_b: Site, defaults: Dict[str, Site]
) -> None:
    os.chmod(site_a.pem, 0o664)
    if ROOT:
        os.chown(site_a.pem, 65534, 65534)
    plan = decide(tmp_path, {"SSL_CERT_FILE": str(site_a.pem)}, sources=["env", "system"])
    assert plan["info"]["source"] == "env"
    assert dict(plan["set"]).get("SSL_CERT_FILE", str(site_a.pem)) == str(site_a.pem)
    assert plan["unset"] == ()
    assert reaches(in_process(plan), site_a, defaults["s2"], defaults["s"]) == [
        True,
        True,
        False,
    ]
    # With extras, the hook's bundle (A, S2 and B) may stand in for it: it read A whole.
    plan = decide(
        tmp_path, {"SSL_CERT_FILE": str(site_a.pem)}, sources=["env"], extra=[str(site_b.pem)]
    )
    exported = dict(plan["set"])["SSL_CERT_FILE"]
    assert bundle_ders(exported) == ders(site_a, defaults["s2"], site_b)
    # Negative control: the same file named in config is refused (mode 0664).
    plan = decide(tmp_path, {}, sources=[f"file:{site_a.pem}"])
    assert plan["info"]["source"] is None


def test_users_folder_0775_is_kept_as_it_is(
    tmp_path: Path, site_a: Site, defaults: Dict[str, Site]
) -> None:
    folder = rehashed_folder(tmp_path / "dir-a", site_a)
    os.chmod(folder, 0o775)
    plan = decide(tmp_path, {"SSL_CERT_DIR": str(folder)}, sources=["env", "system"])
    assert plan["info"]["source"] == "env"
    assert dict(plan["set"]) == {} and plan["unset"] == ()
    assert reaches(in_process(plan), site_a, defaults["s"]) == [True, True]
    plan = decide(tmp_path, {}, sources=[f"dir:{folder}"])
    assert plan["info"]["source"] is None  # negative control: refused when config names it


@pytest.mark.parametrize("flavour", ["TRUSTED", "X509"])
def test_other_pem_flavours_are_the_users_trust(
    tmp_path: Path, site_a: Site, site_b: Site, defaults: Dict[str, Site], flavour: str
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed")
    flavoured = tmp_path / f"{flavour}.pem"
    if flavour == "TRUSTED":
        argv = [openssl, "x509", "-in", str(site_a.pem), "-trustout", "-addtrust", "serverAuth"]
        subprocess.run(
            [*argv, "-out", str(flavoured)],
            check=True,
            capture_output=True,
        )
    else:
        flavoured.write_text(site_a.text.replace("CERTIFICATE-----", "X509 CERTIFICATE-----"))
    assert f"BEGIN {flavour} CERTIFICATE" in flavoured.read_text()
    env = {"SSL_CERT_FILE": str(flavoured)}
    plan = decide(tmp_path, env, sources=["env", "system"], extra=[str(site_b.pem)])
    assert plan["info"]["source"] == "env"
    assert plan["unset"] == ()
    assert reaches(in_process(plan), site_a, site_b) == [True, True]
    exported = dict(plan["set"]).get("SSL_CERT_FILE")
    if flavour == "X509":  # the same certificate under its old name: a bundle carries it
        assert bundle_ders(exported) == ders(site_a, defaults["s2"], site_b)
    else:  # trust settings a plain bundle cannot carry: the user's file stays, said why
        assert exported is None
        # certifi's own file stands in, loaded in-process as the user's trust and the extras
        # (docs/architecture.md, "Where nothing can be written").
        assert plan["trust"]["certifi_stand_in"] is True
        assert "certifi's own roots only" in aside(plan)["certifi"]
        assert "TRUSTED CERTIFICATE" in aside(plan)["certifi"] or any(
            "TRUSTED CERTIFICATE" in message for _w, message in plan["info"]["problems"]
        )


@pytest.mark.parametrize("dead", ["/dev/null", "missing"])
def test_dead_file_beside_a_folder_means_only_that_folder(
    tmp_path: Path, site_a: Site, site_b: Site, defaults: Dict[str, Site], dead: str
) -> None:
    value = dead if dead.startswith("/") else str(tmp_path / "gone.pem")
    folder = rehashed_folder(tmp_path / "dir-b", site_b)
    env = {"SSL_CERT_FILE": value, "SSL_CERT_DIR": str(folder)}
    plan = decide(tmp_path, env, sources=["env", "system"])
    assert plan["unset"] == () and dict(plan["set"]) == {}
    # Stock OpenSSL: B only (the dead file replaces the default file S).
    assert reaches(in_process(plan), site_b, defaults["s"], site_a) == [True, False, False]
    assert (value, str(folder)) in plan["trust"]["default_env"]
    problems = [m for _w, m in plan["info"]["problems"]]
    assert any(value in m and "leaves it as it is" in m and "Fix:" in m for m in problems)


def test_missing_file_alone_is_openssls_default_folder_only(
    tmp_path: Path, defaults: Dict[str, Site]
) -> None:
    env = {"SSL_CERT_FILE": str(tmp_path / "gone.pem")}
    plan = decide(tmp_path, env, sources=["env", "system"])
    assert plan["info"]["source"] == "env" and plan["unset"] == () and dict(plan["set"]) == {}
    assert reaches(in_process(plan), defaults["s2"], defaults["s"]) == [True, False]


def test_relative_file_leaves_both_variables_and_the_wrapper_stock(
    tmp_path: Path, site_a: Site, site_b: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plan = decide(tmp_path, {"SSL_CERT_FILE": "a.pem"}, sources=["env", f"file:{site_b.pem}"])
    assert plan["info"]["source"] == f"file:{site_b.pem}"
    assert not {"SSL_CERT_FILE", "SSL_CERT_DIR"} & dict(plan["set"]).keys()
    assert plan["unset"] == () and plan["trust"]["default_env"] == ()
    assert "SSL_CERT_FILE=a.pem" in aside(plan)["variable"]
    monkeypatch.setenv("SSL_CERT_FILE", "a.pem")
    ctx = hooked_default_context(plan)
    assert reaches(ctx, site_a, site_b) == [
        True,
        False,
    ]  # stock: the relative file, from this folder
    # Negative control: without the user's variable the plan's wrapper loads B.
    _inprocess.undo_all()
    monkeypatch.delenv("SSL_CERT_FILE")
    plan = decide(tmp_path, {}, sources=["env", f"file:{site_b.pem}"])
    assert dict(plan["set"])["SSL_CERT_FILE"] == str(site_b.pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(site_b.pem))  # what applying the plan does
    assert reaches(hooked_default_context(plan), site_a, site_b) == [False, True]


def test_sources_without_env_never_overrule_the_users_variable(
    tmp_path: Path, site_a: Site, site_b: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = decide(tmp_path, {"SSL_CERT_FILE": str(site_a.pem)}, sources=[f"file:{site_b.pem}"])
    assert not {"SSL_CERT_FILE", "SSL_CERT_DIR"} & dict(plan["set"]).keys()
    assert plan["trust"]["default_env"] == ()
    monkeypatch.setenv("SSL_CERT_FILE", str(site_a.pem))
    assert reaches(hooked_default_context(plan), site_a, site_b) == [True, False]
    # certifi is not governed by SSL_CERT_FILE: it still gets the chosen trust.
    assert bundle_ders(plan["trust"]["certifi_file"]) == ders(site_b)


# --------------------------------------------------------------------------------------------
# 7. appends to the hook's bundle are kept, once
# --------------------------------------------------------------------------------------------


def test_write_bundle_keeps_only_certificates_appended_after_its_content(
    tmp_path: Path, site_a: Site, site_b: Site
) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    path, appended = bundle.write_bundle_keeping(str(folder), site_a.text)
    assert appended == []
    with open(path, "a", encoding="ascii") as handle:
        handle.write("\n# corporate root\n" + site_b.text)
    assert bundle.write_bundle_keeping(str(folder), site_a.text) == (path, list(ders(site_b)))
    assert Path(path).read_text().endswith(site_b.text)
    # Anything else than whole certificates after the unchanged content is replaced.
    for tail in ("garbage\n", site_b.text[:200], "\n"):
        Path(path).write_text(site_a.text + tail)
        os.chmod(path, 0o644)
        assert bundle.write_bundle_keeping(str(folder), site_a.text) == (path, [])
        assert Path(path).read_text() == site_a.text
    Path(path).write_text(site_b.text + site_a.text)  # the prefix changed
    assert bundle.write_bundle_keeping(str(folder), site_a.text) == (path, [])
    assert Path(path).read_text() == site_a.text
    Path(path).write_text(site_a.text + site_b.text)
    os.chmod(path, 0o666)  # writable by others: not ours to keep
    assert bundle.write_bundle_keeping(str(folder), site_a.text) == (path, [])


def test_appended_roots_are_kept_reported_and_signed_once(
    tmp_path: Path, site_a: Site, site_b: Site
) -> None:
    base = tmp_path / "env"
    folder = tmp_path / "cache"
    env = {
        "HOME": str(base),
        "XDG_CONFIG_HOME": str(base / "c"),
        "XDG_CONFIG_DIRS": str(base / "x"),
        "CASTORE_HOOK_SOURCES": f"file:{site_a.pem}",
        "CASTORE_HOOK_CONFIG": str(empty_config(tmp_path)),
    }
    plan, _note = _slowpath.resolve_and_store(env, str(folder), str(folder / "plan"), False)
    where = plan["trust"]["certifi_file"]
    assert plan["info"]["appended"] == ()
    with open(where, "a", encoding="ascii") as handle:  # what a start-up script does
        handle.write(site_b.text)
    plan, _note = _slowpath.resolve_and_store(
        env, str(folder), str(folder / "plan"), False, "changed: " + where
    )
    assert plan["trust"]["certifi_file"] == where
    assert set(certset.of_file(where)) == ders(site_a, site_b)
    assert plan["info"]["appended"] == ((where, 1),)
    messages = [m for _w, m in plan["info"]["problems"]]
    assert any(
        m.startswith(
            "1 certificate was appended to certifi.where() by this environment; put them in `extra`"
        )
        for m in messages
    ), messages
    assert not any("not kept" in m for m in messages)
    assert [m for m, _r in plan["info"]["stepped_aside"]] == ["bundle"]
    stats = dict(plan["stats"])
    own = dict(plan["trust"]["own_files"])
    assert stats[where] == own[where] == _signature(where)
    # The next decision signs the same file again: nothing changes, so the start after is a hit.
    again, _note = _slowpath.resolve_and_store(env, str(folder), str(folder / "plan"), False)
    assert dict(again["stats"])[where] == stats[where]
    # Negative control: a change that is not an append is replaced and said so.
    Path(where).write_text(site_b.text)
    changed, _note = _slowpath.resolve_and_store(
        env, str(folder), str(folder / "plan"), False, "changed: " + where
    )
    assert set(certset.of_file(where)) == ders(site_a)
    assert any("not kept" in m for _w, m in changed["info"]["problems"])


def _signature(path: str) -> Any:
    from castore_hook._safefile import stat_signature

    return stat_signature(path)


def test_pem_recognises_the_flavours_openssl_loads(site_a: Site) -> None:
    old = site_a.text.replace("CERTIFICATE-----", "X509 CERTIFICATE-----").encode()
    assert pem.der_certificates(old) == [ssl.PEM_cert_to_DER_cert(site_a.text)]
    assert pem.trusted_certificates(old) == (0, 0)
    trusted = site_a.text.replace("CERTIFICATE-----", "TRUSTED CERTIFICATE-----").encode()
    assert pem.trusted_certificates(trusted) == (1, 0)
    assert pem.der_certificates(trusted) == []
    broken = trusted.replace(b"\n", b"\nZZ", 3)
    assert pem.trusted_certificates(broken)[1] == 1
    assert sources.probe("env", {"SSL_CERT_FILE": "/nonexistent"}).unusable_env == ["SSL_CERT_FILE"]
