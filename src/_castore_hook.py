# castore-hook's start-up hot path: it runs in every interpreter, so it must cost almost nothing.
#
# castore_hook.pth (and castore_hook.start on Python 3.15+) run this module while site
# processes site-packages. It is one top-level module, not castore_hook._startup: a package
# plus a submodule costs ~60 % more to import than one module (docs/architecture.md, "Two paths").
# It imports only sys, os and marshal, which every interpreter has loaded before site runs.
#
# Every byte of this file is paid by every interpreter (~35 instructions per byte of .pyc:
# unmarshalling, then the collector), so it holds only what a cache hit runs. Comments, not
# docstrings; type comments, not annotations (both cost nothing at run time). Everything
# that decides a plan and its key is in castore_hook (resolve, _plankey, _plancache) and is
# imported on a miss only; benchmarks/README.md has the measurements behind these choices.
#
# A hit: find this interpreter's plan file, check that the plan was made for this Python, that
# the environment is in one of the states the plan accepts and that every path that decided
# it has the same stat signature; then set or unset a few variables and install a small
# post-import finder.
#
# Failure policy (docs/architecture.md, "Failure policy"): nothing here may raise, print
# (outside CASTORE_HOOK_DEBUG) or block. Every exception, BaseException included, stops at run().

import marshal
import os
import sys

# Only mypy reads this block (it takes TYPE_CHECKING as true). CPython folds "not __debug__"
# to False and drops the block from the bytecode; under -O, TYPE_CHECKING is still False.
TYPE_CHECKING = False
if not __debug__ and TYPE_CHECKING:
    from typing import Any, Callable, MutableMapping, Optional

    Environ = MutableMapping[str, str]
    Getter = Callable[[str], str]
    Plan = dict[str, Any]
    Signature = tuple[int, int, int, int, int]
    Lookup = Callable[[Any], Any]
    Owners = tuple[Optional[int], ...]

PLAN_FORMAT = 4
PLAN_LIMIT = 1 << 20
# A plan file is PLAN_MAGIC, a 4-byte checksum and the 4-byte length of the marshal payload,
# the payload, then the plan's in-process trust ("trust"), a section of its own that start-up
# only tests for presence and castore_hook._inprocess checks and unmarshals when ssl or certifi is
# imported (with extra roots it holds their PEM: why read it at every start).
# marshal.loads trusts lengths inside its input (a tuple header claiming 2**31 items is
# allocated and zeroed before the data runs out), so a corrupt or truncated payload is
# rejected before marshal sees it. The checksum is the payload read as one integer modulo a
# prime below 2**30: one pass in C, no hashlib or zlib import (castore_hook._plancache).
PLAN_MAGIC = b"castore-hook plan 4\n"
PLAN_CHECK_MODULUS = 1073741789  # the largest prime below 2**30: one-digit division in C
_HEAD = len(PLAN_MAGIC) + 8
# Records what the hook changed ("NAME<TAB>ORIGINAL<TAB>NEW" per line), so a child
# interpreter can tell its parent's exports from its user's own values (castore_hook._plankey).
EXPORTED_VAR = "CASTORE_HOOK_EXPORTED"
# The only variables the hook may set (docs/architecture.md, "Applying a plan"). Copied from
# castore_hook.config because importing it costs start-up time; a test pins the two.
EXPORT_ALLOWED = frozenset(
    (
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "PIP_CERT",
        "AWS_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "NODE_EXTRA_CA_CERTS",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "HTTPLIB2_CA_CERTS",
    )
)
WATCHED = ("ssl", "certifi", "pip._vendor.certifi")
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
# Plan files and the cache folder must belong to this user and be writable by no one else.
# Windows has no uid and reports every writable file as 0o666: ACLs decide there.
_UID = os.getuid() if hasattr(os, "getuid") else None
_MINE = (_UID,)  # who may own a plan in the user's own folders
_FILE_MASK = 0o170000 if _UID is None else 0o170022
_FS_ENCODING = None if os.name == "nt" else sys.getfilesystemencoding()

# What happened in this interpreter (castore_hook.status reports it). None until run() is
# called, which also makes run() idempotent: a venv may process site-packages twice.
state = None  # type: Optional[dict[str, Any]]


