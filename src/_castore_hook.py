# castore-hook's start-up hot path: it runs in every interpreter, so it must cost almost nothing.
#
# castore_hook.pth ("import _castore_hook") and castore_hook.start (PEP 829, "_castore_hook:run")
# run this module while site processes site-packages. It imports only sys, os and marshal,
# which every interpreter has loaded before site runs. Read it top-down: the constants,
# run(), what run() calls, the post-import finder, then the lines at the bottom that tell
# whether site.py is importing it. docs/architecture.md ("Two paths", "The hot module") gives
# the reason for each trick named here; benchmarks/README.md the measurements behind them.
#
# Every byte and every surviving object of this module is paid by every interpreter, so it
# holds only what a cache hit runs: comments, not docstrings; type comments, not annotations;
# no keyword-argument calls or constant tuples where a plain form does (each is one more
# object for the cyclic collector to count). Deciding a plan is in castore_hook, imported on
# a miss only.
#
# Failure policy (docs/architecture.md, "Failure policy"): nothing here may raise, print
# (outside CASTORE_HOOK_DEBUG) or block. Every exception, BaseException included, stops at run().

import marshal
import os
import sys

# Only mypy runs this block (it takes TYPE_CHECKING as true). Every name in it still reaches
# the .pyc, hence few imports and types spelt out in the type comments. Their vocabulary: a
# plan and start-up's record are castore_hook._contracts' Plan and StartupState (c.Plan,
# c.StartupState: the one description of their fields); a getter (str) -> str ("" when unset)
# reads a variable; a lookup (os.environ._data.get) reads one in os.environ's own encoding.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import typing as t  # noqa: F401 - used in type comments

    import castore_hook._contracts as c  # noqa: F401 - used in type comments

PLAN_FORMAT = 5
PLAN_LIMIT = 1 << 20
# A plan file: PLAN_MAGIC, a 4-byte checksum and the 4-byte length of the marshal payload,
# the payload, then the in-process trust section, which start-up only measures (it is checked
# and unmarshalled when ssl or certifi is imported). The checksum guards marshal.loads, which
# trusts the lengths inside its input (docs/architecture.md, "The plan").
PLAN_MAGIC = b"castore-hook plan 5\n"
PLAN_CHECK_MODULUS = 1073741789  # the largest prime below 2**30: one-digit division in C
_HEAD = len(PLAN_MAGIC) + 8
# What the hook changed ("NAME<TAB>ORIGINAL<TAB>NEW" per line), so that a child interpreter
# tells its parent's exports from its user's own values (castore_hook._plankey).
EXPORTED_VAR = "CASTORE_HOOK_EXPORTED"
# The only variables the hook may set (docs/architecture.md, "Applying a plan");
# castore_hook.config imports this set rather than keeping a copy.
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
# A plan is opened without following a link (O_NOFOLLOW), without becoming the controlling
# terminal of a session leader (O_NOCTTY: a link or device planted where a plan belongs), and
# without blocking on a FIFO (O_NONBLOCK); what was opened is then checked with fstat. os.open
# adds O_CLOEXEC itself (PEP 446). Windows has none of these and needs O_BINARY. No
# getattr(os, name, default): a miss raises inside.
if sys.platform == "win32":
    _OPEN_FLAGS = os.O_RDONLY | os.O_BINARY
else:
    _OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY
# Plan files and their folders must belong to this user and be writable by no one else.
# Windows has no uid and reports every writable file as 0o666: ACLs decide there.
_UID = os.getuid() if hasattr(os, "getuid") else None
_MINE = (_UID,)  # who may own a plan in the user's own folders
_FILE_MASK = 0o170000 if _UID is None else 0o170022
_FS_ENCODING = None if os.name == "nt" else sys.getfilesystemencoding()
# os.environ's own mapping (os.environ changes it in place; it is never rebound).
_ENVIRON = os.environ._data  # type: dict[t.Any, t.Any]  # type: ignore[attr-defined]

# What happened at start-up (castore_hook.status reports it; castore_hook._session keeps what
# activate() and deactivate() did later). None until run() is called, which makes run()
# idempotent: a venv may process site-packages twice.
state = None  # type: t.Optional[c.StartupState]


