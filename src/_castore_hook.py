"""castore-hook's start-up hot path: runs in every interpreter, so it must cost almost nothing.

``castore_hook.pth`` (and ``castore_hook.start`` on Python 3.15+) call :func:`run` while
``site`` processes site-packages. This module is deliberately one top-level file, not a
submodule of ``castore_hook``: importing a package plus a submodule costs about 60 % more than
one module (DESIGN §1). It imports only ``sys``, ``os`` and ``marshal``, which every
interpreter has already loaded by the time ``site`` runs.

What it does, warm cache: compute the *key* of this interpreter (a few env lookups), read the
plan cached for this interpreter (one small ``marshal`` file), compare the ``stat`` signature of
every path that decided the plan, and apply the plan (set/unset a few environment variables).
Anything else — a missing, stale, foreign or corrupt cache — goes to the slow path
(``castore_hook._slowpath``), which may import platformdirs, tomllib and ssl.

Failure policy (DESIGN §5): nothing here may raise, print (outside ``CASTORE_HOOK_DEBUG``) or
block. Every exception, ``BaseException`` included, stops at :func:`run`.
"""

import marshal
import os
import sys

# mypy treats a name spelled TYPE_CHECKING as true; at run time nothing from typing is loaded.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, MutableMapping, Optional

    Environ = MutableMapping[str, str]
    EnvView = Mapping[str, str]
    Record = dict[str, tuple[str, str]]
    Key = tuple[object, ...]
    Plan = dict[str, Any]

#: Version of the cache format; a plan with another value is a miss.
PLAN_FORMAT = 1
#: Largest plan file read. A real plan is a few KB.
PLAN_LIMIT = 1 << 20
#: Every plan file starts with this, then the payload's length and byte sum (8 bytes each).
#: ``marshal.loads`` trusts lengths inside its input (a list header claiming 2**31 items is
#: allocated before the data runs out), so a torn or corrupted file must be rejected before
#: marshal sees it. ``len`` and ``sum`` over bytes run in C: ~20 k instructions for a plan.
PLAN_MAGIC = b"castore-hook plan\n"
#: The variable recording what the hook changed, so a child interpreter rebuilds its
#: parent's key (and so reuses its plan) instead of mistaking our exports for the user's.
EXPORTED_VAR = "CASTORE_HOOK_EXPORTED"
#: Variables the hook may ever set (DESIGN §3). Duplicated from ``castore_hook.config``
#: because importing that module costs start-up time; a unit test pins the two together.
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
#: The user's own CA variables: their values are part of the key (the ``env`` source).
USER_CA_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR")
#: Our own variables that change the decision (all ignored under ``python -E``/``-I``).
HOOK_VARS = ("CASTORE_HOOK_CONFIG", "CASTORE_HOOK_SOURCES", "CASTORE_HOOK_EXTRA")
#: Variables platformdirs reads to place config files, on any platform.
LOCATION_VARS = (
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
    "APPDATA",
    "LOCALAPPDATA",
    "PROGRAMDATA",
    "WIN_PD_OVERRIDE_APPDATA",
    "WIN_PD_OVERRIDE_COMMON_APPDATA",
)
_FALSE_WORDS = ("", "0", "false", "no", "off")

#: What happened in this interpreter; ``castore_hook.status()`` reports it. ``None`` until
#: :func:`run` has been called, which also makes :func:`run` idempotent (a venv may process
#: its site-packages twice, CPython issue 75723).
state: "Optional[dict[str, Any]]" = None


def _flag(environ: "EnvView", name: str) -> bool:
    return environ.get(name, "").strip().lower() not in _FALSE_WORDS


def hook_environ_ignored() -> bool:
    """Whether ``CASTORE_HOOK_*`` must be ignored, as ``python -E``/``-I`` ignore ``PYTHON*``."""
    return bool(sys.flags.ignore_environment)


def parse_exported(value: "Optional[str]") -> "Record":
    """Decode :data:`EXPORTED_VAR`: ``{name: (original, new)}``; junk yields ``{}`` entries.

    One line per variable, ``NAME<TAB>ORIGINAL<TAB>NEW``; an empty ``NEW`` means the hook
    removed the variable, an empty ``ORIGINAL`` that it was unset before.
    """
    record: Record = {}
    if not value:
        return record
    for line in value.split("\n"):
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] in EXPORT_ALLOWED:
            record[parts[0]] = (parts[1], parts[2])
    return record


