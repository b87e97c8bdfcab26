"""Configuration: which CA sources castore-hook uses, from TOML files and the environment.

This is slow-path code (docs/architecture.md, "Configuration"): it runs when the plan cache is
missing or stale, and from ``castore-hook doctor``/``status``. Its answer decides which
certificate authorities every Python in the environment trusts, so it is written to one rule
(docs/architecture.md, "Failure policy"): **it never raises**.
Whatever the files or variables contain, the result is a ``Config`` whose ``problems`` say, in
plain sentences with file and line, what was wrong:

* a file that cannot be read or parsed at all makes the whole config *unusable* (a ``fatal``
  problem); the caller then leaves the interpreter exactly as stock Python, because guessing
  at half a config could silently trust the wrong CAs;
* a bad entry inside a good file (unknown key, unknown source, relative path, an export name
  that is not a CA variable) is dropped with a non-fatal problem and the rest still applies.

Environment variables are read only from the mapping the caller passes, never from
``os.environ``, so that ``python -E``/``-I`` (which must ignore ``CASTORE_HOOK_*`` like every
``PYTHON*`` variable) is honoured by the caller simply filtering that mapping.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from typing import Any, Callable, Mapping, Optional

import _castore_hook as hot
import _castore_hook_paths as paths
from castore_hook import _keytable, _plancache, _sourcetable
from castore_hook._record import FrozenRecord, Record
from castore_hook._safefile import CONFIG_LIMIT, UnsafeFile, is_kernel_path, read_regular_file

__all__ = [
    "DEFAULT_EXPORT",
    "DEFAULT_SOURCES",
    "EXPORT_ALL",
    "EXPORT_ALLOWED",
    "SOURCE_WORDS",
    "Config",
    "Problem",
    "config_paths",
    "flag",
    "hook_environ_ignored",
    "load_config",
    "parse_extra_env",
    "parse_sources_env",
    "validate_source",
]

#: Plain source words; ``file:/abs/path`` and ``dir:/abs/path`` are accepted as well. Both
#: come from the source table (``_sourcetable``), as do the defaults.
SOURCE_WORDS = tuple(s.word for s in _sourcetable.word_kinds())
#: What a ``file:``/``dir:`` token starts with.
_PATH_PREFIXES = tuple(s.prefix for s in _sourcetable.path_kinds())
DEFAULT_SOURCES = tuple(s.word for s in _sourcetable.SOURCES if s.default)
#: The key table's (``_keytable``) defaults, by key.
_DEFAULTS = {key.name: key.default for key in _keytable.KEYS}


def _list_default(name: str) -> tuple[str, ...]:
    value = _DEFAULTS[name]
    return value if isinstance(value, tuple) else ()


DEFAULT_EXPORT = _list_default("export")

#: The only variables castore-hook may export. A closed list, because a config that could set
#: any variable (``LD_PRELOAD``, ``PYTHONPATH``) would be a code-execution primitive. Its one
#: owner is the hot module, which checks every cached plan against it at start-up.
EXPORT_ALLOWED: frozenset[str] = hot.EXPORT_ALLOWED
# The order ``export = ["all"]`` expands to: the two OpenSSL variables first, because they are
# the ones most tools (and Python's own ``ssl`` module) read, then the rest by name.
_EXPORT_ORDER = (*DEFAULT_EXPORT, *sorted(EXPORT_ALLOWED.difference(DEFAULT_EXPORT)))
#: ``export = ["all"]`` is shorthand for every name in ``EXPORT_ALLOWED``.
EXPORT_ALL = "all"


def flag(environ: Mapping[str, str], name: str) -> bool:
    """A switch such as ``CASTORE_HOOK_DISABLE`` or ``CASTORE_HOOK_DEBUG`` is on when set to
    anything but ``""`` or ``"0"`` (the hot path spells the same rule out; a test pins them)."""
    return environ.get(name, "0") not in ("", "0")


def hook_environ_ignored() -> bool:
    """Whether ``CASTORE_HOOK_*`` is ignored here: under ``python -E``/``-I``, like every
    ``PYTHON*`` variable, except in a frozen app (PyInstaller, PyOxidizer), which its packager
    starts isolated, not the user. The hot path inlines the same test (pinned by a test)."""
    return bool(sys.flags.ignore_environment) and not getattr(sys, "frozen", False)


ENV_CONFIG = "CASTORE_HOOK_CONFIG"
ENV_SOURCES = "CASTORE_HOOK_SOURCES"
ENV_EXTRA = "CASTORE_HOOK_EXTRA"

#: Longest list we keep; bounds the work a hostile or mistaken config can cause.
MAX_ENTRIES = 64
#: Longest path we accept (Linux ``PATH_MAX``); longer ones are mistakes or attacks.
MAX_PATH = 4096
#: After this many unknown keys in one file we summarise instead of listing each one.
_MAX_UNKNOWN_REPORTED = 16

#: The application name platformdirs places files under, and the config file's name.
APP = "castore-hook"
FILE_NAME = "config.toml"
_BOOL_KEYS = tuple(key.name for key in _keytable.KEYS if key.kind == _keytable.BOOL)
_LIST_KEYS = tuple(key.name for key in _keytable.KEYS if key.kind == _keytable.LIST)
#: Every key, in the order documented and printed by ``config show`` (the key table's).
KEYS = tuple(key.name for key in _keytable.KEYS)
_BOM = b"\xef\xbb\xbf"


class Problem(FrozenRecord):
    """One thing wrong with the configuration, fit for ``doctor``/``status`` to print.

    ``path`` is the file the problem came from, or the environment variable's name when it came
    from the environment; ``fatal`` means the config as a whole cannot be used and the caller
    must leave Python stock.
    """

    __slots__ = ("fatal", "line", "message", "path", "transient")
    message: str
    path: Optional[str]
    line: Optional[int]
    fatal: bool
    transient: bool

    def __init__(
        self,
        message: str,
        path: Optional[str] = None,
        line: Optional[int] = None,
        fatal: bool = False,
        transient: bool = False,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.fatal = fatal
        # The failure may pass on its own (our own dependency could not be imported yet: pex
        # adds distributions one by one), so a decision based on it must not be cached.
        self.transient = transient

    def where(self) -> str:
        """``"path:line"``, ``"path"`` or ``""``: the prefix a diagnostic line starts with."""
        if self.path is None:
            return ""
        if self.line is None:
            return self.path
        return f"{self.path}:{self.line}"


class Config(Record):
    """The merged configuration, with where each value came from and what went wrong.

    One attribute per key of the key table (``_keytable``), set to its default here; the
    annotations below give them their types. ``candidates``: every config path considered,
    in read order, present or absent (the plan cache key stats all of them, so creating a
    config file later invalidates the cached plan). ``files_read``: those that existed and
    were read and parsed successfully. ``origins``: key -> ``"default"``, the file path, or
    the environment variable that set it.
    """

    __slots__ = tuple(sorted(("candidates", "files_read", "lines", "origins", "problems", *KEYS)))
    enabled: bool
    sources: tuple[str, ...]
    extra: tuple[str, ...]
    export: tuple[str, ...]
    patch: bool
    certifi: bool
    #: Contexts loading the hook's own bundle get its lazy, hashed-folder form instead.
    fast_contexts: bool
    #: False drops Python 3.13's VERIFY_X509_STRICT from the contexts whose trust the hook
    #: supplies (opt-in, always reported as a warning).
    x509_strict: bool

    def __init__(
        self,
        candidates: Optional[list[str]] = None,
        files_read: Optional[list[str]] = None,
        problems: Optional[list[Problem]] = None,
        origins: Optional[dict[str, str]] = None,
    ) -> None:
        for key, default in _DEFAULTS.items():
            setattr(self, key, default)
        #: key -> line of the file that set it (None: the environment or the default).
        self.lines: dict[str, Optional[int]] = {}
        self.candidates: list[str] = [] if candidates is None else candidates
        self.files_read: list[str] = [] if files_read is None else files_read
        self.problems: list[Problem] = [] if problems is None else problems
        self.origins: dict[str, str] = (
            dict.fromkeys(KEYS, "default") if origins is None else origins
        )

    @property
    def usable(self) -> bool:
        """False if any problem is fatal: the caller must then change nothing at all."""
        return not any(p.fatal for p in self.problems)


# --------------------------------------------------------------------------------------------
# Small helpers. Every one of them must cope with any Python object, because TOML tables and
# caller-supplied mappings can hold anything.


def _show(value: object, limit: int = 60) -> str:
    """``repr`` of a user-supplied string, shortened, so a message stays one readable line."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def _type_name(value: object) -> str:
    """The TOML word for a value's type, so messages speak the user's language, not Python's."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if value is None:
        return "nothing"
    return "a date/time" if type(value).__module__ == "datetime" else "an unexpected value"


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for a likely typo, else ``""``. Input is capped: difflib is
    quadratic and a hostile key could be a megabyte long. Imported here: only a config with a
    mistake pays for it, not every first start."""
    try:
        import difflib

        probe = word[:64].strip()
        match = difflib.get_close_matches(probe.lower(), [c.lower() for c in choices], n=1)
        if not match:
            return ""
        original = next(c for c in choices if c.lower() == match[0])
        if original == probe:
            return ""
        return f" (did you mean {original!r}?)"
    except Exception:
        return ""