def run():
    # type: () -> None
    # Entry point of castore_hook.start and of the .pth import (bottom of this file). Never
    # raises. A hit touches no other module; a miss asks castore_hook._slowpath for a plan
    # and uses it exactly as a cached one.
    #
    # python -E / -I: CASTORE_HOOK_* are ignored like PYTHON*, but a frozen app (PyInstaller,
    # PyOxidizer) is started isolated by its packager, not by the user: honour them there.
    # The kill switch counts when set and not "" / "0" ("" and "0" are the only strings in
    # "0"). castore_hook.config.hook_environ_ignored and config.flag say the same (pinned).
    global state
    if state is not None:
        return
    current = {"outcome": "disabled"}  # type: c.StartupState
    state = current
    try:
        ignore_env = bool(sys.flags.ignore_environment) and not getattr(sys, "frozen", False)
        current["debug"] = not ignore_env and getenv("CASTORE_HOOK_DEBUG") not in "0"
        if ignore_env or getenv("CASTORE_HOOK_DISABLE") in "0":
            plan, reason, where, path = find_plan(_ENVIRON.get, getenv, ignore_env)
            if plan is not None and use_plan(plan, current):
                current["outcome"] = "hit"
                current["cache_file"] = path
                current["location"] = where  # user, fallback or shared
                current["passed"] = reason  # why the user's own cache had no plan
                # The stats only served the check: free their tuples now, not at exit.
                del plan["stats"]
            else:
                import castore_hook._slowpath as slowpath  # a miss: costly imports allowed now

                plan, facts = slowpath.decide_on_miss(ignore_env, reason)
                current.update(facts)
                use_plan(plan, current)
    except BaseException as exc:  # start-up never fails (docs/architecture.md, "Failure policy")
        current["outcome"] = "error"
        current["error"] = type(exc).__name__ + ": " + str(exc)
    if current["debug"]:
        try:
            import castore_hook._trace as trace

            trace.startup(current)
        except BaseException:
            pass


def find_plan(
    lookup,  # type: t.Callable[[t.Any], t.Any]
    get,  # type: t.Callable[[str], str]
    ignore_env,  # type: bool
):
    # type: (...) -> tuple[t.Optional[c.Plan], str, str, t.Optional[str]]
    # (plan, why the user cache had none, where it was found, its file), looking in order:
    # the user cache folder (or this user's own, "own", when the variables name a place that
    # is not this user's); the per-user fallback folders; the environment's shared plan
    # (castore-hook refresh --shared), owned by root or by the owner of sys.prefix, and valid
    # for any user without a config file or site-packages of their own: its key watches no
    # per-user location, so those are checked here (docs/architecture.md, "Where plans are
    # cached"). A miss returns the user cache's plan file, where the slow path stores first.
    folder, path = plan_path(get, ignore_env)
    plan, reason = valid_cached_plan(lookup, ignore_env, folder, path)
    where = "user"
    # A miss where the home (two steps up) exists: it may be another user's (root under sudo
    # -E); _castore_hook_paths judges it and looks in this user's own cache folder instead.
    if plan is None and folder and os.access(folder[: folder.rfind("/", 0, -14)], os.F_OK):
        import _castore_hook_paths as paths

        plan, reason, where, folder, path = paths.own_plan(
            lookup, get, ignore_env, folder, path, reason
        )
    if plan is not None:
        return plan, reason, where, path
    # The plan file's name, the same in every folder ("/plan-<tag><prefix>.marshal").
    base, file = (folder, path) if path else plan_path(get, ignore_env, os.sep)
    name = file[len(base) :]  # type: ignore[arg-type,index]
    # os.access first: most candidates do not exist, and it fails cheaper than os.open.
    for other in fallback_dirs(get):
        if os.access(other, os.F_OK):
            plan = valid_cached_plan(lookup, ignore_env, other, other + name, _MINE, os.lstat)[0]
            if plan is not None:
                return plan, reason, "fallback", other + name
    # The shared folder as castore_hook._plancache.shared_dir names it; none when an
    # in-memory importer (PyOxidizer) loaded this module: it has no __file__ there.
    here = globals().get("__file__")
    config = cache_dir(get, sys.platform, True, True)
    if (
        here
        and os.path.isabs(here)
        and (config is None or not os.access(config + os.sep + "config.toml", os.F_OK))
        and getattr(sys.modules.get("site"), "USER_SITE", None) not in sys.path
    ):
        other = os.path.dirname(here) + os.sep + "castore-hook-shared"
        try:
            owner = os.stat(sys.prefix).st_uid  # the environment's owner
        except (OSError, ValueError):
            owner = 0
        plan = valid_cached_plan(lookup, ignore_env, other, other + name, (0, owner), os.lstat)[0]
        if plan is not None:
            return plan, reason, "shared", other + name
    return plan, reason, "user", path


