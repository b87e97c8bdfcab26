"""The certificates a piece of CA material stands for, as one de-duplicated list of DER.

Why this module exists: a bundle the hook exports or hands to certifi must never hold less
than the source it stands for (docs/architecture.md, "Do no harm"). A source comes as a file,
a hashed folder, in-memory PEM, or the OS verifier (``native``); each form is turned into the
same thing here, so the resolver, ``castore-hook bundle`` and ``doctor`` agree on what "all of
its roots" means. Slow-path code: it reads every entry of a folder, which OpenSSL itself
would only look up lazily.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from castore_hook import cafiles, pem
from castore_hook._safefile import (
    CA_LIMIT,
    UnsafeFile,
    is_kernel_path,
    on_kernel_filesystem,
    ownership_problem,
    read_regular_file,
    stat_signature,
)


class Unavailable(Exception):
    """The material's certificates cannot all be read; the message says why, for ``status``."""


def unique(ders: Iterable[bytes]) -> list[bytes]:
    """``ders`` without repeats, first occurrence kept."""
    seen: set[bytes] = set()
    kept: list[bytes] = []
    for der in ders:
        if der not in seen:
            seen.add(der)
            kept.append(der)
    return kept


def to_pem(ders: Iterable[bytes]) -> str:
    """Normalised PEM text of ``ders`` (64-column base64, ``\\n`` line ends)."""
    return "".join(pem.der_to_pem(der) for der in ders)


def of_file(path: str, strict: bool = False) -> list[bytes]:
    """Every certificate in the CA file ``path``. Raises :class:`Unavailable`.

    ``strict`` for a file named in castore-hook's config (its whole path must be safe);
    otherwise it is read as stock OpenSSL reads it, whoever owns it. A file holding
    ``TRUSTED CERTIFICATE`` blocks is unavailable: their trust settings cannot be carried
    into a bundle of plain certificates, which would then trust more, or less, than it.
    """
    try:
        data = read_regular_file(path, CA_LIMIT, check_owner=strict)
    except (OSError, UnsafeFile, ValueError) as exc:
        raise Unavailable(f"cannot read {path}: {exc}") from None
    if sum(pem.trusted_certificates(data)):
        raise Unavailable(
            f"{path} holds TRUSTED CERTIFICATE blocks, whose trust settings a bundle of plain "
            "certificates cannot carry"
        )
    return pem.der_certificates(data)


def of_text(text: str) -> list[bytes]:
    """Every certificate in PEM text (in-memory material, ``extra`` roots)."""
    return pem.der_certificates(text.encode("ascii", "replace"))


#: Folders read in this process, by path, stat signature and rule: the resolver needs a
#: folder's roots twice (to compare with its file, to build the bundle), and reading 150
#: entries costs ~15 ms of a cold start. Each holds ``(entry name, its certificates, read as
#: OpenSSL's lookup reads it)`` per hash-named entry.
_FOLDERS: dict[tuple[str, object, bool], list[tuple[str, list[bytes], bool]]] = {}


def _entries(
    capath: str, separator: str, strict: bool = False
) -> list[tuple[str, list[tuple[str, list[bytes], bool]]]]:
    found = []
    for folder in [part for part in capath.split(separator) if part]:
        key = (folder, stat_signature(folder), strict)
        cached = _FOLDERS.get(key)
        if cached is None:
            cached = _read_folder(folder, strict)
            if len(_FOLDERS) >= 8:
                _FOLDERS.clear()
            _FOLDERS[key] = cached
        found.append((folder, cached))
    return found


def of_folder(capath: str, separator: str = os.pathsep, strict: bool = False) -> list[bytes]:
    """Every certificate behind the hash-named entries of each folder in ``capath``.

    Only ``[0-9a-f]{8}.N`` entries count: they are all OpenSSL ever looks up. An entry that
    cannot be read makes the whole folder unavailable, because a bundle missing that root
    would trust less than the folder does. ``strict`` (a ``dir:`` source) holds every entry
    to the ownership rules; otherwise entries are read as OpenSSL reads them. Raises
    :class:`Unavailable`.
    """
    ders: list[bytes] = []
    for _folder, entries in _entries(capath, separator, strict):
        for _name, certs, _readable in entries:
            ders.extend(certs)
    return unique(ders)