def _path_reason(path: str) -> Optional[str]:
    """Why ``path`` cannot name a CA file or directory, or ``None`` if it may.

    Relative paths are refused because they would depend on the working directory of whatever
    program happens to start Python - a repository checkout could then choose its own CAs.
    """
    if "\x00" in path or "\n" in path or "\r" in path:
        return "contains a NUL or newline character"
    if len(path) > MAX_PATH:
        return f"is longer than {MAX_PATH} characters"
    if not os.path.isabs(path):
        return "is not absolute"
    return None


def validate_source(token: str) -> Optional[str]:
    """``None`` if ``token`` is a valid source, else the reason as a phrase (no trailing dot).

    Valid: one of ``SOURCE_WORDS``, ``file:/abs/path`` or ``dir:/abs/path`` (the source
    table's kinds, ``_sourcetable``). Case matters: the words are the same everywhere they are
    written, so ``doctor`` output can be copied.
    """
    try:
        if not isinstance(token, str):
            return f"a source must be a string, not {_type_name(token)}"
        if token in SOURCE_WORDS:
            return None
        for prefix in _PATH_PREFIXES:
            if token.startswith(prefix):
                path = token[len(prefix) :]
                reason = _path_reason(path)
                if reason is None:
                    return None
                return f"source {prefix[:-1]}: path {_show(path)} {reason}"
        return f"unknown source {_show(token)}{_suggest(token, (*SOURCE_WORDS, *_PATH_PREFIXES))}"
    except Exception:
        return "the source could not be checked"


