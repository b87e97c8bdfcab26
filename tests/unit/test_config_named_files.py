"""Unit tests of the whole-path rule for files castore-hook introduces (docs/architecture.md,
"Safe locations"; SECURITY.md, "Threat model"): a ``file:``/``dir:`` source, an ``extra`` root and a config
file are refused unless every step of their path is owned by root or this user and writable
by no one else (``_safefile.unsafe_location``, ``_castore_hook_paths.unsafe_path``). What stock
OpenSSL reads as it is (the user's ``SSL_CERT_FILE``/``SSL_CERT_DIR``, the OS store) is never
refused for its owner (docs/architecture.md, "Do no harm").

Runs as root in CI (to make files of another uid); the mode-only cases run as anyone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import _castore_hook_paths as paths
from castore_hook import _safefile, config, resolve, sources

trustme = pytest.importorskip("trustme")

ROOT = os.geteuid() == 0


def _pem() -> bytes:
    return bytes(trustme.CA().cert_pem.bytes())


@pytest.fixture
def team_folder(tmp_path: Path) -> Tuple[Path, Path]:
    """The attack of the issue: a root-owned 0644 CA file in a folder that a group can write
    (2775, setgid): any member may replace the file after the victim's start."""
    folder = tmp_path / "srv" / "teamca"
    folder.mkdir(parents=True)
    ca = folder / "ca.pem"
    ca.write_bytes(_pem())
    os.chmod(ca, 0o644)
    (folder / "0a1b2c3d.0").write_bytes(ca.read_bytes())
    os.chmod(folder, 0o2775)
    return folder, ca


def _config_problem(path: Path, tmp_path: Path) -> Optional[str]:
    env = {"HOME": str(tmp_path / "home"), "CASTORE_HOOK_CONFIG": str(path)}
    cfg = config.load_config(env)
    fatal = [p.message for p in cfg.problems if p.fatal]
    return fatal[0] if fatal else None


def _extra_problems(path: Path) -> List[str]:
    decision = resolve._Decision()
    blocks = resolve._read_extras((str(path),), decision)
    assert blocks == [] or not decision.problems
    return [message for _where, message in decision.problems]


def test_unsafe_location_is_the_hot_modules_rule_with_root_and_this_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: List[Tuple[str, Any]] = []

    def spy(path: str, owners: Any = None) -> Optional[str]:
        seen.append((path, owners))
        return None

    monkeypatch.setattr(paths, "unsafe_path", spy)
    assert _safefile.unsafe_location("/x/y") is None
    assert seen == [("/x/y", (0, os.getuid()))]


def test_every_reader_of_config_named_files_uses_the_one_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A location the helper calls unsafe is refused by each reader of a config-named file;
    the user's own variable and the OS store never ask it."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(_pem())
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "0a1b2c3d.0").write_bytes(ca.read_bytes())
    conf = tmp_path / "config.toml"
    conf.write_text("# empty\n")
    planted = {str(ca), str(folder), str(conf)}
    asked: List[str] = []

    def helper(path: str) -> Optional[str]:
        asked.append(path)
        return "planted by the test" if path in planted else None

    monkeypatch.setattr(_safefile, "unsafe_location", helper)
    result = sources.probe(f"file:{ca}", {})
    assert result.material is None and "planted by the test" in result.problems[0]
    result = sources.probe(f"dir:{folder}", {})
    assert result.material is None and "planted by the test" in result.problems[0]
    assert any("planted by the test" in p for p in _extra_problems(ca))
    assert "planted by the test" in (_config_problem(conf, tmp_path) or "")
    # Negative control: the same file as the user's SSL_CERT_FILE/SSL_CERT_DIR is used as is.
    asked.clear()
    env = {"SSL_CERT_FILE": str(ca), "SSL_CERT_DIR": str(folder)}
    result = sources.probe("env", env, root=str(tmp_path / "none"))
    assert result.material is not None and result.material.cafile == str(ca)
    assert result.material.capath == str(folder)
    assert asked == []