#: ``reachable``'s answer per ``(capath, separator)`` and the folders' stat signatures when
#: it was computed: one decision asks twice (the folder's proof and its stand-ins), and a
#: system folder costs ~150 subject hashes.
_reachable_memo: dict[tuple[str, str], tuple[tuple[object, ...], list[bytes]]] = {}


def reachable(capath: str, separator: str = os.pathsep) -> list[bytes]:
    """:func:`_reachable`, computed again only when a folder of ``capath`` changed."""
    from castore_hook._safefile import stat_signature

    signatures = tuple(stat_signature(folder) for folder in capath.split(separator))
    memo = _reachable_memo.get((capath, separator))
    if memo is not None and memo[0] == signatures:
        return list(memo[1])
    found = _reachable(capath, separator)
    _reachable_memo[(capath, separator)] = (signatures, found)
    return list(found)


def _reachable(capath: str, separator: str = os.pathsep) -> list[bytes]:
    """The certificates OpenSSL's hashed lookup finds in the folders of ``capath``.

    Why not :func:`of_folder`: OpenSSL looks a root up only as ``<hash of its subject>.0``,
    ``.1``, ... and stops at the first entry missing or failing to load (``by_dir.c``), so a
    root filed under another name, behind a gap (``.1`` with no ``.0``), or in a DER entry
    (the lookup reads PEM) is never found. A folder may stand in for a file only when this
    set holds the file's roots. Raises :class:`Unavailable`.
    """
    ders: list[bytes] = []
    for _folder, entries in _entries(capath, separator):
        names = {name: (certs, readable) for name, certs, readable in entries}
        for stem in sorted({name[:8] for name in names}):
            index = 0
            while f"{stem}.{index}" in names:
                certs, readable = names[f"{stem}.{index}"]
                if not readable:
                    break
                ders.extend(der for der in certs if pem.subject_hash(der) == stem)
                index += 1
    return unique(ders)


def _read_folder(folder: str, strict: bool) -> list[tuple[str, list[bytes], bool]]:
    """Each hash-named entry of ``folder``: its name, its certificates, and whether OpenSSL's
    lookup loads it whole (PEM, no corrupt block). The same rules as
    ``_safefile.read_regular_file`` (regular files only, never blocking, not on the kernel's
    file systems, size-capped; with ``strict``, not writable by others nor owned by another
    user), in one open and one ``fstat`` per entry: a folder has hundreds of entries, and
    this runs in some user's cold start."""
    if is_kernel_path(folder):
        raise Unavailable(f"{folder} is inside /proc, /sys or /dev")
    try:
        names = sorted(name for name in os.listdir(folder) if cafiles.is_hash_name(name))
    except OSError as exc:
        raise Unavailable(f"cannot list {folder}: {exc.strerror or exc}") from None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    entries: list[tuple[str, list[bytes], bool]] = []
    for name in names:
        entry = os.path.join(folder, name)
        try:
            fd = os.open(entry, flags)
        except FileNotFoundError:
            continue  # a dangling link: OpenSSL finds nothing there either
        except OSError as exc:
            raise Unavailable(f"cannot read {entry}: {exc.strerror or exc}") from None
        try:
            st = os.fstat(fd)
            problem = (
                "not a regular file"
                if not stat.S_ISREG(st.st_mode) or on_kernel_filesystem(st)
                else (ownership_problem(st, entry) if strict else None)
            )
            if problem is None and st.st_size > CA_LIMIT:
                problem = "larger than the size limit"
            if problem:
                raise Unavailable(f"{entry}: {problem}")
            data = os.read(fd, st.st_size + 1)
        except OSError as exc:
            raise Unavailable(f"cannot read {entry}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        certs, whole = pem.folder_entry(data)
        entries.append((name, unique(certs), whole))
    return entries


def folder_covers_file(capath: str, cafile: str) -> bool:
    """Whether OpenSSL's hashed lookup in ``capath`` finds every certificate of ``cafile``
    (:func:`reachable`), compared by DER bytes (never by count: two stores of equal size can
    hold different roots)."""
    try:
        in_folder = set(reachable(capath))
        return bool(in_folder) and set(of_file(cafile)) <= in_folder
    except Unavailable:
        return False