def getenv(name):
    # type: (str) -> str
    # os.environ.get(name, ""), minus the KeyError that Mapping.get raises and catches for
    # every unset name: ~8 k instructions each, and most names read here are unset; this costs
    # ~3 k. It reads os.environ's own mapping, encoded as os.py encodes it (bytes in the file
    # system encoding with surrogateescape on POSIX, upper-case str keys on Windows);
    # test_getenv_matches_os_environ pins the two. Every function below reads variables
    # through such a get(name) -> str ("" when unset); castore_hook._plankey.getter makes one
    # from any mapping.
    data = os.environ._data  # type: ignore[attr-defined]
    if _FS_ENCODING is None:
        return data.get(name.upper(), "")  # type: ignore[no-any-return]
    value = data.get(name.encode(_FS_ENCODING, "surrogateescape"))
    return "" if value is None else value.decode(_FS_ENCODING, "surrogateescape")


def cache_dir(get, platform=sys.platform, ignore_env=False, config=False):
    # type: (Getter, str, bool, bool) -> Optional[str]
    # The user cache folder: an absolute CASTORE_HOOK_CACHE_DIR, else
    # platformdirs.user_cache_dir("castore-hook", appauthor=False) by hand (importing
    # platformdirs costs ~30 ms); with config, platformdirs.user_config_dir instead. As
    # platformdirs 4: an absolute XDG_CACHE_HOME (XDG_CONFIG_HOME) wins on Linux and macOS,
    # joined as os.path.join does; else the home's .cache (Library/Caches), the home being an
    # absolute HOME or else (unset, empty, relative) the password database's, as
    # os.path.expanduser does. pwd only then (a lookup: 0.06-0.2 M instructions).
    # tests/unit/test_locations.py pins every case against the installed platformdirs.
    base = "" if ignore_env or config else get("CASTORE_HOOK_CACHE_DIR")
    if base and os.path.isabs(base):
        return base
    if platform == "win32":
        base = get("WIN_PD_OVERRIDE_LOCAL_APPDATA").strip() or get("LOCALAPPDATA")
        return base + "\\castore-hook" + ("" if config else "\\Cache") if base else None
    base = get("XDG_CONFIG_HOME" if config else "XDG_CACHE_HOME")
    if base[:1] != "/":
        base = get("HOME")
        if base[:1] != "/":
            try:  # without HOME site.py made the first lookup (USER_BASE): 0.06 M more
                import pwd

                base = pwd.getpwuid(_UID).pw_dir  # type: ignore[arg-type]
            except Exception:  # no entry (docker run -u 12345), no pwd
                return None
            if base[:1] != "/":
                return None
        base = base.rstrip("/") + (
            ("/Library/Application Support" if config else "/Library/Caches")
            if platform == "darwin"
            else ("/.config" if config else "/.cache")
        )
    return base + ("castore-hook" if base[-1] == "/" else "/castore-hook")


def plan_path(get, ignore_env, folder=None):
    # type: (Getter, bool, Optional[str]) -> tuple[Optional[str], Optional[str]]
    # (cache folder, plan file) of this interpreter: the one recipe that start-up,
    # activate(), refresh, status and doctor share; the user cache folder unless folder is
    # given (a fallback or the shared folder). One plan file per interpreter and isolation
    # mode, so Pythons sharing a cache folder (and a python -E child of a normal parent)
    # never evict each other's plans: cache tag + sys.prefix made into a file name (C-speed
    # replace); a prefix too long for a file name gets a digest instead (no hashlib at
    # start-up; a tuple of ints hashes the same in every process, no PYTHONHASHSEED salt).
    folder = folder or cache_dir(get, sys.platform, ignore_env)
    if not folder:
        return None, None
    name = sys.prefix.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    name = name.replace(":", "%3A")
    if len(name) > 180:
        name = format(
            hash(tuple(sys.prefix.encode("utf-8", "surrogateescape"))) & 0xFFFFFFFF, "08x"
        )
    tag = (sys.implementation.cache_tag or "python") + ("-E-" if ignore_env else "-")
    return folder, folder + os.sep + "plan-" + tag + name + ".marshal"


def fallback_dirs(get):
    # type: (Getter) -> list[str]
    # Where plans are cached when the user cache folder cannot be written (a service user's
    # missing home, a read-only image): a folder per uid in XDG_RUNTIME_DIR, else in
    # tempfile's candidates (TMPDIR, TEMP, TMP, /tmp, /var/tmp, /usr/tmp), absolute ones only;
    # none on Windows. castore_hook._plancache.fallback_folder makes the first usable one.
    # (A loop, not a comprehension: on 3.11 that would be one more code object to unmarshal.)
    found = []  # type: list[str]
    for base in (
        get("XDG_RUNTIME_DIR"),
        get("TMPDIR"),
        get("TEMP"),
        get("TMP"),
        "/tmp",  # noqa: S108 - a folder of our own in it, checked before use
        "/var/tmp",  # noqa: S108
        "/usr/tmp",
    ):
        if base[:1] == "/" and _UID is not None:
            found.append(base.rstrip("/") + "/castore-hook-" + str(_UID))
    return found


