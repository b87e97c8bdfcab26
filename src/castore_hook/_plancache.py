"""The plan cache folder: private, owned by us, written atomically.

The hot path (``_castore_hook``) only *reads* plans; everything that creates the folder or
writes files in it lives here, on the slow path. Rules (docs/architecture.md, "Where plans
are cached", "Failure policy"): the folder is mode 0700 and must be owned by the current user;
files are written to a temporary name and moved into place with ``os.replace`` so a reader
never sees a torn file, even if this process is killed mid-write; temporary files that a
killed writer left behind are swept.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import stat
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

import _castore_hook as hot
import _castore_hook_paths as paths

if TYPE_CHECKING:
    from castore_hook._contracts import Plan, PlanInfo, Untrusted

#: The words of every problem ``folder_problem`` finds with a place that is not this user's
#: (``_castore_hook_paths.unsafe_path``): the slow path then works in the user's own place.
UNSAFE_PLACE = "is not a safe place"
#: Temporary files older than this are leftovers of a killed writer and are removed.
STALE_TEMP_SECONDS = 600
TEMP_MARKER = ".tmp-"


def folder_problem(folder: str, mode: int = 0o700, *, strict: bool = False) -> Optional[str]:
    """Create ``folder`` (``mode``) if needed; return why it can't hold our files, or ``None``.

    The folder must be a safe location by the whole path (``_castore_hook_paths.unsafe_path``: every
    step from ``/`` owned by root or this user and writable by no one else), so a folder in
    another user's home (root under ``sudo -E``), under a group-writable ``TMPDIR`` or behind
    a link another user owns is refused before anything is created or changed there. The
    folder and its parent (``~/.cache``) are made when missing, never a missing home; one step
    at a time (``mkdir``, then the rule again on what now exists), so a step another user
    plants in between is noticed, never adopted. A folder of ours that
    others can write is closed through a descriptor opened without following links.
    ``strict`` is for folders in places other users can write (the fallback folders in a
    temporary folder, the shared folder): no parent is created.
    """
    if not os.path.isabs(folder):
        return f"cache folder {folder!r} is not an absolute path"
    owners: Optional[tuple[int, ...]] = None
    if folder == shared_dir():  # whoever writes there (a merged bundle too): for all users
        mode, strict, owners = 0o755, True, shared_owners()
    for _attempt in range(64):
        why = paths.unsafe_path(folder, owners)
        if why is None:
            break
        if why.startswith(paths.MISSING):
            step = why[len(paths.MISSING) :]
            # Only the folder and its parent (~/.cache) are made; a missing home (a service
            # user's HOME=/nonexistent) is never invented, nor a missing temporary folder.
            if step != folder and (strict or step != os.path.dirname(folder)):
                return f"cannot create cache folder {folder}: {step} does not exist"
            try:
                os.mkdir(step, mode if step == folder else 0o700)
            except FileExistsError:
                continue  # made by someone in between: the rule judges it next
            except OSError as exc:
                return f"cannot create cache folder {folder}: {exc.strerror or exc}"
            continue
        if why == folder + " is writable by group or others" and _close_folder(folder, mode):
            continue
        return f"cache folder {folder} {UNSAFE_PLACE}: {why}"
    else:
        return f"cache folder {folder} keeps changing while it is made"
    try:  # a link the rule accepted (this user's own) is followed, except in shared places
        st = os.lstat(folder) if strict else os.stat(folder)
    except OSError as exc:
        return f"cannot create cache folder {folder}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"cache folder {folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cache folder {folder} is not writable"
    return None


def _close_folder(folder: str, mode: int) -> bool:
    """Take group and other write access away from ``folder`` if it is a folder of this
    user's; through a descriptor opened without following links, never by path."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        getuid = getattr(os, "getuid", None)
        if not stat.S_ISDIR(st.st_mode) or getuid is None or st.st_uid != getuid():
            return False
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o700 | mode & 0o055)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def unusable_reason(folder: Optional[str]) -> Optional[str]:
    """Why ``folder`` cannot hold plans, found without creating anything (for ``status``)."""
    if not folder:
        return "no user cache folder can be determined"
    why = paths.unsafe_path(folder)
    if why is not None and not why.startswith(paths.MISSING):
        return f"cache folder {folder} {UNSAFE_PLACE}: {why}"
    probe = folder
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.access(probe, os.W_OK | os.X_OK):
        if probe == folder:
            return f"cache folder {folder} is not writable"
        return f"cannot create cache folder {folder}: {probe} is not writable"
    return None