def test_group_writable_folder_refuses_what_config_names(
    tmp_path: Path, team_folder: Tuple[Path, Path]
) -> None:
    folder, ca = team_folder
    conf = folder / "config.toml"
    conf.write_text("# empty\n")
    os.chmod(conf, 0o644)
    for token in (f"file:{ca}", f"dir:{folder}"):
        result = sources.probe(token, {})
        assert result.material is None, token
        assert "writable by group or others" in result.problems[0], result.problems
    assert any("writable by group or others" in p for p in _extra_problems(ca))
    assert "writable by group or others" in (_config_problem(conf, tmp_path) or "")
    # ... but it is the user's own choice as SSL_CERT_FILE, and stock OpenSSL reads it.
    result = sources.probe("env", {"SSL_CERT_FILE": str(ca)}, root=str(tmp_path / "none"))
    assert result.material is not None and result.material.cafile == str(ca)
    # Negative control: the same files in a folder only its owner can write are accepted.
    os.chmod(folder, 0o755)
    assert sources.probe(f"file:{ca}", {}).material is not None
    assert sources.probe(f"dir:{folder}", {}).material is not None
    assert _extra_problems(ca) == []
    assert _config_problem(conf, tmp_path) is None


def test_links_are_followed_only_when_safe(tmp_path: Path) -> None:
    safe = tmp_path / "safe"
    safe.mkdir()
    (safe / "ca.pem").write_bytes(_pem())
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    (open_folder / "ca.pem").write_bytes(_pem())
    os.chmod(open_folder, 0o777)
    good = tmp_path / "good.pem"
    good.symlink_to(safe / "ca.pem")
    bad = tmp_path / "bad.pem"
    bad.symlink_to(open_folder / "ca.pem")
    assert sources.probe(f"file:{good}", {}).material is not None
    refused = sources.probe(f"file:{bad}", {})
    assert refused.material is None and "writable by group or others" in refused.problems[0]
    assert any("writable" in p for p in _extra_problems(bad))
    if ROOT:
        # A link another user owns may be re-pointed by them: refused although its target is safe.
        foreign = tmp_path / "foreign.pem"
        foreign.symlink_to(safe / "ca.pem")
        os.lchown(foreign, 65534, 65534)
        refused = sources.probe(f"file:{foreign}", {})
        assert refused.material is None and "owned by uid 65534" in refused.problems[0]


@pytest.mark.skipif(not ROOT, reason="needs root to give a file to another uid")
def test_file_owned_by_another_user_in_a_safe_folder(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(_pem())
    os.chown(ca, 65534, 65534)
    result = sources.probe(f"file:{ca}", {})
    assert result.material is None and "owned by uid 65534" in result.problems[0]
    # The user's variable naming it is used as stock uses it.
    env: Dict[str, str] = {"SSL_CERT_FILE": str(ca)}
    assert sources.probe("env", env, root=str(tmp_path / "none")).material is not None


def test_read_regular_file_missing_step_is_missing_not_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _safefile.read_regular_file(str(tmp_path / "no" / "such.pem"), 100)
    result = sources.probe(f"file:{tmp_path / 'no' / 'such.pem'}", {})
    assert result.problems == [f"file:{tmp_path / 'no' / 'such.pem'} points to a missing file"]


def test_doctor_names_the_unsafe_step(tmp_path: Path, team_folder: Tuple[Path, Path]) -> None:
    from castore_hook import doctor

    folder, ca = team_folder
    check = doctor._owner_check(str(ca), "extra file")
    assert check is not None and check.verdict == doctor.FAIL
    assert f"{folder} is writable by group or others" in check.title
    os.chmod(folder, 0o755)  # negative control
    check = doctor._owner_check(str(ca), "extra file")
    assert check is not None and check.verdict == doctor.OK


def test_a_refused_decision_watches_the_folders_on_the_way(
    tmp_path: Path, team_folder: Tuple[Path, Path]
) -> None:
    """Fixing the folder (chmod g-w) must make the next start decide again: a plan watches
    the stat signature of what decided it, and a refusal was decided by the folder."""
    from castore_hook._safefile import refusal_watch, stat_signature

    folder, ca = team_folder
    assert refusal_watch(str(ca))[-1] == str(folder)
    base = tmp_path / "decide"
    base.mkdir()
    conf = base / "config.toml"
    conf.write_text(f'sources = ["file:{ca}"]\nextra = ["{ca}"]\n')
    env = {"HOME": str(base), "CASTORE_HOOK_CONFIG": str(conf)}
    plan = resolve.build_plan(env, str(base / "cache"), False)
    assert plan["info"]["source"] is None
    stats = dict(plan["stats"])
    assert stats[str(folder)] == stat_signature(str(folder))
    os.chmod(folder, 0o755)
    assert stats[str(folder)] != stat_signature(str(folder))  # the cached plan no longer holds
    assert refusal_watch(str(ca)) == []  # negative control: an accepted file watches no folder
    plan = resolve.build_plan(env, str(base / "cache"), False)
    assert plan["info"]["source"] == f"file:{ca}"
    assert str(folder) not in dict(plan["stats"])