def _export_reason(name: str) -> Optional[str]:
    """``None`` if ``name`` may be exported, else why not (with the exact refusal wording)."""
    if name in EXPORT_ALLOWED or name == EXPORT_ALL:
        return None
    shown = name if len(name) <= 60 and name.isprintable() else _show(name)
    hint = _suggest(name, (*_EXPORT_ORDER, EXPORT_ALL))
    return f"refused: {shown} is not a CA variable castore-hook may set{hint}"


def _clean_entries(
    key: str,
    items: list[Any],
    label: str,
    path: Optional[str],
    line: Optional[int],
    problems: list[Problem],
) -> tuple[str, ...]:
    """Validate the entries of a ``sources``/``extra``/``export`` list, dropping bad ones.

    Shared by the file and environment paths so both give the same answers and messages.
    The list is truncated *before* checking so a huge list costs no more than a short one;
    duplicates are collapsed keeping the first, because order means priority.
    """
    if len(items) > MAX_ENTRIES:
        problems.append(
            Problem(
                f"{label} has {len(items)} entries; only the first {MAX_ENTRIES} are used",
                path,
                line,
            )
        )
        items = items[:MAX_ENTRIES]
    kept: list[str] = []
    for index, item in enumerate(items, 1):
        if not isinstance(item, str):
            problems.append(
                Problem(
                    f"{label} entry {index} is {_type_name(item)}, not a string; dropped",
                    path,
                    line,
                )
            )
            continue
        if key == "sources":
            reason = validate_source(item)
            if reason is not None:
                problems.append(Problem(f"{reason}; dropped", path, line))
                continue
            names = [item]
        elif key == "extra":
            reason = _path_reason(item)
            if reason is not None:
                problems.append(Problem(f"extra path {_show(item)} {reason}; dropped", path, line))
                continue
            names = [item]
        else:
            reason = _export_reason(item)
            if reason is not None:
                problems.append(Problem(reason, path, line))
                continue
            names = list(_EXPORT_ORDER) if item == EXPORT_ALL else [item]
        for name in names:
            if name not in kept:
                kept.append(name)
    return tuple(kept)


