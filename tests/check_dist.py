"""Check castore-hook's sdist and wheels: ``python tests/check_dist.py DIRECT VIA_SDIST``.

Run by nox's ``package`` session after ``python -m build``. ``DIRECT`` holds the sdist and the
wheel built straight from the checkout (``build --sdist --wheel``); ``VIA_SDIST`` the sdist and
the wheel built from that sdist (``build``'s default, what pip does with an sdist from an
index). A wheel that depends on how it was built would install a different hook, so:

* both wheels hold the same files with the same bytes;
* ``castore_hook.pth`` and ``castore_hook.start`` sit at the wheel root (so installers put
  them in site-packages, where ``site`` reads them), equal to ``startup/``, and RECORD lists
  them (so ``pip uninstall`` removes them) with the right hash and size; RECORD lists every
  other file too, each with a matching hash;
* the metadata is 2.4 (the first version where License-Expression is valid), names the
  project URLs, and claims exactly the Python versions CI tests (``--pythons``);
* the version is one and the same everywhere: the wheels' file names and dist-info folders,
  their METADATA, the ``castore_hook/_version.py`` the build wrote from git (what
  ``castore_hook.__version__`` reports), and each sdist's PKG-INFO (a wheel built from the
  sdist has no .git: setuptools-scm reads PKG-INFO);
* the sdist holds what building a wheel needs (pyproject.toml, LICENSE, startup/, src/).

Exits 1 listing every failed check. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import csv
import email
import hashlib
import io
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
HOOK_FILES = ("castore_hook.pth", "castore_hook.start")
URL_LABELS = ("Homepage", "Documentation", "Changelog", "Issues")
SDIST_MUST_HOLD = (
    "pyproject.toml",
    "LICENSE",
    "README.md",
    "CHANGELOG.md",
    "startup/castore_hook.pth",
    "startup/castore_hook.start",
    "src/_castore_hook.py",
    "src/_castore_hook_paths.py",
    "src/castore_hook/__init__.py",
    "src/castore_hook/py.typed",
    "src/castore_hook/_version.py",
    "PKG-INFO",
)


def _one(folder: Path, pattern: str, errors: List[str]) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        errors.append(f"{folder}: expected one {pattern}, found {[p.name for p in found]}")
        raise SystemExit(_report(errors))
    return found[0]


def _wheel_files(wheel: Path) -> Dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_wheel(wheel: Path, pythons: List[str], errors: List[str]) -> Dict[str, bytes]:
    files = _wheel_files(wheel)
    where = wheel.name
    dist_info = {name.split("/", 1)[0] for name in files if ".dist-info/" in name}
    if len(dist_info) != 1:
        errors.append(f"{where}: expected one .dist-info folder, found {sorted(dist_info)}")
        return files
    info = dist_info.pop()
    record_name = f"{info}/RECORD"
    rows = list(csv.reader(io.StringIO(files.get(record_name, b"").decode("utf-8"))))
    record = {row[0]: row for row in rows if row}
    for name in HOOK_FILES:
        source = (ROOT / "startup" / name).read_bytes()
        if name not in files:
            errors.append(f"{where}: {name} is not at the wheel root")
            continue
        if files[name] != source:
            errors.append(f"{where}: {name} differs from startup/{name}")
        if name not in record:
            errors.append(f"{where}: {name} is not in RECORD (pip uninstall would leave it)")
    nested = [n for n in files if n.endswith(HOOK_FILES) and "/" in n]
    if nested:
        errors.append(f"{where}: hook files below the root, never read by site: {nested}")
    for name, data in files.items():
        if name == record_name:
            continue
        row = record.get(name)
        if row is None:
            errors.append(f"{where}: {name} is missing from RECORD")
        elif row[1:] != [_record_hash(data), str(len(data))]:
            errors.append(f"{where}: RECORD row of {name} does not match: {row[1:]}")
    for name in record:
        if name not in files:
            errors.append(f"{where}: RECORD lists {name}, absent from the wheel")
    for name in (
        "_castore_hook.py",
        "_castore_hook_paths.py",
        "castore_hook/__init__.py",
        "castore_hook/py.typed",
    ):
        if name not in files:
            errors.append(f"{where}: {name} missing")
    check_metadata(where, files.get(f"{info}/METADATA", b""), pythons, errors)
    check_version(wheel, files, info, errors)
    if f"{info}/licenses/LICENSE" not in files:
        errors.append(f"{where}: {info}/licenses/LICENSE missing (PEP 639)")
    return files


def metadata_version(raw: bytes) -> str:
    """The ``Version`` field of METADATA or PKG-INFO."""
    return str(email.message_from_bytes(raw).get("Version", ""))


def check_version(wheel: Path, files: Dict[str, bytes], info: str, errors: List[str]) -> None:
    """The wheel's file name, dist-info folder, METADATA and ``castore_hook/_version.py``
    name one version, and it was derived (not the ``0+unknown`` of a tree never built)."""
    version = metadata_version(files.get(f"{info}/METADATA", b""))
    where = wheel.name
    if not version or version.startswith("0+unknown"):
        errors.append(f"{where}: no version derived from git (METADATA Version {version!r})")
    if wheel.name.split("-")[1:2] != [version] or info != f"castore_hook-{version}.dist-info":
        errors.append(f"{where}: file name or {info} does not match METADATA Version {version}")
    source = files.get("castore_hook/_version.py")
    if source is None:
        errors.append(f"{where}: castore_hook/_version.py missing (__version__ is 0+unknown)")
    elif f"__version__ = version = {version!r}" not in source.decode("utf-8", "replace"):
        errors.append(f"{where}: castore_hook/_version.py does not say {version}")


def check_metadata(where: str, raw: bytes, pythons: List[str], errors: List[str]) -> None:
    meta = email.message_from_bytes(raw)
    version = tuple(int(x) for x in str(meta.get("Metadata-Version", "0")).split("."))
    if version < (2, 4):
        errors.append(f"{where}: Metadata-Version {meta.get('Metadata-Version')} < 2.4")
    if meta.get("License-Expression") != "MIT":
        errors.append(f"{where}: License-Expression is {meta.get('License-Expression')!r}")
    if "LICENSE" not in (meta.get_all("License-File") or []):
        errors.append(f"{where}: License-File: LICENSE missing")
    labels = {str(u).split(",", 1)[0].strip() for u in meta.get_all("Project-URL") or []}
    for label in URL_LABELS:
        if label not in labels:
            errors.append(f"{where}: Project-URL {label} missing (have {sorted(labels)})")
    classifiers = [str(c) for c in meta.get_all("Classifier") or []]
    claimed = sorted(
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if c.startswith("Programming Language :: Python :: 3.")
    )
    if claimed != sorted(pythons):
        errors.append(f"{where}: Python classifiers {claimed} != versions CI tests {pythons}")
    for needed in (
        "Programming Language :: Python :: Implementation :: CPython",
        "Typing :: Typed",
    ):
        if needed not in classifiers:
            errors.append(f"{where}: classifier {needed!r} missing")
    if any(c.startswith("License ::") for c in classifiers):
        errors.append(f"{where}: a License :: classifier next to License-Expression (PEP 639)")
    if meta.get("Requires-Python") != f">={pythons[0]}":
        errors.append(f"{where}: Requires-Python is {meta.get('Requires-Python')!r}")


def check_sdist(sdist: Path, pythons: List[str], errors: List[str]) -> List[str]:
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1]: m for m in archive.getmembers() if "/" in m.name}
        for name in SDIST_MUST_HOLD:
            if name not in members:
                errors.append(f"{sdist.name}: {name} missing")
        pkg_info = archive.extractfile(members["PKG-INFO"]) if "PKG-INFO" in members else None
        if pkg_info is not None:
            raw = pkg_info.read()
            check_metadata(sdist.name, raw, pythons, errors)
            version = metadata_version(raw)
            if sdist.name != f"castore_hook-{version}.tar.gz":
                errors.append(f"{sdist.name}: PKG-INFO says version {version}")
    return sorted(members)


def _report(errors: List[str]) -> int:
    for line in errors:
        sys.stderr.write(f"FAIL {line}\n")
    return 1 if errors else 0


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("direct", type=Path, help="sdist + wheel built from the checkout")
    parser.add_argument("via_sdist", type=Path, help="sdist + wheel built from that sdist")
    parser.add_argument("--pythons", required=True, help="comma-separated, e.g. 3.9,3.10")
    args = parser.parse_args(argv)
    pythons = args.pythons.split(",")
    errors: List[str] = []
    direct = check_wheel(_one(args.direct, "*.whl", errors), pythons, errors)
    via = check_wheel(_one(args.via_sdist, "*.whl", errors), pythons, errors)
    if sorted(direct) != sorted(via):
        only_direct = sorted(set(direct) - set(via))
        only_via = sorted(set(via) - set(direct))
        errors.append(
            f"the wheel from the sdist holds other files: only direct {only_direct}, "
            f"only via sdist {only_via}"
        )
    for name in sorted(set(direct) & set(via)):
        if direct[name] != via[name]:
            errors.append(f"{name} differs between the direct wheel and the one from the sdist")
    sdists = [
        check_sdist(_one(folder, "*.tar.gz", errors), pythons, errors)
        for folder in (args.direct, args.via_sdist)
    ]
    if sdists[0] != sdists[1]:
        errors.append("the two sdists hold different files")
    names = {p.name.split("-")[1] for f in (args.direct, args.via_sdist) for p in f.glob("*.whl")}
    names |= {
        p.name[len("castore_hook-") : -len(".tar.gz")]
        for f in (args.direct, args.via_sdist)
        for p in f.glob("*.tar.gz")
    }
    if len(names) != 1:
        errors.append(f"the sdists and wheels carry different versions: {sorted(names)}")
    if not errors:
        sys.stdout.write(
            f"ok: version {names.pop()} in both wheels and sdists; wheel of {len(direct)} "
            "files identical built directly and from the sdist; "
            f"hook files at the root and in RECORD; metadata 2.4; sdist of {len(sdists[0])} "
            "files\n"
        )
    return _report(errors)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