def plan_path(
    get,  # type: t.Callable[[str], str]
    ignore_env,  # type: bool
    folder=None,  # type: t.Optional[str]
):
    # type: (...) -> tuple[t.Optional[str], t.Optional[str]]
    # (cache folder, plan file) of this interpreter: the one recipe that start-up, activate(),
    # refresh, status and doctor share; the user cache folder unless folder is given. One plan
    # file per interpreter and isolation mode (cache tag + sys.prefix made into a file name),
    # so Pythons sharing a folder never evict each other's plans; a prefix too long for a file
    # name gets a digest (a tuple of ints hashes alike in every process, no hashlib).
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


def cache_dir(get, platform=sys.platform, ignore_env=False, config=False):
    # type: (t.Callable[[str], str], str, bool, bool) -> t.Optional[str]
    # The user cache folder: an absolute CASTORE_HOOK_CACHE_DIR, else platformdirs'
    # user_cache_dir("castore-hook", appauthor=False) written out (importing platformdirs
    # is too slow here); with config, its user_config_dir. As platformdirs 4: an absolute
    # XDG_CACHE_HOME (XDG_CONFIG_HOME) wins on Linux and macOS; else the home's .cache
    # (Library/Caches), the home being an absolute HOME, else the password database's, as
    # os.path.expanduser does (pwd only then). tests/unit/test_locations.py pins every case
    # against the installed platformdirs.
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
            try:
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


def getenv(name):
    # type: (str) -> str
    # os.environ.get(name, "") without the KeyError that Mapping.get raises and catches for
    # every unset name, and most names read here are unset. It reads os.environ's own mapping
    # (_ENVIRON), keyed as os.py keys it: upper-case str on Windows, else bytes (the names
    # read here are ASCII, the same bytes in every file-system encoding); values decoded as
    # os.py decodes them (test_getenv_matches_os_environ pins the two). Every function here
    # reads variables through such a get(name) -> str ("" when unset);
    # castore_hook._plankey.getter makes one from any mapping.
    if _FS_ENCODING is None:
        return _ENVIRON.get(name.upper(), "")  # type: ignore[no-any-return]
    value = _ENVIRON.get(name.encode())
    return "" if value is None else value.decode(_FS_ENCODING, "surrogateescape")


def fallback_dirs(get):
    # type: (t.Callable[[str], str]) -> t.Iterator[str]
    # Where plans are cached when the user cache folder cannot be written (a service user's
    # missing home, a read-only image), in order: a folder per uid in XDG_RUNTIME_DIR, else in
    # tempfile's candidates (TMPDIR, TEMP, TMP, /tmp, /var/tmp, /usr/tmp), absolute ones only;
    # none on Windows. A generator: start-up reads only the variables it gets to.
    # castore_hook._plancache.fallback_folder makes the first usable one.
    if _UID is None:
        return
    for base in (
        "XDG_RUNTIME_DIR",
        "TMPDIR",
        "TEMP",
        "TMP",
        "/tmp",  # noqa: S108 - a folder of our own in it, checked before use
        "/var/tmp",  # noqa: S108
        "/usr/tmp",
    ):
        base = base if base[0] == "/" else get(base)  # a folder, or a variable naming one
        if base[:1] == "/":
            yield base.rstrip("/") + "/castore-hook-" + str(_UID)