# --------------------------------------------------------------------------------------------
# Environment.


def _env_text(env: Mapping[str, str], name: str, problems: list[Problem]) -> Optional[str]:
    """The value of ``name`` in ``env`` as text, or ``None`` when unset or empty.

    Empty counts as unset so that ``CASTORE_HOOK_SOURCES= python ...`` (a common way to
    "clear" a variable in a shell) does not mean "no sources".
    """
    try:
        value: object = env.get(name)
    except Exception:
        problems.append(Problem(f"{name} could not be read; ignored", name))
        return None
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8", "surrogateescape")
        except Exception:
            value = None
    if not isinstance(value, str):
        problems.append(Problem(f"{name} is not text; ignored", name))
        return None
    return value or None


def parse_sources_env(value: str) -> tuple[tuple[str, ...], list[Problem]]:
    """Parse ``CASTORE_HOOK_SOURCES`` (``"system, certifi"``): comma-separated, trimmed.

    Empty pieces (``"system,,certifi"``) are skipped silently; invalid tokens are dropped with a
    problem whose ``path`` is the variable's name.
    """
    problems: list[Problem] = []
    try:
        if not isinstance(value, str):
            return (), [Problem(f"{ENV_SOURCES} is not text; ignored", ENV_SOURCES)]
        pieces: list[Any] = [p.strip() for p in value.split(",")]
        pieces = [p for p in pieces if p]
        return _clean_entries("sources", pieces, ENV_SOURCES, ENV_SOURCES, None, problems), problems
    except Exception:
        problems.append(Problem(f"{ENV_SOURCES} could not be parsed; ignored", ENV_SOURCES))
        return (), problems


def parse_extra_env(value: str) -> tuple[tuple[str, ...], list[Problem]]:
    """Parse ``CASTORE_HOOK_EXTRA``: ``os.pathsep``-separated absolute paths, like ``PATH``.

    Paths are not trimmed (spaces are legal in file names); empty pieces are skipped.
    """
    problems: list[Problem] = []
    try:
        if not isinstance(value, str):
            return (), [Problem(f"{ENV_EXTRA} is not text; ignored", ENV_EXTRA)]
        pieces: list[Any] = [p for p in value.split(os.pathsep) if p]
        return _clean_entries("extra", pieces, ENV_EXTRA, ENV_EXTRA, None, problems), problems
    except Exception:
        problems.append(Problem(f"{ENV_EXTRA} could not be parsed; ignored", ENV_EXTRA))
        return (), problems


# --------------------------------------------------------------------------------------------
# Where config files live.