def user_ca_values(environ: "EnvView", record: "Record") -> "tuple[str, ...]":
    """The user's own ``SSL_CERT_FILE``/``SSL_CERT_DIR``, with the hook's exports undone.

    A value equal to what a parent hook exported is the parent's doing: the user's value is
    the original it replaced. A value the user changed since is the user's.
    """
    values: list[str] = []
    for name in USER_CA_VARS:
        current = environ.get(name, "")
        entry = record.get(name)
        if entry is not None and current == entry[1]:
            current = entry[0]
        values.append(current)
    return tuple(values)


def interpreter_key(environ: "EnvView", ignore_env: bool) -> "Key":
    """Everything outside the file system that decides the plan, as one comparable tuple."""
    record = {} if ignore_env else parse_exported(environ.get(EXPORTED_VAR))
    hook = ("", "", "") if ignore_env else tuple(environ.get(name, "") for name in HOOK_VARS)
    return (
        PLAN_FORMAT,
        sys.hexversion,
        sys.platform,
        sys.prefix,
        ignore_env,
        hook,
        user_ca_values(environ, record),
        tuple(environ.get(name, "") for name in LOCATION_VARS),
    )


def cache_dir(
    environ: "EnvView", platform: str = sys.platform, ignore_env: bool = False
) -> "Optional[str]":
    """The plan-cache folder: ``platformdirs.user_cache_dir("castore-hook", appauthor=False)``.

    Written by hand because importing platformdirs costs ~30 ms at start-up; the unit test
    ``test_cache_dir_matches_platformdirs`` pins it to platformdirs on each platform.
    ``CASTORE_HOOK_CACHE_DIR`` overrides it (only when absolute).
    """
    if not ignore_env:
        override = environ.get("CASTORE_HOOK_CACHE_DIR", "")
        if override and os.path.isabs(override):
            return override
    if platform == "win32":
        base = environ.get("WIN_PD_OVERRIDE_LOCAL_APPDATA", "").strip()
        base = base or environ.get("LOCALAPPDATA", "")
        if not base:
            return None
        return base + "\\castore-hook\\Cache"
    # platformdirs >= 4.x: an absolute XDG_CACHE_HOME wins on Linux *and* macOS; a relative
    # one is ignored, as is a relative HOME.
    xdg = environ.get("XDG_CACHE_HOME", "")
    if xdg.startswith("/"):
        return xdg + "/castore-hook"
    home = environ.get("HOME", "")
    if not home.startswith("/"):
        return None
    home = home.rstrip("/")
    if platform == "darwin":
        return home + "/Library/Caches/castore-hook"
    return home + "/.cache/castore-hook"


def plan_file_name() -> str:
    """One plan file per interpreter (cache tag + FNV-1a of ``sys.prefix``), so several
    Pythons sharing a cache folder never evict each other's plans."""
    digest = 0x811C9DC5
    for byte in sys.prefix.encode("utf-8", "surrogateescape"):
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    tag = sys.implementation.cache_tag or "python"
    return f"plan-{tag}-{digest:08x}.marshal"


def signature(path: str) -> "Optional[tuple[int, int, int, int, int]]":
    """``(st_mtime_ns, st_size, st_ino, st_mode, st_uid)`` or ``None``.

    Mode and owner are in because they decide whether a file may be trusted at all (a
    ``chmod g+w`` or ``chown`` changes neither mtime nor size). Same as
    ``_safefile.stat_signature``; a unit test pins the two together.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid)


def read_plan(path: str) -> "tuple[Optional[Plan], str]":
    """The cached plan at ``path`` if it is ours and well-formed, else ``(None, reason)``."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None, "no plan cached"
    try:
        st = os.fstat(fd)
        if (st.st_mode & 0o170000) != 0o100000:
            return None, "plan cache is not a regular file"
        getuid = getattr(os, "getuid", None)
        if getuid is not None and (st.st_uid != getuid() or st.st_mode & 0o022):
            return None, "plan cache not owned by this user or writable by others"
        if st.st_size > PLAN_LIMIT:
            return None, "plan cache too large"
        data = os.read(fd, PLAN_LIMIT + 1)
    finally:
        os.close(fd)
    plan, reason = decode_plan(data)
    if plan is None:
        return None, reason
    return plan, ""