def signature(path):
    # type: (str) -> Optional[Signature]
    # (mtime_ns, size, ino, mode, uid) or None; mode and owner because chmod/chown decide
    # trust yet change neither mtime nor size. Same as _safefile.stat_signature (pinned).
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid)


def read_plan(path, owners=_MINE):
    # type: (str, Owners) -> tuple[Optional[Plan], str]
    # The plan at path if it is intact and owners has its owner, else (None, reason).
    # O_NONBLOCK: a FIFO planted at the path must not hang start-up. st_size + 1 (to notice
    # growth), not PLAN_LIMIT: os.read allocates what it is asked.
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError):
        return None, "no plan cached"
    try:
        st = os.fstat(fd)
        data = b""
        if st.st_mode & _FILE_MASK == 0o100000 and (_UID is None or st.st_uid in owners):
            data = os.read(fd, st.st_size + 1) if st.st_size <= PLAN_LIMIT else b"too large"
    except OSError:
        data = b""
    os.close(fd)
    if not data:
        return None, "plan cache is empty, foreign, writable by others or not a regular file"
    end = _HEAD + int.from_bytes(data[_HEAD - 4 : _HEAD], "big")
    payload = data[_HEAD:end]
    if data[: _HEAD - 8] != PLAN_MAGIC or len(data) < end:
        return None, "plan cache is corrupt or of another version"
    if int.from_bytes(data[_HEAD - 8 : _HEAD - 4], "big") != (
        int.from_bytes(payload, "little") % PLAN_CHECK_MODULUS
    ):
        return None, "plan cache is corrupt or of another version"
    try:
        plan = marshal.loads(payload)  # noqa: S302 - our own file, owner- and sum-checked
    except Exception:
        plan = None
    # The trust section is checked (sum, marshal) when used; its length now, as truncation is
    # the likely damage.
    if type(plan) is not dict or len(data) - end != plan.get("trust_size", 0):
        return None, "plan cache is corrupt or of another version"
    plan["trust"] = data[end:]
    return plan, ""


def valid_cached_plan(lookup, ignore_env, folder, path, owners=_MINE, stat=os.stat):
    # type: (Lookup, bool, Optional[str], Optional[str], Owners, Any) -> tuple[Optional[Plan], str]
    # The plan cached at path if it still holds here, else (None, why not). It holds when it
    # was made for this Python (castore_hook._plankey.plan_key writes the same identity), the
    # variables it watches are in one of the states it accepts, and every path that decided
    # it has the same signature. Whoever can write the folder could swap the exported bundle
    # after our checks, hence its owner and mode check (stat is os.lstat where a symlink must
    # not stand in for the folder: the fallback and shared folders). lookup reads variables in
    # os.environ's own encoding: os.environ._data.get at start-up, a C call per name
    # (castore_hook._plankey.native_lookup).
    if not folder or not path:
        return None, "no cache folder"
    plan, reason = read_plan(path, owners)
    if plan is None:
        return None, reason
    try:
        st = stat(folder)
        if _UID is not None and (st.st_uid not in owners or st.st_mode & 0o170022 != 0o40000):
            return None, "cache folder not owned by this user"
        key = plan["key"]
        if key[:4] != (sys.hexversion, sys.platform, sys.prefix, ignore_env):
            return None, "made for another Python"
        if tuple(map(lookup, key[4])) not in key[5]:  # a few tuples compared, nothing hashed
            return None, "environment changed"
        for file, sig in plan["stats"]:
            if signature(file) != sig:
                return None, "changed: " + file
    except Exception:  # any other shape is a hostile or corrupt plan; a folder gone
        return None, "plan cache is malformed"
    return plan, ""


