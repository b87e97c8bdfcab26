"""``castore-hook doctor`` recognises every peer that also decides what Python trusts.

Each peer is installed as a *fake distribution* into a venv that has the built wheel: a
``.dist-info`` folder (METADATA and a RECORD listing its files, as pip writes them) plus, for
peers that hook start-up, its ``.pth`` file and a no-op module the ``.pth`` imports. The fake
does nothing at start-up; what is tested is that doctor names the peer, says what it does and
how it meets castore-hook, in which order site runs the two ``.pth`` files, and the fix — and
that removing the fake makes the finding go away (the negative control).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from tests.helpers import Venv, describe, hermetic_env, make_venv, run_python


@dataclasses.dataclass(frozen=True)
class Fake:
    dist: str  # distribution name as on PyPI
    version: str
    pth: Optional[Tuple[str, str]]  # (file name, import line)
    verdict: str
    words: Tuple[str, ...]  # words the finding must contain (what it does / interaction / fix)
    order: Optional[str] = None  # "before" / "after" castore_hook.pth


FAKES = [
    Fake(
        "pip-system-certs",
        "5.3",
        ("pip_system_certs.pth", "import pip_system_certs.bootstrap"),
        "fail",
        ("inject_into_ssl", "wins in-process", "pip uninstall pip-system-certs", "native"),
        "after",
    ),
    Fake(
        "auto-truststore",
        "0.1.0",
        ("auto_truststore.pth", "import auto_truststore"),
        "fail",
        ("inject_into_ssl", "wins in-process", "pip uninstall auto-truststore"),
        "before",
    ),
    Fake(
        "certifi-linux",
        "1.1.0",
        ("certifi_linux.pth", "import certifi_linux"),
        "fail",
        ("certifi.where()", "applied last wins", "pip uninstall certifi-linux"),
        "after",
    ),
    Fake(
        "python-certifi-win32",
        "1.6.1",
        ("python-certifi-win32-init.pth", "import certifi_win32_fake_init"),
        "fail",
        ("Windows CA and ROOT", "applied last wins", "pip uninstall python-certifi-win32"),
        "after",
    ),
    Fake(
        "certifi-system-store",
        "3023.7.0",
        None,
        "warn",
        ("replaces the certifi package", "empty cacert.pem", "--force-reinstall certifi"),
    ),
    Fake(
        "httpx-system-certs",
        "0.1.0",
        ("httpx_system_certs.pth", "import httpx_system_certs"),
        "warn",
        ("httpx", "for httpx only", "pip uninstall httpx-system-certs"),
        "after",
    ),
    Fake(
        "truststore",
        "0.10.5",
        None,
        "info",
        ("inject_into_ssl", "native", "harmless installed"),
    ),
]


def _record_row(root: Path, path: Path) -> str:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(root).as_posix()},sha256={digest},{len(data)}"


def install_fake(site: Path, fake: Fake) -> List[Path]:
    """Write *fake* into *site* as pip would have installed it; return what was written."""
    stem = fake.dist.replace("-", "_")
    info = site / f"{stem}-{fake.version}.dist-info"
    info.mkdir()
    written: List[Path] = [info]
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {fake.dist}\nVersion: {fake.version}\n"
        "Summary: a fake for castore-hook's tests\n"
    )
    (info / "INSTALLER").write_text("pip\n")
    files = [info / "METADATA", info / "INSTALLER"]
    if fake.pth:
        name, line = fake.pth
        module = line.split()[1].split(".")[0]
        package = site / module
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "bootstrap.py").write_text("")
        pth = site / name
        pth.write_text(line + "\n")
        written += [package, pth]
        files += [package / "__init__.py", package / "bootstrap.py", pth]
    rows = [_record_row(site, f) for f in files] + [f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return written


def remove(paths: List[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


@pytest.fixture(scope="module")
def peer_venv(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Venv:
    return make_venv(tmp_path_factory.mktemp("peers") / "venv", str(built_wheel))


@pytest.fixture
def env(tmp_path: Path) -> Dict[str, str]:
    return hermetic_env(tmp_path / "home")


def conflicts(venv: Venv, env: Dict[str, str]) -> List[Dict[str, Any]]:
    proc = run_python(venv, ["-m", "castore_hook", "doctor", "--json", "--no-timing"], env)
    assert proc.returncode in (0, 1), describe(proc)
    assert "Traceback" not in proc.stderr, describe(proc)
    data = json.loads(proc.stdout)
    return [c for c in data["checks"] if c["area"] == "conflicts"]


@pytest.fixture
def fake(request: pytest.FixtureRequest, peer_venv: Venv) -> Iterator[Fake]:
    spec: Fake = request.param
    written = install_fake(peer_venv.site_packages, spec)
    try:
        yield spec
    finally:
        remove(written)


def test_no_peer_no_finding(peer_venv: Venv, env: Dict[str, str]) -> None:
    found = conflicts(peer_venv, env)
    assert [c["verdict"] for c in found] == ["ok"], found
    assert found[0]["title"] == "no conflicting start-up hooks found"


@pytest.mark.parametrize("fake", FAKES, indirect=True, ids=[f.dist for f in FAKES])
def test_doctor_knows_peer(fake: Fake, peer_venv: Venv, env: Dict[str, str]) -> None:
    found = conflicts(peer_venv, env)
    mine = [c for c in found if c["title"].startswith(f"{fake.dist} {fake.version} ")]
    assert len(mine) == 1, found
    check = mine[0]
    assert check["verdict"] == fake.verdict, check
    text = " ".join([check["title"], *check["details"], check["fix"]])
    for word in fake.words:
        assert word in text, (word, check)
    assert any(d.startswith("what it does: ") for d in check["details"]), check
    assert any(d.startswith("with castore-hook: ") for d in check["details"]), check
    if fake.pth:
        name = fake.pth[0]
        order = [d for d in check["details"] if name in d]
        assert order == [
            f"site runs {name} {fake.order} castore_hook.pth (same folder, sorted by name)"
        ]
        # Its .pth is reported with the distribution, not a second time as an unknown file.
        assert not [c for c in found if c is not check and name in json.dumps(c)], found
    if fake.verdict in ("fail", "warn"):
        assert not any(c["title"] == "no conflicting start-up hooks found" for c in found)
    else:
        assert found[0]["title"] == "no conflicting start-up hooks found", found


def test_unowned_pth_with_peer_line_is_reported(peer_venv: Venv, env: Dict[str, str]) -> None:
    """A ``.pth`` no RECORD owns (copied by hand) with httpx-system-certs' line still shows."""
    pth = peer_venv.site_packages / "zz_copied.pth"
    module = peer_venv.site_packages / "httpx_system_certs.py"
    pth.write_text("import httpx_system_certs\n")
    module.write_text("")
    try:
        found = conflicts(peer_venv, env)
    finally:
        remove([pth, module])
    mine = [c for c in found if str(pth) in c["title"]]
    assert len(mine) == 1 and mine[0]["verdict"] == "warn", found
    assert mine[0]["details"] == ["import httpx_system_certs"]