def encode_plan(plan: "Plan") -> bytes:
    """The bytes of a plan file: magic, payload length, payload byte sum, marshal payload."""
    payload = marshal.dumps(plan)
    return (
        PLAN_MAGIC
        + len(payload).to_bytes(8, "big")
        + (sum(payload) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
        + payload
    )


def decode_plan(data: bytes) -> "tuple[Optional[Plan], str]":
    """The plan in ``data``, or ``(None, reason)``; never raises, never feeds marshal junk."""
    head = len(PLAN_MAGIC)
    if data[:head] != PLAN_MAGIC or len(data) < head + 16:
        return None, "plan cache has another format"
    payload = data[head + 16 :]
    if int.from_bytes(data[head : head + 8], "big") != len(payload):
        return None, "plan cache is truncated"
    if int.from_bytes(data[head + 8 : head + 16], "big") != sum(payload) & 0xFFFFFFFFFFFFFFFF:
        return None, "plan cache is corrupt"
    try:
        plan = marshal.loads(payload)  # noqa: S302 - our own file, owner- and sum-checked
    except Exception:
        return None, "plan cache is corrupt"
    if type(plan) is not dict or plan.get("format") != PLAN_FORMAT:
        return None, "plan cache has another format"
    return plan, ""


def check_plan(plan: "Plan", key: "Key") -> str:
    """Why the cached plan no longer fits (a sentence), or ``""`` when it does."""
    if plan.get("key") != key:
        return "environment or interpreter changed"
    stats = plan.get("stats")
    if type(stats) is not tuple:
        return "plan cache is malformed"
    for entry in stats:
        if type(entry) is not tuple or len(entry) != 2 or type(entry[0]) is not str:
            return "plan cache is malformed"
        if signature(entry[0]) != entry[1]:
            return "changed: " + entry[0]
    return ""


def _valid_changes(plan: "Plan") -> "Optional[tuple[tuple[Any, ...], tuple[Any, ...]]]":
    """The plan's ``set``/``unset`` if every entry is safe to apply, else ``None``.

    Treats the cache as hostile even though we wrote it: only allow-listed names, only
    absolute paths that the key's ``stat`` list shows to exist, nothing that would corrupt
    :data:`EXPORTED_VAR`.
    """
    to_set = plan.get("set")
    to_unset = plan.get("unset")
    stats = plan.get("stats")
    if type(to_set) is not tuple or type(to_unset) is not tuple or type(stats) is not tuple:
        return None
    present = set()
    for entry in stats:
        if type(entry) is not tuple or len(entry) != 2 or type(entry[0]) is not str:
            return None
        if entry[1] is not None:
            present.add(entry[0])
    for entry in to_set:
        if type(entry) is not tuple or len(entry) != 2:
            return None
        name, value = entry
        if type(name) is not str or name not in EXPORT_ALLOWED:
            return None
        if type(value) is not str or value not in present:
            return None
        if not os.path.isabs(value) or "\n" in value or "\t" in value or "\0" in value:
            return None
    for name in to_unset:
        if type(name) is not str or name not in EXPORT_ALLOWED:
            return None
    return to_set, to_unset


def apply_plan(plan: "Plan", environ: "Environ") -> "Optional[dict[str, Optional[str]]]":
    """Apply the plan's environment changes; return what changed (for ``status``).

    Records each change in :data:`EXPORTED_VAR` with the value it replaced, so children
    rebuild this interpreter's key. Returns ``None`` if the plan is unsafe to apply.
    """
    changes = _valid_changes(plan)
    if changes is None:
        return None
    to_set, to_unset = changes
    old_record = parse_exported(environ.get(EXPORTED_VAR))
    originals = dict(zip(USER_CA_VARS, user_ca_values(environ, old_record)))
    lines: list[str] = []
    applied: dict[str, Optional[str]] = {}
    for name, value in to_set:
        original = originals.get(name, environ.get(name, ""))
        environ[name] = value
        applied[name] = value
        if "\n" not in original and "\t" not in original:
            lines.append(name + "\t" + original + "\t" + value)
    for name in to_unset:
        original = originals.get(name, environ.get(name, ""))
        if name in environ:
            del environ[name]
        applied[name] = None
        if "\n" not in original and "\t" not in original:
            lines.append(name + "\t" + original + "\t")
    if lines:
        environ[EXPORTED_VAR] = "\n".join(lines)
    return applied


#: Modules whose first import triggers ``castore_hook._hooks.after_import``.
WATCHED = ("ssl", "certifi", "pip._vendor.certifi")


class _WrappedLoader:
    """Runs the real loader, then lets castore_hook act on the fresh module."""

    def __init__(self, loader: "Any", finder: "_AfterImport", name: str) -> None:
        self.loader = loader
        self.finder = finder
        self.name = name

    def create_module(self, spec: "Any") -> "Any":
        return self.loader.create_module(spec)

    def exec_module(self, module: "Any") -> None:
        # Put the real loader back first: importlib.resources (certifi.where) asks it for
        # resource readers, and nothing should ever see this wrapper.
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.finder.after(self.name, module)


class _AfterImport:
    """A ``sys.meta_path`` entry that applies the in-process trust when ``ssl``/``certifi`` are
    first imported (DESIGN §3). Written here, without ``importlib.util`` or ``threading``, so
    installing it costs one object at start-up; it removes itself once all are handled."""

    def __init__(self, hooks: "dict[str, Any]") -> None:
        self.hooks = hooks
        self.pending = list(WATCHED)
        self.busy: list[str] = []

    def find_spec(self, fullname: str, path: "Any" = None, target: "Any" = None) -> "Any":
        if fullname not in self.pending or fullname in self.busy:
            return None
        self.busy.append(fullname)
        try:
            for finder in list(sys.meta_path):
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self.busy.remove(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        spec.loader = _WrappedLoader(loader, self, fullname)
        return spec

    def after(self, name: str, module: "Any") -> None:
        if name in self.pending:
            self.pending.remove(name)
        if not self.pending and self in sys.meta_path:
            sys.meta_path.remove(self)
        try:
            from castore_hook import _hooks

            _hooks.after_import(name, module, self.hooks)
        except Exception as exc:  # a failing patch must never break the import itself
            if state is not None:
                state.setdefault("hook_errors", []).append(f"{name}: {exc}")
            _debug(f"could not apply in-process trust to {name}: {exc}")


def install_hooks(plan: "Plan") -> "Optional[_AfterImport]":
    """Install the post-import finder if the plan asks for in-process trust.

    Modules already imported (another ``.pth`` sorting first imported ``ssl``) are handled
    at once.
    """
    hooks = plan.get("hooks")
    if type(hooks) is not dict or not (hooks.get("patch") or hooks.get("certifi")):
        return None
    finder = _AfterImport(hooks)
    sys.meta_path.insert(0, finder)
    for name in WATCHED:
        module = sys.modules.get(name)
        if module is not None:
            finder.after(name, module)
    return finder


def _debug(message: str) -> None:
    if state is not None and state.get("debug"):
        try:
            sys.stderr.write("castore-hook: " + message + "\n")
            sys.stderr.flush()
        except Exception:
            pass


def obtain_plan(
    decide_environ: "EnvView", ignore_env: bool, cache_environ: "EnvView"
) -> "tuple[Plan, dict[str, Any]]":
    """The plan for an interpreter whose deciding environment is ``decide_environ``: the
    cached one when its key and every ``stat`` still match, else a fresh one (slow path),
    which is then cached. Returns the plan and facts for ``status`` (outcome, reasons).

    ``activate()`` calls this with explicit overrides in ``decide_environ``; start-up with
    ``os.environ`` itself.
    """
    facts: dict[str, Any] = {}
    key = interpreter_key(decide_environ, ignore_env)
    folder = cache_dir(cache_environ, sys.platform, ignore_env)
    path = folder + os.sep + plan_file_name() if folder else None
    facts["cache_file"] = path
    plan, reason = read_plan(path) if path else (None, "no cache folder")
    if plan is not None:
        reason = check_plan(plan, key)
        if not reason and _valid_changes(plan) is not None:
            facts["outcome"] = "hit"
            _debug("plan cache hit " + str(path))
            return plan, facts
        reason = reason or "plan cache holds unsafe changes"
    facts["outcome"] = "miss"
    facts["miss"] = reason
    _debug("slow path: " + reason)
    from castore_hook import _slowpath  # a miss: the costly imports are allowed from here on

    plan, note = _slowpath.resolve_and_store(decide_environ, key, folder, path, ignore_env)
    facts["cache_note"] = note
    return plan, facts


def _start(environ: "Environ") -> None:
    ignore_env = hook_environ_ignored()
    global state
    state = {"debug": not ignore_env and _flag(environ, "CASTORE_HOOK_DEBUG")}
    if not ignore_env and _flag(environ, "CASTORE_HOOK_DISABLE"):
        state["outcome"] = "disabled"
        state["reason"] = "CASTORE_HOOK_DISABLE is set"
        _debug("disabled by CASTORE_HOOK_DISABLE")
        return
    plan, facts = obtain_plan(environ, ignore_env, environ)
    state.update(facts)
    state["plan"] = plan
    applied = apply_plan(plan, environ)
    state["applied"] = applied
    if applied is not None:
        install_hooks(plan)
    if facts["outcome"] == "miss":
        note = facts.get("cache_note")
        _debug("applied " + repr(applied) + ("; " + note if note else ""))


def run() -> None:
    """Entry point of ``castore_hook.pth`` / ``castore_hook.start``. Never raises."""
    global state
    if state is not None:
        return
    try:
        _start(os.environ)
    except BaseException as exc:  # the failure policy: start-up never fails (DESIGN §5)
        if state is None:
            state = {}
        state["outcome"] = "error"
        state["error"] = f"{type(exc).__name__}: {exc}"
        _debug("error, interpreter left as it was: " + state["error"])