def find_plan(lookup, get, ignore_env):
    # type: (Lookup, Getter, bool) -> tuple[Optional[Plan], str, str, Optional[str]]
    # (plan, why the user cache had none, where it was found, its file), looking in order:
    # the user cache folder; the per-user fallback folders; the environment's shared plan
    # (castore-hook refresh --shared), owned by root or by the owner of sys.prefix and valid
    # for any user without a config file of their own: its key watches no per-user location
    # variable, so this user's config file is checked here, one stat (docs/architecture.md).
    # A miss returns the user cache's plan file, where the slow path stores first.
    folder, path = plan_path(get, ignore_env)
    plan, reason = valid_cached_plan(lookup, ignore_env, folder, path)
    if plan is not None:
        return plan, reason, "user", path
    # The file name once; os.access first: most candidates do not exist, and a failing
    # os.access costs half a failing os.open (no exception raised and caught).
    base, file = (folder, path) if path else plan_path(get, ignore_env, os.sep)
    name = file[len(base) :]  # type: ignore[arg-type,index]
    for other in fallback_dirs(get):
        if os.access(other, os.F_OK):
            plan = valid_cached_plan(lookup, ignore_env, other, other + name, _MINE, os.lstat)[0]
            if plan is not None:
                return plan, reason, "fallback", other + name
    # The shared folder, as castore_hook._plancache.shared_dir names it; none when an
    # in-memory importer (PyOxidizer) loaded this module: it then has no __file__.
    here = globals().get("__file__")
    config = cache_dir(get, sys.platform, True, True)
    site = sys.modules.get("site")
    if (
        here
        and os.path.isabs(here)
        and (config is None or signature(config + os.sep + "config.toml") is None)
        and getattr(site, "USER_SITE", None) not in sys.path
    ):  # this user's own site-packages would change what certifi is
        other = os.path.join(os.path.dirname(here), "castore-hook-shared")
        prefix = signature(sys.prefix)  # its owner is the environment's (None: root only)
        owners = (0, prefix[4] if prefix else 0)
        plan = valid_cached_plan(lookup, ignore_env, other, other + name, owners, os.lstat)[0]
        if plan is not None:
            return plan, reason, "shared", other + name
    return None, reason, "user", path


def apply_plan(plan, environ):
    # type: (Plan, Environ) -> Optional[dict[str, Optional[str]]]
    # Apply the plan's variable changes and its EXPORTED_VAR record; return what changed, or
    # None if the plan is unsafe, and then nothing is touched. The cache is treated as hostile
    # even though we wrote it: allow-listed names only, and only paths that the plan's stat
    # list shows to exist (valid_cached_plan has just re-stat'ed them; a path os.stat refuses, NUL
    # or lone surrogate, is never present; the slow path writes absolute paths only). Shape
    # errors (unhashable, wrong arity, not str) raise and land in the except: less bytecode
    # than explicit type checks.
    try:
        present = dict(plan["stats"])
        to_set = plan["set"]
        to_unset = plan["unset"]
        for name, value in to_set:
            if name not in EXPORT_ALLOWED or present.get(value) is None:
                return None
        for name in to_unset:
            if name not in EXPORT_ALLOWED:
                return None
        applied = dict(to_set)  # type: dict[str, Optional[str]]
        applied.update(dict.fromkeys(to_unset))
    except Exception:
        return None
    if applied:
        # The record first: if it cannot be set (not a str, a NUL), nothing has changed yet.
        environ[EXPORTED_VAR] = plan["record"]
        for name, value in to_set:
            environ[name] = value
        for name in to_unset:
            environ.pop(name, None)
    return applied


# The post-import finder lets castore_hook._inprocess act on ssl / certifi right after their first
# import (docs/architecture.md, "Applying a plan"); only the membership test below runs per
# import, the work lives in _inprocess. No importlib.util, no threading, no class at start-up
# (creating one costs ~77 k instructions): the finder is a SimpleNamespace (sys.implementation's
# type) that owns its state: find_spec, the modules still pending, those being looked up
# (busy), and the plan's trust section. find_spec gets a globals dict of its own with just
# the two lists: whatever sys.meta_path references outlives the interpreter's first
# collection at exit, and this module's globals would keep os, and with it collections.abc,
# alive into a second, costly one (+0.47 M instructions at every exit; benchmarks/README.md).
_pending = []  # type: list[str]
_busy = []  # type: list[str]


def _find_spec(fullname, path=None, target=None):
    # type: (str, Any, Any) -> Any
    if fullname not in _pending or fullname in _busy:
        return None
    from castore_hook import _inprocess

    return _inprocess.find_wrapped_spec(fullname, path, target)


