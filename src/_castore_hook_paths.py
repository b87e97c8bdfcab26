# castore-hook's rule of a safe location, and the start-up lookup that needs it.
#
# A top-level module beside _castore_hook (the start-up hot path), imported by it only on a
# miss of the user cache where the home exists, and by castore_hook's slow path and doctor
# always: every byte of the hot module is paid by every interpreter, so code that only such
# a miss runs lives here (docs/architecture.md, "Safe locations"). Like the hot module it
# imports only what every interpreter has loaded, and never raises from own_plan.

import os
import sys

import _castore_hook as hot

TYPE_CHECKING = False
if TYPE_CHECKING:
    import typing as t  # noqa: F401 - used in type comments

    import castore_hook._contracts as c  # noqa: F401 - used in type comments

# The start of unsafe_path's answer when a step of the path does not exist (yet).
MISSING = "missing: "


def unsafe_path(path, owners=None):
    # type: (str, t.Optional[tuple[t.Optional[int], ...]]) -> t.Optional[str]
    # Why path may not hold, or be, a file that decides trust; None when it may. The one rule
    # of a safe location (docs/architecture.md, "Safe locations"), used by start-up, the slow
    # path and doctor: every step from / down to path (lstat: no link followed unseen) is
    # owned by root or one of owners (None: this user) and writable by no one else, except a
    # sticky folder (/tmp) on the way, whose next step passes the same rule; path itself
    # belongs to owners. A link owned by root or owners is followed: the walk starts again on
    # its target, joined to the real folder holding it. The answer starts with MISSING when a
    # step does not exist. Windows: None (ACLs decide there).
    if hot._UID is None:
        return None
    if path[:1] != "/" or "/../" in path + "/":
        return path + ": not absolute, or has '..'"
    owners = owners or hot._MINE
    step = "/"
    for _ in range(99):  # steps and links followed: a loop of links ends here
        try:
            st = os.lstat(step)
        except (OSError, ValueError):
            return MISSING + step
        last = len(step) >= len(path)
        if st.st_uid not in owners and (st.st_uid or last):  # root: any step but the last
            return step + " is owned by uid " + str(st.st_uid)
        if st.st_mode & 0o170000 == 0o120000:
            path = os.path.normpath(
                os.path.join(os.path.dirname(step), os.readlink(step)) + path[len(step) :]
            )
            step = "/"
        elif st.st_mode & 0o022 and (last or not st.st_mode & 0o1000):
            return step + " is writable by group or others"
        elif last:
            return None
        else:
            end = path.find("/", len(step) + 1)
            step = path if end < 0 else path[:end]
    return path + ": too many links"


def own_plan(
    lookup,  # type: t.Callable[[t.Any], t.Any]
    get,  # type: t.Callable[[str], str]
    ignore_env,  # type: bool
    folder,  # type: str
    path,  # type: t.Optional[str]
    reason,  # type: str
):
    # type: (...) -> tuple[t.Optional[c.Plan], str, str, t.Optional[str], t.Optional[str]]
    # _castore_hook.find_plan's next step after a miss in the user cache folder: when that
    # folder is not a safe place of this user's (HOME or XDG_CACHE_HOME name another user's
    # home under sudo -E, su -m or a service's HOME=), the plan in this user's own cache folder
    # (castore_hook._plancache.own_cache_dir: the password database's home; "".strip is a
    # getter that finds every variable unset), where the slow path then works too. Returns
    # (plan or None, reason, "user" or "own", folder, plan file).
    why = None
    if ignore_env or get("CASTORE_HOOK_CACHE_DIR")[:1] != "/":  # an explicit folder is obeyed
        why = unsafe_path(folder)
    if not why or why[:9] == MISSING:
        return None, reason, "user", folder, path
    own = hot.cache_dir("".strip, sys.platform, True)
    if not own:
        return None, "unsafe: " + why, "own", folder, path
    own_folder, path = hot.plan_path(get, ignore_env, own)
    plan = hot.valid_cached_plan(lookup, ignore_env, own_folder, path)[0]
    return plan, "unsafe: " + why, "own", own_folder, path


def content_digest(data):
    # type: (bytes) -> tuple[int, int]
    # (length, checksum) of a file's bytes: the plan file's own checksum (the bytes as one
    # integer modulo a prime; one pass in C, nothing imported). It tells a pulled image's
    # unchanged file from a changed one, not an attacker's forgery: who can replace a file a
    # shared plan watches can already replace the config that decides it.
    return len(data), int.from_bytes(data, "little") % hot.PLAN_CHECK_MODULUS


def same_content(file, digest):
    # type: (str, t.Any) -> bool
    # Whether file still holds the bytes a shared plan recorded (content_digest), for a file
    # whose cheap signature differs: a config file a ConfigMap mounts afresh at every pod start,
    # an image tool that kept only whole seconds. Opened without blocking or taking a
    # terminal; a regular file of the recorded length only. Never raises.
    try:
        fd = os.open(file, hot._OPEN_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))
    except (OSError, ValueError):
        return False
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o170000 != 0o100000 or st.st_size != digest[0]:
            return False
        data = os.read(fd, st.st_size + 1)
        return content_digest(data) == tuple(digest)
    except Exception:
        return False
    finally:
        os.close(fd)
