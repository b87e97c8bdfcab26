"""Unit tests of ``tests/check_dist.py`` (nox's ``package`` session): each check fails on the
defect it exists for, so a green ``package`` session means something."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from tests import check_dist

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
INFO = "castore_hook-0.1.0.dist-info"
WHEEL = "castore_hook-0.1.0-py3-none-any.whl"


def metadata(version: str = "2.4", pythons: Optional[List[str]] = None, extra: str = "") -> bytes:
    lines = [
        f"Metadata-Version: {version}",
        "Name: castore-hook",
        "Version: 0.1.0",
        "Project-URL: Homepage, https://example.invalid/",
        "Project-URL: Documentation, https://example.invalid/docs",
        "Project-URL: Changelog, https://example.invalid/changes",
        "Project-URL: Issues, https://example.invalid/issues",
        "License-Expression: MIT",
        "License-File: LICENSE",
        "Classifier: Programming Language :: Python :: Implementation :: CPython",
        "Classifier: Typing :: Typed",
        *(f"Classifier: Programming Language :: Python :: {v}" for v in pythons or PYTHONS),
        "Requires-Python: >=3.9",
    ]
    return ("\n".join(lines) + "\n" + extra + "\n").encode()


def wheel_files(meta: Optional[bytes] = None) -> Dict[str, bytes]:
    root = check_dist.ROOT / "startup"
    return {
        "castore_hook.pth": (root / "castore_hook.pth").read_bytes(),
        "castore_hook.start": (root / "castore_hook.start").read_bytes(),
        "_castore_hook.py": b"",
        "_castore_hook_paths.py": b"",
        "castore_hook/__init__.py": b"",
        "castore_hook/py.typed": b"",
        "castore_hook/_version.py": b"__version__ = version = '0.1.0'\n",
        f"{INFO}/METADATA": meta if meta is not None else metadata(),
        f"{INFO}/licenses/LICENSE": b"MIT",
    }


def make_wheel(path: Path, files: Dict[str, bytes], unrecorded: tuple = ()) -> Path:
    rows = [
        f"{name},{check_dist._record_hash(data)},{len(data)}"
        for name, data in files.items()
        if name not in unrecorded
    ]
    rows.append(f"{INFO}/RECORD,,")
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{INFO}/RECORD", "\n".join(rows) + "\n")
    return path


def errors_of(path: Path) -> List[str]:
    errors: List[str] = []
    check_dist.check_wheel(path, PYTHONS, errors)
    return errors


def test_a_good_wheel_passes(tmp_path: Path) -> None:
    assert errors_of(make_wheel(tmp_path / WHEEL, wheel_files())) == []


def test_hook_file_missing_from_record(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / WHEEL, wheel_files(), unrecorded=("castore_hook.pth",))
    assert any("castore_hook.pth is not in RECORD" in e for e in errors_of(wheel))


def test_hook_file_below_the_root(tmp_path: Path) -> None:
    files = wheel_files()
    files["castore_hook/castore_hook.start"] = files.pop("castore_hook.start")
    errors = errors_of(make_wheel(tmp_path / WHEEL, files))
    assert any("castore_hook.start is not at the wheel root" in e for e in errors)
    assert any("below the root" in e for e in errors)


def test_wrong_record_hash(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / WHEEL, wheel_files())
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("extra.py", b"x")  # present, not recorded
    assert any("extra.py is missing from RECORD" in e for e in errors_of(wheel))


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (metadata(version="2.1"), "Metadata-Version 2.1 < 2.4"),
        (metadata(pythons=[*PYTHONS, "3.14"]), "Python classifiers"),
        (metadata(pythons=PYTHONS[1:]), "Python classifiers"),
        (metadata(extra="Classifier: License :: OSI Approved :: MIT License"), "PEP 639"),
        (metadata().replace(b"Project-URL: Issues", b"Project-URL: Bugs"), "Issues missing"),
        (metadata().replace(b"License-Expression: MIT\n", b""), "License-Expression"),
    ],
)
def test_metadata_defects(tmp_path: Path, meta: bytes, expected: str) -> None:
    errors = errors_of(make_wheel(tmp_path / WHEEL, wheel_files(meta)))
    assert any(expected in e for e in errors), errors


def test_version_not_derived_or_disagreeing(tmp_path: Path) -> None:
    files = wheel_files()
    del files["castore_hook/_version.py"]
    assert any("_version.py missing" in e for e in errors_of(make_wheel(tmp_path / WHEEL, files)))
    files["castore_hook/_version.py"] = b"__version__ = version = '0.2.0'\n"
    errors = errors_of(make_wheel(tmp_path / "castore_hook-0.1.0-py3-none-any.whl", files))
    assert any("_version.py does not say 0.1.0" in e for e in errors), errors
