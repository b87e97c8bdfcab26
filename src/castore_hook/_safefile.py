"""Reading files that decide trust, without hanging and without trusting the wrong owner.

Every file castore-hook reads on the slow path (config, CA files, the plan cache) may be
hostile: a FIFO that blocks ``open()`` forever, ``/proc/self/mem``, a 10 GB file, a file that
another user can rewrite. This module is the one place that opens them, so the rules
(docs/architecture.md, "Failure policy") are enforced once:

* only regular files are read; the file is opened with ``O_NONBLOCK`` so a FIFO that raced
  in between ``stat`` and ``open`` cannot hang us, and is then re-checked with ``fstat``;
* reads are capped (``limit``) and a larger file is refused rather than truncated;
* a file castore-hook introduces (a config file, a ``file:``/``dir:`` source, an ``extra``
  root) is refused unless its whole path is safe (``unsafe_location``: every step owned by
  root or this user and writable by no one else), and is then opened without following a
  link the check did not see; certifi's bundle is held to the file's own owner and mode
  (``ownership_problem``);
* what stock OpenSSL reads as it is (the user's ``SSL_CERT_FILE``/``SSL_CERT_DIR``, the OS
  store) is read with no ownership rule at all (``check_owner=False``): refusing it would
  only make the hook trust less than stock (docs/architecture.md, "Do no harm").
"""

from __future__ import annotations

import os
import stat
from typing import Optional

import _castore_hook_paths as paths

#: Whether files have POSIX owners and modes, and kernel file systems under ``/proc``,
#: ``/sys`` and ``/dev``: every rule below that reads an owner, a mode or those roots holds
#: only then. On Windows the ``stat`` mode is synthesised and says nothing about who may
#: change a file, so those rules are skipped there. ``os.name`` is ``"nt"`` on Windows and
#: only there (Cygwin and MSYS2 are POSIX), the one platform fact this module needs; which OS
#: *store* a platform has is ``castore_hook.stores``'s question.
POSIX_FILES = os.name != "nt"

#: Largest config file we read. A real one is a few hundred bytes.
CONFIG_LIMIT = 1 << 20
#: Largest CA file we read. Mozilla's bundle is ~300 KB; corporate bundles can be several MB.
CA_LIMIT = 32 << 20


class UnsafeFile(Exception):
    """A file that must not be trusted or read; the message says why in plain words."""


def _current_uid() -> Optional[int]:
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid is not None else None


def ownership_problem(st: os.stat_result, path: str) -> Optional[str]:
    """Why a file with this ``stat`` must not decide trust for us, or ``None`` if it may.

    Refused: writable by group or others; owned by a user that is neither us nor root.
    On Windows, POSIX modes carry no such meaning and the check is skipped.
    """
    uid = _current_uid()
    if uid is None or not POSIX_FILES:
        return None
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_uid not in (0, uid):
        return f"{path} is owned by uid {st.st_uid}, neither this user ({uid}) nor root"
    return None


def unsafe_location(path: str) -> Optional[str]:
    """Why ``path`` may not hold (or be) a file castore-hook introduces, ``None`` when it may.

    The whole-path rule of the hot module (``_castore_hook_paths.unsafe_path``) with root and this
    user as the owners: a file that is safe itself but sits in a folder a group can write
    (``/srv/teamca`` mode 2775) can be swapped by any member of that group after this check,
    so every step from ``/`` counts. The one place that applies it to config files,
    ``file:``/``dir:`` sources and ``extra`` roots (pinned by a unit test). The answer starts
    with ``_castore_hook_paths.MISSING`` when a step does not exist.
    """
    uid = _current_uid()
    if uid is None or not POSIX_FILES:
        return None
    return paths.unsafe_path(path, (0, uid))


def refused_location(path: str) -> Optional[str]:
    """``unsafe_location`` as a sentence for ``status``, ``None`` when safe or missing (a
    missing step is the caller's "missing", not a refusal)."""
    problem = unsafe_location(path)
    if problem is None or problem.startswith(paths.MISSING):
        return None
    return f"{path} is not in a safe location: {problem}"


def refusal_watch(path: str) -> list[str]:
    """The folders on the way to ``path`` when ``refused_location`` refuses it, else ``[]``.

    A plan watches the stat signature of each file that decided it, not of its folders. A
    refused decision also watches these, so that fixing the folder (``chmod g-w``) is noticed
    at the next start instead of the refusal being cached until the file itself changes.
    """
    if refused_location(path) is None:
        return []
    steps = ["/"]
    for part in [part for part in path.split("/") if part][:-1]:
        steps.append(steps[-1].rstrip("/") + "/" + part)
    return steps


#: Pseudo-file systems whose "regular files" are views of kernel or process state
#: (``/proc/self/mem`` stats as a regular file of size 0 and reads fail or block).
KERNEL_ROOTS = ("/proc/", "/sys/", "/dev/")