def _paths_and_problems(
    env: Mapping[str, str], user: bool = True
) -> tuple[list[str], list[Problem]]:
    """``config_paths`` plus the problems found while working them out; without ``user``,
    the site locations only (a shared plan, ``refresh --shared``)."""
    problems: list[Problem] = []
    override = _env_text(env, ENV_CONFIG, problems)
    if override is not None:
        reason = _path_reason(override)
        if reason is not None:
            problems.append(
                Problem(
                    f"{ENV_CONFIG} {reason} ({_show(override)}); castore-hook stays off",
                    ENV_CONFIG,
                    fatal=True,
                )
            )
        return [override], problems
    try:
        import platformdirs

        site = platformdirs.site_config_dir(APP, appauthor=False, multipath=True)
        user_dir = platformdirs.user_config_dir(APP, appauthor=False)
    except Exception as exc:
        problems.append(
            Problem(
                f"cannot locate the config directories ({type(exc).__name__}: {exc}); "
                "castore-hook stays off",
                fatal=True,
                transient=True,
            )
        )
        return [], problems
    own_dir = _own_user_dir(user_dir, problems) if user else None
    # XDG_CONFIG_DIRS lists the most important directory first; later files win, so read it
    # back to front and the user's own file last.
    dirs = [*[d for d in site.split(os.pathsep) if d][::-1], *([own_dir] if own_dir else [])]
    paths: list[str] = []
    for directory in dirs:
        candidate = os.path.join(directory, FILE_NAME)
        if not os.path.isabs(candidate):
            # A relative XDG entry would make the working directory choose our CAs; the XDG
            # spec itself says such entries are invalid and must be ignored.
            problems.append(
                Problem(f"ignored relative config location {_show(candidate)}", candidate)
            )
            continue
        paths.append(candidate)
    seen: set[str] = set()
    unique: list[str] = []
    for candidate in reversed(paths):  # keep the last occurrence: it is the one that wins
        if candidate not in seen:
            seen.add(candidate)
            unique.append(candidate)
    return unique[::-1], problems


def _own_user_dir(user_dir: str, problems: list[Problem]) -> Optional[str]:
    """``user_dir``, or this user's own config folder when ``user_dir`` lies in a place that is
    not this user's by the whole-path rule (``_castore_hook_paths.unsafe_path``): another user's
    home under ``sudo -E``, ``su -m`` or a service's ``HOME=``. A file there would let that
    user steer this user's trust; it is reported, not read, and the site config still
    applies (the hook is not turned off by it)."""
    why = paths.unsafe_path(user_dir) if os.path.isabs(user_dir) else None
    if why is None or why.startswith(paths.MISSING):
        return user_dir
    own = _plancache.own_cache_dir(True)
    found = os.path.join(user_dir, FILE_NAME)
    seen = f"; {found} is not read" if os.path.lexists(found) else ""
    instead = f"{os.path.join(own, FILE_NAME)} is read instead" if own else "no user file is read"
    problems.append(
        Problem(
            f"the user config folder {user_dir} is not this user's ({why}){seen}; {instead}",
            found,
        )
    )
    return own


def config_paths(env: Mapping[str, str]) -> list[str]:
    """Every config file castore-hook considers, in read order (later wins), present or not.

    ``CASTORE_HOOK_CONFIG`` (taken from ``env`` only) replaces the platform locations with that
    single file. Never raises.
    """
    try:
        return _paths_and_problems(env)[0]
    except Exception:
        return []


# --------------------------------------------------------------------------------------------
# Reading and validating one file.

_TOML_POSITION = r"\s*\(at (?:line (\d+), column \d+|end of document)\)\s*$"
_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _leading_key(rest: str) -> Optional[tuple[str, str]]:
    """The TOML key at the start of ``rest`` (bare, "basic" or 'literal') and what follows."""
    if rest[:1] in ('"', "'"):
        quote = rest[0]
        end = rest.find(quote, 1)
        name = rest[1:end] if end > 0 else ""
        if end < 0 or "\n" in name or (quote == '"' and "\\" in name):
            return None
        return name, rest[end + 1 :]
    size = 0
    while size < len(rest) and rest[size] in _BARE_KEY_CHARS:
        size += 1
    return (rest[:size], rest[size:]) if size else None


def _key_lines(text: str) -> dict[str, int]:
    """Map each top-level key to the first line where it appears.

    A line scan rather than a real parser, which is good enough for pointing a human at the
    right place. It relies on a TOML rule: top-level keys come before the first ``[table]``
    header, so after a header only header names (top-level tables) are recorded. Written with
    string operations, not regular expressions: compiling those costs ~1 ms each on every cold
    start, and this runs for every config file read.
    """
    lines: dict[str, int] = {}
    in_tables = False
    for number, line in enumerate(text.split("\n"), 1):
        rest = line.lstrip(" \t")
        if rest.startswith("["):
            in_tables = True
            found = _leading_key(rest.lstrip("[").lstrip(" \t"))
        elif in_tables:
            continue
        else:
            found = _leading_key(rest)
            if found is not None and found[1].lstrip(" \t")[:1] not in ("=", "."):
                found = None
        if found is not None:
            lines.setdefault(found[0], number)
    return lines