_namespace = type(sys.implementation)  # type: Any
_function = type(_find_spec)  # type: Any
# (__builtins__ given explicitly: before 3.10 a function whose globals lack it has none.)
_globals = {"_pending": _pending, "_busy": _busy, "__builtins__": sys.modules["builtins"]}
finder = _namespace(
    find_spec=_function(_find_spec.__code__, _globals), pending=_pending, busy=_busy, trust=None
)
del _namespace, _function, _globals


def install_finder(plan):
    # type: (Plan) -> bool
    # Install the post-import finder when the plan asks for in-process trust; modules already
    # imported (another .pth sorting first imported ssl) are handled at once.
    # The slow path stores None unless the plan patches ssl or redirects certifi; a cached
    # plan holds its file's trust section (castore_hook._plancache.trust_of reads either form).
    trust = plan.get("trust")
    if not trust:
        return False
    finder.trust = trust
    finder.pending[:] = WATCHED
    if finder not in sys.meta_path:
        sys.meta_path.insert(0, finder)
    if not sys.modules.keys().isdisjoint(WATCHED):
        from castore_hook import _inprocess

        _inprocess.patch_already_imported()
    return True


def run():
    # type: () -> None
    # Entry point of castore_hook.start (PEP 829) and of the .pth import below. Never raises.
    # A hit touches no other module; a miss hands over to castore_hook._slowpath.
    #
    # python -E / -I: CASTORE_HOOK_* are ignored like PYTHON*, but a frozen app (PyInstaller,
    # PyOxidizer) is started isolated by its packager, not by the user: honour them there
    # (castore_hook.config.hook_environ_ignored). The kill switch counts when set and not
    # "" / "0" (castore_hook.config.flag). Tests pin both copies.
    global state
    if state is not None:
        return
    current = {"outcome": "disabled"}  # type: dict[str, Any]
    state = current
    try:
        ignore_env = bool(sys.flags.ignore_environment) and not getattr(sys, "frozen", False)
        # ("" and "0" are the only strings in "0": one constant string, no tuple to unmarshal.)
        current["debug"] = not ignore_env and getenv("CASTORE_HOOK_DEBUG") not in "0"
        if ignore_env or getenv("CASTORE_HOOK_DISABLE") in "0":
            lookup = os.environ._data.get  # type: ignore[attr-defined]
            plan, reason, where, path = find_plan(lookup, getenv, ignore_env)
            applied = None if plan is None else apply_plan(plan, os.environ)
            current.update(outcome="hit", cache_file=path, plan=plan, applied=applied)
            if where != "user":  # why the user's own cache was not used (status)
                current.update(location=where, passed=reason)
            if applied is None:
                from castore_hook import _slowpath  # a miss: costly imports are allowed now

                _slowpath.decide_on_miss(current, ignore_env, reason)
            elif plan is not None:
                # The stats only served the check: free their tuples now rather than keep
                # them for the process's life (each tracked object counts towards the
                # collector's next pass; benchmarks/README.md).
                del plan["stats"]
                install_finder(plan)
    except BaseException as exc:  # start-up never fails (docs/architecture.md, "Failure policy")
        current["outcome"] = "error"
        current["error"] = type(exc).__name__ + ": " + str(exc)
    if current["debug"]:
        try:
            from castore_hook import _trace

            _trace.startup(current)
        except BaseException:
            pass


# Run when site.py imports this module for castore_hook.pth, whose line is only
# "import _castore_hook": site.py compiles every .pth import line at every start, and a
# kill-switch test or "; _castore_hook.run()" in it measured +0.33 M instructions on every
# enabled start. site.main() processes .pth files before it defines builtins.copyright, so at
# start-up "site imported, copyright not yet there" says it, for nearly nothing. Later (shiv
# calls site.addsitedir() at run time, and castore_hook.api imports this module) the stack
# is searched for site.addpackage instead: 32 k instructions, as every frame it touches is
# materialised, so never at start-up. Imports from the API, tests or python -S apply nothing.
# site is frozen on 3.11+ ("<frozen site>"), so the module is matched, not the file.
_site_done = hasattr(sys.modules["builtins"], "copyright")
_frame = sys._getframe() if _site_done else None  # type: Any
while _frame is not None:
    if _frame.f_code.co_name == "addpackage" and _frame.f_globals.get("__name__") == "site":
        break
    _frame = _frame.f_back
if _frame is not None or (not _site_done and "site" in sys.modules):
    run()
del _frame, _site_done
