"""Housekeeping of ``refresh --shared``: the bundles only earlier shared plans
used are removed, never anything else and never through a symlink; an earlier release's
``castore_hook/shared/`` is removed and reported by ``doctor``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List

import pytest
from tests.helpers import hermetic_env, make_ca, write_ca_pem

import _castore_hook as hot
import castore_hook
from castore_hook import _plancache, _sharedtidy, _slowpath, cli, doctor


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site-packages in ``tmp_path`` holding the hot module and the package (both only
    as ``__file__``), with os.environ built from scratch: certifi as the source, one
    ``extra`` root (so the shared plan needs a merged bundle)."""
    packages = tmp_path / "site-packages"
    (packages / "castore_hook").mkdir(parents=True)
    monkeypatch.setattr(hot, "__file__", str(packages / "_castore_hook.py"))
    monkeypatch.setattr(castore_hook, "__file__", str(packages / "castore_hook" / "__init__.py"))
    env = hermetic_env(tmp_path / "world", CASTORE_HOOK_SOURCES="certifi")
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _extra(tmp_path, monkeypatch, "first")
    return packages


def _extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """A new private root as the only ``extra``: the next refresh names a new bundle."""
    path = write_ca_pem(make_ca(), tmp_path / f"{name}.pem")
    monkeypatch.setenv("CASTORE_HOOK_EXTRA", str(path))
    return path


def _bundles(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("bundle-"))


def _refresh(capsys: pytest.CaptureFixture[str]) -> Dict[str, object]:
    code = cli.main(["refresh", "--shared", "--json"])
    report: Dict[str, object] = json.loads(capsys.readouterr().out)
    report["exit"] = code
    return report


def _shared(site: Path) -> Path:
    return site / "castore-hook-shared"


def test_refresh_shared_removes_only_the_bundles_no_plan_names(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _refresh(capsys)
    assert first["exit"] == 0 and first["removed"] == [], first
    shared = _shared(site)
    [old] = _bundles(shared)
    plan_file = Path(str(first["cache_file"]))
    plan_inode = plan_file.stat().st_ino

    # Another interpreter's plan in the same folder (python -E, another prefix) keeps its
    # bundle; a foreign file, a symlink named like a bundle and its target are not touched.
    _extra(tmp_path, monkeypatch, "other")
    other, _path, note = _slowpath.store_shared(dict(os.environ), False)
    assert other is not None and note == ""
    other_file = shared / "plan-other-interpreter.marshal"
    assert _plancache.store_plan(str(shared), str(other_file), other, shared=True) == ""
    kept_for_other = other["info"]["bundle"]
    assert os.path.basename(kept_for_other) not in (old,)
    outside = tmp_path / "outside.pem"
    outside.write_text("not ours")
    (shared / "bundle-link.pem").symlink_to(outside)
    (shared / "notes.txt").write_text("the operator's")

    _extra(tmp_path, monkeypatch, "second")
    second = _refresh(capsys)
    new_bundle = Path(str(second["cache_file"])).parent / _bundles(shared)[0]
    assert str(shared / old) in second["removed"]  # type: ignore[operator]
    remaining = _bundles(shared)
    assert old not in remaining
    assert os.path.basename(kept_for_other) in remaining
    assert "bundle-link.pem" in remaining and outside.read_text() == "not ours"
    assert (shared / "notes.txt").read_text() == "the operator's"
    assert new_bundle.exists()
    # The symlink is reported (exit 1), never followed.
    problems = second["problems"]
    assert any(
        p["where"] == str(shared / "bundle-link.pem")  # type: ignore[index]
        and "not a regular file" in p["message"]  # type: ignore[index]
        for p in problems  # type: ignore[union-attr]
    ), problems
    assert second["exit"] == 1
    # The plan file was replaced (a new inode: atomic), its sidecar too.
    assert plan_file.stat().st_ino != plan_inode
    assert Path(str(plan_file) + _plancache.INFO_SUFFIX).exists()
    # Every bundle still there is named by a plan in the folder, or is not ours to judge.
    plan, _reason = hot.read_plan(str(plan_file))
    assert plan is not None
    named = _sharedtidy.bundles_named(str(shared), plan)
    assert {p.name for p in shared.glob("bundle-*.pem") if not p.is_symlink()} == named | {
        os.path.basename(kept_for_other)
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_prune_leaves_another_users_bundle(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _refresh(capsys)["exit"] == 0
    shared = _shared(site)
    foreign = shared / "bundle-0000000000000000-1.pem"
    foreign.write_text("x")
    os.chown(foreign, 65534, 65534)
    tidy = _sharedtidy.prune_bundles(str(shared))
    assert tidy.removed == [] and foreign.exists()
    assert tidy.left == [(str(foreign), "owned by uid 65534, not this user; left alone")]


def test_prune_refuses_a_symlinked_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "bundle-1.pem").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(real)
    tidy = _sharedtidy.prune_bundles(str(link))
    assert tidy.removed == [] and (real / "bundle-1.pem").exists()
    assert tidy.left and tidy.left[0][0] == str(link)


def _legacy(site: Path) -> Path:
    """What a release before castore-hook-shared/ left: castore_hook/shared/ with a plan,
    its sidecar, a bundle and a killed writer's temporary."""
    folder = site / "castore_hook" / "shared"
    folder.mkdir(mode=0o755)
    for name in (
        "plan-cpython-311-%2Fsrv%2Fapp.marshal",
        "plan-cpython-311-%2Fsrv%2Fapp.marshal.info",
        "bundle-0123456789abcdef-42.pem",
        ".bundle-0123456789abcdef-42.pem.tmp-1-2",
    ):
        (folder / name).write_bytes(b"old")
    return folder


def test_refresh_shared_removes_an_earlier_releases_shared_plan(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = _legacy(site)
    assert _sharedtidy.legacy_dir() == str(legacy)
    [check] = doctor.check_legacy_shared(doctor.make_context(timing=False))
    assert check.verdict == doctor.WARN and str(legacy) in check.title
    assert "namespace package" in " ".join(check.details)
    assert "castore-hook refresh --shared" in check.fix

    report = _refresh(capsys)
    assert report["exit"] == 0, report
    assert str(legacy) in report["removed"]  # type: ignore[operator]
    assert not legacy.exists() and (site / "castore_hook").is_dir()
    assert doctor.check_legacy_shared(doctor.make_context(timing=False)) == []
    # The new shared plan is where start-up reads it.
    assert Path(str(report["cache_file"])).parent == _shared(site)


def test_legacy_folder_with_other_files_is_reported_not_emptied(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = _legacy(site)
    (legacy / "README").write_text("someone's")
    link_target = site / "elsewhere.pem"
    link_target.write_text("keep")
    (legacy / "bundle-ffffffffffffffff-1.pem").symlink_to(link_target)
    code = cli.main(["refresh", "--shared"])
    out = capsys.readouterr().out
    assert code == 1
    assert legacy.is_dir() and (legacy / "README").exists() and link_target.exists()
    assert not (legacy / "bundle-0123456789abcdef-42.pem").exists()
    assert "not a file castore-hook wrote" in out and "remove it by hand" in out


def test_legacy_symlink_is_not_followed(site: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "plan-x.marshal").write_text("x")
    (site / "castore_hook" / "shared").symlink_to(target)
    tidy = _sharedtidy.remove_legacy()
    assert tidy.removed == [] and (target / "plan-x.marshal").exists()
    assert tidy.left and "not a folder castore-hook can open" in tidy.left[0][1]