def key_line(path: str, key: str) -> Optional[int]:
    """The line of the top-level ``key`` in the config file at ``path``, or ``None``: for
    pointing a human at a value after the fact (``status``: "disabled by ``enabled = false``
    in file:line"). Never raises."""
    try:
        text = read_regular_file(path, CONFIG_LIMIT).decode("utf-8-sig")
    except (OSError, UnsafeFile, ValueError):
        return None
    return _key_lines(text).get(key)


def _toml_loader() -> Optional[Callable[[str], dict[str, Any]]]:
    """``tomllib.loads`` (3.11+) or ``tomli.loads``, or ``None`` if neither can be imported.

    Imported lazily so a broken install becomes a fatal Problem instead of an ImportError.
    """
    try:
        if sys.version_info >= (3, 11):
            import tomllib

            return tomllib.loads
        import tomli

        loads: Callable[[str], dict[str, Any]] = tomli.loads
        return loads
    except Exception:
        return None


def _toml_error(exc: Exception, text: str) -> tuple[str, Optional[int]]:
    """The TOML error message without its position suffix, and the line it points at."""
    message = str(exc)
    line: Optional[int] = getattr(exc, "lineno", None)
    if not isinstance(line, int):
        line = None
    found = re.search(_TOML_POSITION, message)  # only on errors: compiled when needed
    if found:
        message = message[: found.start()]
        if line is None:
            line = int(found.group(1)) if found.group(1) else text.count("\n") + 1
    return message, line


def _read_toml(path: str, problems: list[Problem]) -> Optional[tuple[dict[str, Any], str]]:
    """Read and parse one config file: ``(table, text)``, or ``None`` if absent or unusable.

    Anything other than "absent" that stops us from reading the file is fatal: a config we
    cannot read might have said ``enabled = false`` or narrowed ``sources``, and applying the
    other files without it could trust CAs the administrator removed.
    """

    def fatal(message: str, line: Optional[int] = None) -> None:
        problems.append(Problem(f"{message}; castore-hook stays off", path, line, fatal=True))

    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        fatal(f"cannot check the config file ({exc.strerror or exc})")
        return None
    except Exception as exc:
        fatal(f"cannot check the config file ({type(exc).__name__})")
        return None
    if stat.S_ISDIR(st.st_mode):
        fatal("the config path is a directory, not a file")
        return None
    try:
        if is_kernel_path(path):
            fatal("the config path is a kernel pseudo-file, not a config file")
            return None
        data = read_regular_file(path, CONFIG_LIMIT)
    except FileNotFoundError:
        return None  # removed between stat and open: treat as absent, like a later start-up
    except UnsafeFile as exc:
        fatal(f"config file refused: {exc}")
        return None
    except OSError as exc:
        fatal(f"cannot read the config file ({exc.strerror or exc})")
        return None
    except Exception as exc:
        fatal(f"cannot read the config file ({type(exc).__name__})")
        return None

    if data.startswith(_BOM):
        data = data[len(_BOM) :]  # Windows editors add one; it carries no meaning
    if b"\x00" in data:
        fatal("the config file contains NUL bytes", data[: data.index(b"\x00")].count(b"\n") + 1)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fatal("the config file is not UTF-8 text", data[: exc.start].count(b"\n") + 1)
        return None

    loads = _toml_loader()
    if loads is None:
        fatal("no TOML parser is available (install tomli)")
        return None
    try:
        table = loads(text)
    except Exception as exc:  # TOMLDecodeError, but also RecursionError/ValueError on abuse
        message, line = _toml_error(exc, text)
        fatal(f"invalid TOML: {message}", line)
        return None
    if not isinstance(table, dict):
        fatal("the config file did not parse to a table")
        return None
    return table, text