def own_cache_dir(config: bool = False) -> Optional[str]:
    """This user's own cache (``config``: config) folder, from the password database's home:
    where the hook works when ``HOME`` or ``XDG_CACHE_HOME`` (``XDG_CONFIG_HOME``) name a place
    that ``_castore_hook_paths.unsafe_path`` refuses, e.g. another user's home under ``sudo -E``,
    ``su -m`` or a service's ``HOME=``; the other user's folders are never created or changed.
    ``_castore_hook.find_plan`` spells out the same call (pinned by a test). ``None`` on
    Windows (no owners there) or without a password-database entry."""
    if not hasattr(os, "getuid"):
        return None
    return hot.cache_dir("".strip, sys.platform, True, config)


def shared_owners() -> tuple[int, ...]:
    """Who may own the shared plan, its folder and the steps to it: root and the owner of
    ``sys.prefix`` (the environment's owner), as ``_castore_hook.find_plan`` checks."""
    try:
        return (0, os.stat(sys.prefix).st_uid)
    except (OSError, ValueError):
        return (0,)


def shared_dir() -> Optional[str]:
    """The environment's shared plan folder (``castore-hook refresh --shared``): beside the
    hot module, inside the environment it serves, where only the environment's owner can
    write. ``pip uninstall`` leaves it (pip removes only what it installed); without the hot
    module it is inert, and its name is no module name, so it can never shadow an import.
    ``_castore_hook.find_plan`` spells out the same expression (pinned by a test)."""
    here = getattr(hot, "__file__", None)  # none under an in-memory importer (PyOxidizer)
    if not here or not os.path.isabs(here):
        return None
    folder: str = os.path.dirname(here)
    return folder + os.sep + "castore-hook-shared"


def fallback_folder(get: Callable[[str], str]) -> tuple[Optional[str], list[str]]:
    """The first of ``_castore_hook.fallback_dirs`` that is, or can be made, a private folder
    of this user's, and why each one before it could not."""
    problems: list[str] = []
    for folder in hot.fallback_dirs(get):
        problem = folder_problem(folder, strict=True)
        if problem is None:
            return folder, problems
        problems.append(problem)
    return None, problems