def valid_cached_plan(
    lookup,  # type: t.Callable[[t.Any], t.Any]
    ignore_env,  # type: bool
    folder,  # type: t.Optional[str]
    path,  # type: t.Optional[str]
    owners=None,  # type: t.Optional[tuple[t.Optional[int], ...]]  # None: this user
    stat=None,  # type: t.Any  # None: os.stat
):
    # type: (...) -> tuple[t.Optional[c.Plan], str]
    # The plan cached at path if it still holds here, else (None, why not). It holds when it
    # was made for this Python (castore_hook._plankey.plan_key writes the same identity), the
    # variables it watches are in one of the states it accepts (lookup reads os.environ's own
    # encoding), and every path that decided it has the same stat signature. Whoever can
    # write the folder could swap the plan or the exported bundle, hence its owner and mode
    # check, before anything in it is opened (stat is os.lstat where a symlink must not stand
    # in for the folder: a folder another user planted is refused unopened).
    plan = None
    reason = "no cache folder"
    if folder and path:
        try:
            st = (stat or os.stat)(folder)
        except (OSError, ValueError):
            st = None
        if st is None:
            reason = "no plan cached"
        elif _UID is not None and (
            st.st_uid not in (owners or _MINE) or st.st_mode & 0o170022 != 0o40000
        ):
            reason = "cache folder not owned by this user"
        else:
            plan, reason = read_plan(path, owners)
    if plan is None:
        return plan, reason
    try:
        key = plan["key"]
        if key[:4] != (sys.hexversion, sys.platform, sys.prefix, ignore_env):
            reason = "made for another Python"
        elif tuple(map(lookup, key[4])) not in key[5]:  # a few tuples compared, nothing hashed
            reason = "environment changed"
        else:
            # castore_hook._safefile.stat_signature, written out (one call less per file):
            # mode and owner too, as chmod/chown decide trust yet change neither mtime nor size.
            # A shared plan travels in images (docs/architecture.md, "A shared plan travels"):
            # its signatures keep what a pulled image keeps (whole-second mtime, a file's size,
            # mode, owner) and "portable" maps its small files to content digests, compared by
            # _castore_hook_paths only when that signature differs (a ConfigMap's fresh mtime).
            portable = plan.get("portable")
            for file, signature in plan["stats"]:
                now = None
                try:  # most files the plan saw missing are still missing: os.access is cheaper
                    if signature is not None or os.access(file, os.F_OK):
                        st = os.stat(file)
                        if portable is None:
                            now = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid)
                        else:  # whole seconds, no inode, a size for files (st_mode >> 15: 1)
                            now = (
                                st.st_mtime_ns // 1000000000,
                                st.st_size * (st.st_mode >> 15),
                                0,
                                st.st_mode,
                                st.st_uid,
                            )
                except (OSError, ValueError):
                    pass
                if now != signature:
                    if now and portable and portable.get(file):
                        import _castore_hook_paths as paths

                        if paths.same_content(file, portable[file]):
                            continue
                    reason = "changed: " + file
                    break
            else:
                return plan, reason
    except Exception:  # any other shape is a hostile or corrupt plan; a folder gone
        reason = "plan cache is malformed"
    return None, reason


def read_plan(path, owners=None):
    # type: (str, t.Optional[tuple[t.Optional[int], ...]]) -> tuple[t.Optional[c.Plan], str]
    # The plan at path if it is intact and its owner is in owners (None: this user), else
    # (None, reason). Reads st_size + 1 bytes (to notice growth), not PLAN_LIMIT: os.read
    # allocates what it is asked. The plan is hostile until use_plan's checks, typed as the
    # contract it should hold.
    plan = None  # type: t.Any
    reason = "no plan cached"
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError):
        return plan, reason
    try:
        st = os.fstat(fd)
        data = b""
        if st.st_mode & _FILE_MASK == 0o100000 and (_UID is None or st.st_uid in (owners or _MINE)):
            data = os.read(fd, st.st_size + 1) if st.st_size <= PLAN_LIMIT else b"too large"
    except OSError:
        data = b""
    os.close(fd)
    reason = "plan cache is empty, foreign, writable by others or not a regular file"
    if data:
        reason = "plan cache is corrupt or of another version"
        end = _HEAD + int.from_bytes(data[_HEAD - 4 : _HEAD], "big")
        payload = data[_HEAD:end]
        if (
            data[: _HEAD - 8] == PLAN_MAGIC
            and len(data) >= end
            and int.from_bytes(data[_HEAD - 8 : _HEAD - 4], "big")
            == int.from_bytes(payload, "little") % PLAN_CHECK_MODULUS
        ):
            try:
                plan = marshal.loads(payload)  # noqa: S302 - our own file, owner- and sum-checked
            except Exception:
                plan = None
            # The trust section is checked when used; its length now (truncation is likely).
            if type(plan) is dict and len(data) - end == plan.get("trust_size", 0):
                plan["trust"] = data[end:]
                return plan, ""  # type: ignore[return-value]  # a dict: the contract's shape
            plan = None
    return plan, reason


