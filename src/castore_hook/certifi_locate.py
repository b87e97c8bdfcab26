"""Finding certifi's ``cacert.pem`` the way ``import certifi`` would, without importing it.

One job: walk ``sys.path`` entries (folders and zip files) and say where the bundle is, with
every path looked at (so the plan notices when certifi is installed or removed). Importing
certifi pulls in ``importlib.resources`` (~35 ms); its location is all the slow path needs.
"""

from __future__ import annotations

import io
import os
import stat
from typing import List, Optional, Sequence, Tuple

from castore_hook import cafiles
from castore_hook._record import Record
from castore_hook._safefile import UnsafeFile, read_regular_file

#: Largest zip file on ``sys.path`` we read to find a zipped certifi. Zipped applications and
#: embedded stdlib zips are a few MB; this only guards against reading something absurd.
ZIP_LIMIT = 256 << 20


class CertifiFind(Record):
    __slots__ = ("location", "looked_at", "trail", "zip_data")

    def __init__(self) -> None:
        self.location: Optional[Tuple[str, Optional[str]]] = None
        self.zip_data: Optional[bytes] = None
        self.looked_at: List[str] = []
        self.trail: List[str] = []


def _zip_base(entry: str) -> Optional[Tuple[str, str]]:
    """For a ``sys.path`` entry inside a zip (``/app.zip`` or ``/app.zip/lib``): zip, prefix."""
    inner: List[str] = []
    path = entry
    while True:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            parent, tail = os.path.split(path)
            if not tail or parent == path:
                return None
            inner.insert(0, tail)
            path = parent
            continue
        if stat.S_ISREG(st.st_mode):
            return path, "".join(part + "/" for part in inner)
        return None


def find_certifi(path_entries: Sequence[str]) -> CertifiFind:
    """Walk the entries like the import system would, recording every path we looked at."""
    found = CertifiFind()
    for raw in path_entries:
        if not isinstance(raw, str):
            continue
        entry = os.path.abspath(raw or os.curdir)
        if os.path.isdir(entry):
            pem = os.path.join(entry, "certifi", "cacert.pem")
            found.looked_at.append(pem)
            if not os.path.exists(pem):
                continue
            inits = [os.path.join(entry, "certifi", n) for n in ("__init__.py", "__init__.pyc")]
            init = next((p for p in inits if os.path.isfile(p)), None)
            found.looked_at.append(init or inits[0])
            if init is None:
                found.trail.append(f"certifi: {pem} exists but certifi/__init__.py does not")
                continue
            found.location = (pem, None)
            return found
        zipped = _zip_base(entry)
        if zipped is None:
            found.looked_at.append(entry)
            continue
        zip_path, prefix = zipped
        found.looked_at.append(zip_path)
        try:
            import zipfile

            data = read_regular_file(zip_path, ZIP_LIMIT)
            if not zipfile.is_zipfile(io.BytesIO(data)):
                continue
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except UnsafeFile as exc:
            found.trail.append(f"certifi: {cafiles.refusal(zip_path, str(exc))}")
            continue
        except Exception as exc:
            found.trail.append(f"certifi: {zip_path}: unreadable zip ({exc})")
            continue
        member = prefix + "certifi/cacert.pem"
        has_init = any(prefix + "certifi/" + n in names for n in ("__init__.py", "__init__.pyc"))
        if member in names and has_init:
            found.location = (zip_path, member)
            found.zip_data = data
            return found
    return found


def certifi_location(path_entries: Sequence[str]) -> Optional[Tuple[str, Optional[str]]]:
    """Where ``import certifi`` would find ``cacert.pem``, without importing certifi.

    Importing certifi pulls in importlib.resources (~35 ms); its location is all we need.
    Returns ``(path, None)`` for a file on disk or ``(zip_path, member)`` when the first entry
    holding certifi is a zip file. ``None`` when no entry holds both ``certifi/__init__.py``
    (or ``.pyc``) and ``certifi/cacert.pem``. Relative entries (``""`` is the current folder)
    are made absolute.
    """
    try:
        return find_certifi(path_entries).location
    except Exception:
        return None