def write_atomic(folder: str, name: str, data: bytes, mode: int = 0o600) -> str:
    """Write ``data`` to ``folder/name`` atomically and return the path. Raises ``OSError``."""
    target = os.path.join(folder, name)
    temp = os.path.join(folder, f".{name}{TEMP_MARKER}{os.getpid()}-{time.monotonic_ns()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temp, flags, mode)
    try:
        try:
            if mode & 0o044 and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # readable by others as asked, whatever the umask
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return target


def _writer_is_dead(name: str) -> bool:
    """Whether the process that made temporary ``name`` (``….tmp-<pid>-<ns>``) is gone."""
    pid_text = name.rpartition(TEMP_MARKER)[2].partition("-")[0]
    # os.kill(pid, 0) probes a process on POSIX only (on Windows it would end it).
    if not pid_text.isdigit() or not hasattr(os, "kill") or os.name == "nt":
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, but not ours to signal
    return False


def sweep_temporaries(folder: str, now: Optional[float] = None) -> int:
    """Remove temporary files left by killed writers; return how many were removed.

    A temporary is a leftover when its writer's PID is gone, or when it is older than
    :data:`STALE_TEMP_SECONDS` (PIDs get reused). Removing a live writer's file by mistake
    only makes that writer's ``os.replace`` fail, which it reports; nothing is torn.
    """
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if TEMP_MARKER not in entry.name or not entry.name.startswith("."):
            continue
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS
            if old or _writer_is_dead(entry.name):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


INFO_SUFFIX = ".info"


def _checksum(data: bytes) -> bytes:
    return (int.from_bytes(data, "little") % hot.PLAN_CHECK_MODULUS).to_bytes(4, "big")


def encode_plan(plan: Plan) -> bytes:
    """The bytes of a plan file: the exact inverse of ``_castore_hook.read_plan``.

    Magic, the checksum and length of the marshal payload (everything but ``trust``, plus
    ``trust_size``), the payload, then the trust section: its own checksum and marshal data,
    or nothing when the plan has no in-process trust. The layout is explained next to
    ``PLAN_MAGIC`` in the hot module; round-trip tests pin the two.
    """
    trust: Any = plan.get("trust")  # the dict (marshal-able by the contract) or None
    section = b""
    if trust is not None:
        blob = marshal.dumps(trust)
        section = _checksum(blob) + blob
    body: dict[str, object] = {name: value for name, value in plan.items() if name != "trust"}
    if section:
        body["trust_size"] = len(section)
    payload = marshal.dumps(body)
    return hot.PLAN_MAGIC + _checksum(payload) + len(payload).to_bytes(4, "big") + payload + section


def store_plan(
    folder: Optional[str], path: Optional[str], plan: Plan, *, shared: bool = False
) -> str:
    """Write ``plan`` to ``path``; return ``""`` or a sentence saying why it was not cached.

    The human side of the plan (``info``: trail, problems, files read) goes to a sidecar file
    ``path + ".info"``, written first: every start reads the plan file, only ``status``
    reads the sidecar, so keeping ``info`` out makes each start cheaper. A ``shared`` plan
    (``castore-hook refresh --shared``) is readable by every user: folder 0755, files 0644.
    """
    if not folder or not path:
        return (
            "no cache folder could be determined; the slow path runs at every start "
            "(set CASTORE_HOOK_CACHE_DIR)"
        )
    problem = folder_problem(folder)
    if problem:
        return problem + "; the slow path runs at every start (set CASTORE_HOOK_CACHE_DIR)"
    sweep_temporaries(folder)
    hot_part = plan.copy()
    hot_part.pop("info", None)
    sidecar: Plan = {"format": plan["format"], "key": plan["key"], "info": plan["info"]}
    name = os.path.basename(path)
    mode = 0o644 if shared else 0o600
    try:
        write_atomic(folder, name + INFO_SUFFIX, encode_plan(sidecar), mode)
        write_atomic(folder, name, encode_plan(hot_part), mode)
    except (OSError, ValueError) as exc:
        return (
            f"cannot write the plan cache {path}: {exc}; the slow path runs at every start "
            "(set CASTORE_HOOK_CACHE_DIR)"
        )
    return ""


def trust_of(plan: Optional[Plan]) -> Optional[Untrusted]:
    """A plan's in-process trust (``plan["trust"]``) as a dict, whether the plan was just
    decided or read back from the cache (see ``decode_trust``)."""
    return decode_trust(plan.get("trust") if plan else None)


def decode_trust(section: object) -> Optional[Untrusted]:
    """In-process trust as a dict: a fresh plan holds the dict itself, a cached one the trust
    section of its file (checksum, then marshal data; see ``encode_plan``), checked here, when
    ssl or certifi is imported, not at every start. ``None`` when there is none or it is
    corrupt."""
    if isinstance(section, bytes):
        blob = section[4:]
        if not blob or section[:4] != _checksum(blob):
            return None
        try:
            section = marshal.loads(blob)  # noqa: S302 - checksummed, in our own plan file
        except (ValueError, EOFError, TypeError):
            return None
    return section if isinstance(section, dict) else None


def load_info(
    path: Optional[str], key: object, owners: Optional[tuple[int, ...]] = None
) -> Optional[PlanInfo]:
    """The ``info`` stored beside the plan at ``path`` for ``key``, or ``None``; owned by one
    of ``owners`` (``None``: this user; a shared plan's: root or the environment's owner)."""
    if not path:
        return None
    sidecar, _reason = hot.read_plan(path + INFO_SUFFIX, owners)
    if sidecar is None or sidecar.get("key") != key or not isinstance(sidecar.get("info"), dict):
        return None
    return sidecar["info"]  # shown, never acted on: status reads it field by field