def use_plan(plan, facts, environ=None):
    # type: (c.Plan, c.StartupState, t.Optional[t.MutableMapping[str, str]]) -> bool
    # Apply the plan's variable changes and its EXPORTED_VAR record to os.environ, then
    # install the post-import finder for its in-process trust; record the plan and what
    # changed ("applied") in facts. The one way a plan is used: by run() on a hit or after a
    # miss, and by castore_hook.activate(). Given another mapping, only that mapping changes
    # (a dry run: castore_hook._slowpath.plan_for's safety check). False, with nothing
    # touched and "applied" None, if the plan is unsafe.
    #
    # The cache is treated as hostile even though we wrote it: allow-listed names only, and
    # only paths that the plan's stat list shows to exist (valid_cached_plan has just
    # re-stat'ed them; the slow path writes absolute paths only). Shape errors (unhashable,
    # wrong arity, not str) raise and land in the except: less bytecode than type checks.
    facts["plan"] = plan
    facts["applied"] = None
    try:
        present = dict(plan["stats"])
        to_set = plan["set"]
        to_unset = plan["unset"]
        for name, value in to_set:
            if name not in EXPORT_ALLOWED or present.get(value) is None:
                return False
        for name in to_unset:
            if name not in EXPORT_ALLOWED:
                return False
        applied = dict(to_set)  # type: dict[str, t.Optional[str]]
        applied.update(dict.fromkeys(to_unset))
    except Exception:
        return False
    target = os.environ if environ is None else environ
    if applied:
        # The record first: if it cannot be set (not a str, a NUL), nothing has changed yet.
        # value: str as the contract says, else the TypeError below (then bytes for putenv).
        for name, value in ((EXPORTED_VAR, plan["record"]), *to_set):  # type: ignore[assignment]
            if target is os.environ and _FS_ENCODING is not None:
                # What os.environ[name] = value does on POSIX, without its four Python-level
                # calls (benchmarks/README.md: 4.6 k instructions per start); the names are
                # ASCII (allow-listed above), the value encoded as os.py encodes it.
                key = name.encode()
                value = str.encode(value, _FS_ENCODING, "surrogateescape")  # type: ignore[assignment]
                os.putenv(key, value)
                _ENVIRON[key] = value
            else:
                target[name] = value
        for name in to_unset:
            target.pop(name, None)
    facts["applied"] = applied
    trust = plan.get("trust")  # the slow path's dict or the plan file's section, or None
    if trust and environ is None:
        set_finder(trust, WATCHED)
        # Modules already imported (another .pth sorting first imported ssl): at once.
        if not sys.modules.keys().isdisjoint(WATCHED):
            import castore_hook._inprocess as inprocess

            inprocess.patch_already_imported()
    return True


# The post-import finder lets castore_hook._inprocess act on ssl and certifi right after their
# first import (docs/architecture.md, "Applying a plan"); only the membership test below runs
# per import. No class (creating one is costly at start-up): a SimpleNamespace holding
# find_spec, the modules still pending and the plan's trust section, written by set_finder
# only. find_spec runs with a globals dict of its own holding just the pending list, so that
# sys.meta_path does not keep this module's globals (and os with them) alive into a second
# collection at exit.
_pending = []  # type: list[str]


def _find_spec(fullname, path=None, target=None):
    # type: (str, t.Any, t.Any) -> t.Any
    if fullname not in _pending:
        return None
    import castore_hook._inprocess as inprocess

    return inprocess.find_wrapped_spec(fullname, path, target)


_namespace = type(sys.implementation)  # type: t.Any
_function = type(_find_spec)  # type: t.Any
finder = _namespace(
    find_spec=_function(
        # (__builtins__ given explicitly: before 3.10 a function whose globals lack it has none.)
        _find_spec.__code__,
        {"_pending": _pending, "__builtins__": sys.modules["builtins"]},
        "find_spec",
        _find_spec.__defaults__,
    ),
    pending=_pending,
    trust=None,
)
del _namespace, _function, _find_spec


def set_finder(trust, pending):
    # type: (t.Any, t.Sequence[str]) -> None
    # The one writer of the finder's state: use_plan arms it with a plan's trust section;
    # castore_hook._inprocess crosses off each module it has handled and disarms it (None, ())
    # on deactivate(). In sys.meta_path exactly while some module is pending: inserted first
    # when armed, then left where it is (finders added later keep their places).
    finder.trust = trust
    finder.pending[:] = pending
    if finder not in sys.meta_path:
        if pending:
            sys.meta_path.insert(0, finder)
    elif not pending:
        sys.meta_path.remove(finder)


# Run when site.py imports this module for castore_hook.pth, whose line stays a bare import
# (site.py compiles each .pth line at every start). site.main() processes .pth files before
# it defines builtins.copyright, so at start-up "site imported, copyright not yet there" says
# it for nearly nothing. Later (shiv calls site.addsitedir() at run time) the stack is
# searched for site.addpackage instead, which costs more, so never at start-up. Imports from
# the API, tests or python -S apply nothing. site is frozen on 3.11+ ("<frozen site>"), so
# the module is matched, not the file.
_site_done = "copyright" in sys.modules["builtins"].__dict__  # (hasattr: an exception inside)
_frame = sys._getframe() if _site_done else None  # type: t.Any
while _frame is not None:
    if _frame.f_code.co_name == "addpackage" and _frame.f_globals.get("__name__") == "site":
        break
    _frame = _frame.f_back
if _frame is not None or (not _site_done and "site" in sys.modules):
    run()
del _frame, _site_done