def is_kernel_path(path: str) -> bool:
    """Whether ``path``, as given or after resolving symlinks, is or lies in ``/proc``,
    ``/sys`` or ``/dev``: the one test of this kind (config files, CA files and folders)."""
    if not POSIX_FILES:
        return False
    try:
        candidates = (path, os.path.realpath(path))
    except (OSError, ValueError):
        return True
    return any(
        candidate.startswith(root) or candidate + "/" == root
        for candidate in candidates
        for root in KERNEL_ROOTS
    )


_kernel_devices: Optional[frozenset[int]] = None


def on_kernel_filesystem(st: os.stat_result) -> bool:
    """Whether a file with this ``stat`` lives on the file system of ``/proc``, ``/sys`` or
    ``/dev``, whatever path (or bind mount) reached it. One ``os.stat`` per root, once."""
    global _kernel_devices
    if _kernel_devices is None:
        found = set()
        for root in KERNEL_ROOTS:
            try:
                found.add(os.stat(root).st_dev)
            except OSError:
                continue
        _kernel_devices = frozenset(found)
    return POSIX_FILES and st.st_dev in _kernel_devices


def read_regular_file(
    path: str, limit: int, *, check_owner: bool = True, whole_path: bool = True
) -> bytes:
    """Return the bytes of ``path`` if it is a safe, regular file of at most ``limit`` bytes.

    With ``check_owner`` (files castore-hook introduces), the file itself must pass
    ``ownership_problem`` and, with ``whole_path``, every step of its path must pass
    ``unsafe_location``; the file is then opened by its resolved path with ``O_NOFOLLOW``, so
    the open follows no link the check did not see, and what was opened is checked with
    ``fstat``. ``whole_path=False`` keeps the file's own check only (certifi's bundle, which
    sits wherever the environment was installed). ``check_owner=False`` is for what stock
    OpenSSL reads as it is (the user's variables, the OS store).

    Raises ``UnsafeFile`` (with a sentence fit for ``status``) or ``OSError`` (missing,
    unreadable). Never blocks on FIFOs or devices.
    """
    if is_kernel_path(path):
        raise UnsafeFile(f"{path} is a kernel or device file, not a certificate file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    target = path
    if check_owner and whole_path:
        problem = unsafe_location(path)
        if problem is not None and problem.startswith(paths.MISSING):
            raise FileNotFoundError(2, "No such file or directory", path)
        if problem is not None:
            raise UnsafeFile(f"{path} is not in a safe location: {problem}")
        if _current_uid() is not None and POSIX_FILES:
            # Every link on the way is root's or ours (checked just above): open where they
            # lead, and refuse a link that appeared there since.
            target = os.path.realpath(path)
            flags |= getattr(os, "O_NOFOLLOW", 0)
    st = os.stat(target)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile(f"{path} is not a regular file")
    fd = os.open(target, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{path} is not a regular file")
        if on_kernel_filesystem(st):
            raise UnsafeFile(f"{path} is a kernel or device file, not a certificate file")
        if check_owner:
            problem = ownership_problem(st, path)
            if problem:
                raise UnsafeFile(problem)
        if st.st_size > limit:
            raise UnsafeFile(f"{path} is {st.st_size} bytes, larger than the {limit}-byte limit")
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise UnsafeFile(f"{path} grew past the {limit}-byte limit while being read")
        return data
    finally:
        os.close(fd)


def stat_signature(path: str) -> Optional[tuple[int, int, int, int, int]]:
    """``(st_mtime_ns, st_size, st_ino, st_mode, st_uid)`` of ``path`` following symlinks, or
    ``None`` if absent.

    This is the exact signature the start-up hot path (``_castore_hook.signature``) compares;
    keep the two in step (a unit test pins them together).
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid)


#: Files a shared plan watches by content too (config files, extras, bundles, CA bundles):
#: larger ones are watched by their portable signature alone.
DIGEST_LIMIT = 4 << 20


def portable_signature(path: str) -> Optional[tuple[int, int, int, int, int]]:
    """What a shared plan watches of ``path``: what a pulled image keeps of it — the mtime to
    the second, the size of a regular file (a folder's size depends on the file system), mode
    and owner; never the inode. ``None`` if absent. The start-up hot path computes the same
    tuple for a plan with ``portable`` (``_castore_hook.valid_cached_plan``; pinned by a
    test)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    return (st.st_mtime_ns // 1_000_000_000, size, 0, st.st_mode, st.st_uid)


def portable_digest(path: str) -> Optional[tuple[int, int]]:
    """The content digest a shared plan keeps for a small regular file (``None`` for others):
    compared at start-up only when its portable signature differs (docs/architecture.md, "A
    shared plan travels")."""
    try:
        data = read_regular_file(path, DIGEST_LIMIT, check_owner=False)
    except (OSError, UnsafeFile, ValueError):
        return None
    digest: tuple[int, int] = paths.content_digest(data)
    return digest