def _apply_table(
    table: Mapping[Any, Any],
    text: str,
    path: str,
    values: dict[str, Any],
    origins: dict[str, str],
    lines_set: dict[str, Optional[int]],
    problems: list[Problem],
) -> None:
    """Merge one parsed file into ``values`` key by key, dropping what does not validate.

    A key whose value is the wrong type is ignored as a whole, so the earlier file's (or the
    default) value stands; a list with some bad entries keeps its good ones.
    """
    key_lines = _key_lines(text)
    unknown = 0
    for key, value in table.items():
        line = key_lines.get(key) if isinstance(key, str) else None
        if key not in KEYS:
            unknown += 1
            if unknown <= _MAX_UNKNOWN_REPORTED:
                hint = _suggest(key, KEYS) if isinstance(key, str) else ""
                problems.append(Problem(f"unknown key {_show(key)}{hint}; ignored", path, line))
            continue
        if key in _BOOL_KEYS:
            if not isinstance(value, bool):
                problems.append(
                    Problem(
                        f"{key!r} must be true or false, not {_type_name(value)}; ignored",
                        path,
                        line,
                    )
                )
                continue
            values[key] = value
        else:
            if not isinstance(value, list):
                hint = f" (write {key} = [{value!r}])" if isinstance(value, str) else ""
                if len(hint) > 80:
                    hint = ""
                problems.append(
                    Problem(
                        f"{key!r} must be a list of strings, not {_type_name(value)}{hint}; "
                        "ignored",
                        path,
                        line,
                    )
                )
                continue
            values[key] = _clean_entries(key, value, repr(key), path, line, problems)
        origins[key] = path
        lines_set[key] = line
    if unknown > _MAX_UNKNOWN_REPORTED:
        problems.append(
            Problem(
                f"{unknown - _MAX_UNKNOWN_REPORTED} more unknown keys not listed; ignored", path
            )
        )


# --------------------------------------------------------------------------------------------
# The whole thing.


def _load(env: Mapping[str, str], user: bool) -> Config:
    config = Config()
    problems = config.problems
    candidates, path_problems = _paths_and_problems(env, user)
    config.candidates = candidates
    problems.extend(path_problems)
    values: dict[str, Any] = {}
    lines_set: dict[str, Optional[int]] = {}
    explicit = _env_text(env, ENV_CONFIG, []) is not None

    if not any(p.fatal for p in path_problems):
        for path in candidates:
            loaded = _read_toml(path, problems)
            if loaded is None:
                if explicit and not any(p.path == path for p in problems):
                    # Named explicitly but missing: defaults apply, but a typo must be visible.
                    problems.append(
                        Problem(f"{ENV_CONFIG} names a file that does not exist", ENV_CONFIG)
                    )
                continue
            table, text = loaded
            _apply_table(table, text, path, values, config.origins, lines_set, problems)
            config.files_read.append(path)

    for name, parse, key in (
        (ENV_SOURCES, parse_sources_env, "sources"),
        (ENV_EXTRA, parse_extra_env, "extra"),
    ):
        raw = _env_text(env, name, problems)
        if raw is None:
            continue
        parsed, env_problems = parse(raw)
        problems.extend(env_problems)
        values[key] = parsed
        config.origins[key] = name
        lines_set[key] = None

    for key, value in values.items():
        setattr(config, key, value)
    config.lines = dict(lines_set)
    if not config.sources:
        origin = config.origins.get("sources", "default")
        problems.append(
            Problem(
                "no usable source tokens; castore-hook will change nothing",
                None if origin == "default" else origin,
                lines_set.get("sources"),
            )
        )
    return config


def load_config(env: Mapping[str, str], *, user: bool = True) -> Config:
    """Read every config file and the ``CASTORE_HOOK_*`` overrides in ``env``; never raises.

    Check ``Config.usable`` before acting on the result: if it is false, some file could not be
    used and the caller must leave the interpreter stock. Without ``user``, the user's own
    config file is neither read nor listed (a shared plan holds for every user).
    """
    try:
        return _load(env, user)
    except Exception as exc:  # a bug here must not break start-up; say so and stay off
        config = Config()
        config.candidates = config_paths(env)
        config.problems.append(
            Problem(
                f"internal error while reading the configuration ({type(exc).__name__}); "
                "castore-hook stays off",
                fatal=True,
            )
        )
        return config
