"""Config files for the CLI: where they are, what they say, a starter file, ``enabled`` edits.

CLI-only code: never imported at start-up. ``tomlkit`` (a round-tripping TOML library, so that
``enable``/``disable`` keep the operator's comments and layout) is imported inside the
functions that edit, never at module import.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from castore_hook import _keytable, _sourcetable, config
from castore_hook._safefile import CONFIG_LIMIT, UnsafeFile, read_regular_file

#: Keys in the order ``config show`` prints them (owned by the key table, ``_keytable``).
KEYS = config.KEYS

_STARTER_HEAD = """\
# castore-hook configuration (TOML). Every key is optional; a key left out keeps
# the value of an earlier file (site files, then the user file) or the default.
# Reference: `castore-hook config --help` and docs/configuration.md.
# Check the result with `castore-hook config show` and `castore-hook doctor`.
#
# Everything below is commented out on purpose: an explicit `enabled = true` in
# a user file would override an administrator's `enabled = false` in a site
# file.
"""


def _source_lines() -> list[str]:
    """The starter's list of source kinds: a line per word, one line for the path kinds."""
    lines = [f"#   {s.word:<8} {s.summary}" for s in _sourcetable.word_kinds()]
    examples = [s.summary for s in _sourcetable.path_kinds()]
    if examples:
        lines.append("#   " + ", ".join(examples))
    return lines


def starter_text() -> str:
    """The starter config file: a commented-out block per key of the key table, each showing
    its default (or an example) so that uncommenting one line gives a valid setting."""
    lines = [_STARTER_HEAD.rstrip("\n")]
    for key in _keytable.KEYS:
        lines.append("")
        for line in key.starter:
            lines.extend(_source_lines() if line == _keytable.SOURCE_LIST else [f"# {line}"])
        lines.append(f"# {key.name} = {key.default_toml() if key.example is None else key.example}")
    return "\n".join(lines) + "\n"


#: The file ``config init`` writes.
STARTER = starter_text()


class ConfigFileError(Exception):
    """A config file cannot be located, read, parsed or written; the message says why."""


@dataclass(frozen=True)
class Location:
    """One config file castore-hook reads, with its role and state."""

    path: str
    role: str  # "site", "user" or "override" (CASTORE_HOOK_CONFIG)
    exists: bool
    read: bool

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "role": self.role, "exists": self.exists, "read": self.read}


def site_path() -> str:
    """The most important site file (first ``site_config_dir`` entry; Linux: the first
    ``$XDG_CONFIG_DIRS`` entry, default ``/etc/xdg``) — the one ``--site`` edits."""
    import platformdirs

    folders = platformdirs.site_config_dir(config.APP, appauthor=False, multipath=True)
    first = next((f for f in folders.split(os.pathsep) if f), "")
    if not first or not os.path.isabs(first):
        raise ConfigFileError(f"no usable site config folder (platformdirs gave {folders!r})")
    return os.path.join(first, config.FILE_NAME)


def user_path() -> str:
    """The user file (``user_config_dir/config.toml``) — the one ``--user`` edits."""
    import platformdirs

    folder = platformdirs.user_config_dir(config.APP, appauthor=False)
    if not folder or not os.path.isabs(folder):
        raise ConfigFileError(f"no usable user config folder (platformdirs gave {folder!r})")
    return os.path.join(folder, config.FILE_NAME)


def override_path(env: Mapping[str, str]) -> Optional[str]:
    """``CASTORE_HOOK_CONFIG`` when it is set (and honoured), else ``None``."""
    value = env.get(config.ENV_CONFIG, "")
    return value or None


def target_path(env: Mapping[str, str], scope: Optional[str]) -> str:
    """The file ``init``/``enable``/``disable`` act on.

    ``scope`` is ``"site"``, ``"user"`` or ``None``; ``None`` means the file that is actually
    read: ``CASTORE_HOOK_CONFIG`` when set, else the user file.
    """
    if scope == "site":
        return site_path()
    if scope == "user":
        return user_path()
    override = override_path(env)
    if override is not None:
        if not os.path.isabs(override):
            raise ConfigFileError(f"{config.ENV_CONFIG}={override!r} is not an absolute path")
        return override
    return user_path()


def locations(env: Mapping[str, str]) -> list[Location]:
    """Every file castore-hook considers, in read order, and which were read."""
    cfg = config.load_config(env)
    override = override_path(env)
    try:
        user = user_path()
    except Exception:
        user = ""
    result = []
    for path in cfg.candidates:
        role = "override" if override is not None else ("user" if path == user else "site")
        result.append(Location(path, role, os.path.lexists(path), path in cfg.files_read))
    return result


def effective(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], config.Config]:
    """The merged values, the origin of each (a file, an env var, or ``"default"``), and the
    whole ``Config`` (for its problems)."""
    cfg = config.load_config(env)
    values: dict[str, Any] = {}
    for key in KEYS:
        value = getattr(cfg, key)
        values[key] = list(value) if isinstance(value, tuple) else value
    origins = {key: cfg.origins.get(key, "default") for key in KEYS}
    return values, origins, cfg


def toml_value(value: Any) -> str:
    """A value as TOML (for ``config show``), written by tomlkit.

    tomlkit's basic strings escape exactly what TOML requires (quote, backslash, control
    characters) and keep every other character as itself, so any string ``tomllib`` can read
    comes back identical. ``json.dumps`` wrote a non-BMP character as a surrogate pair
    (``"\\ud83d\\ude00"``), which TOML forbids.
    """
    import tomlkit

    if isinstance(value, tuple):
        value = list(value)
    return str(tomlkit.item(value).as_string())


#: Characters TOML forbids in a comment: controls other than tab (toml.io, "Comment").
_COMMENT_FORBIDDEN = {c: f"\\x{c:02x}" for c in [*range(0x09), *range(0x0A, 0x20), 0x7F]}


def toml_comment(text: str) -> str:
    """``# text`` as a TOML comment: a control character (a newline in a path) is shown as
    ``\\xNN``, so the comment never ends early or makes the document invalid."""
    return "# " + text.translate(_COMMENT_FORBIDDEN)


# --------------------------------------------------------------------------------------------
# Editing


#: The comment ``disable`` puts on the ``enabled = false`` it writes, recording what was
#: there before, so that ``enable`` can put it back: ``absent`` (no key), ``no file`` (the file
#: did not exist), or the old value as TOML (``true``), then ``| <old comment>`` if any.
MARK = "castore-hook disable, was: "
WAS_ABSENT = "absent"
WAS_NO_FILE = "no file"


def _parse(text: str) -> Any:
    """``text`` as a tomlkit document; ``ConfigFileError`` naming the line when it is not
    TOML: a file we cannot parse is never rewritten."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        line = getattr(exc, "line", None)
        where = f"line {line}: " if line else ""
        raise ConfigFileError(f"{where}invalid TOML ({exc}); fix it first") from None
    except Exception as exc:
        raise ConfigFileError(f"invalid TOML ({exc}); fix it first") from None


def disable_text(text: Optional[str]) -> Optional[str]:
    """``text`` (``None``: no file) with top-level ``enabled = false``, marked with what was
    there before (see ``MARK``); ``None`` when it already says ``enabled = false``.

    Comments, blank lines, key order and formatting survive; a missing key is added among
    the top-level keys (before any table).
    """
    import tomlkit

    document = _parse(text or "")
    old = document.item("enabled") if "enabled" in document else None
    if old is not None and old.unwrap() is False:
        return None
    item = tomlkit.item(False)
    if old is None:
        item.trivia.comment = f"# {MARK}{WAS_NO_FILE if text is None else WAS_ABSENT}"
        item.trivia.comment_ws = "  "
    else:
        before = old.as_string()
        if old.trivia.comment:
            before += f" | {old.trivia.comment}"
        item.trivia.comment = f"# {MARK}{before}"
        item.trivia.comment_ws = old.trivia.comment_ws or "  "
    document["enabled"] = item
    return str(tomlkit.dumps(document))


def enable_text(text: str) -> Optional[str]:
    """``text`` with what ``disable`` replaced put back; ``None`` when nothing here disables.

    An ``enabled = false`` that ``disable`` marked becomes what was there before: no key
    (``""`` when the file itself did not exist and nothing else was added since, so the
    caller removes it), or the old value with its comment. An unmarked ``enabled = false``
    is removed. ``enable`` never writes an explicit ``enabled = true`` of its own: in a user
    file it would override an administrator's site-wide ``enabled = false``.
    """
    import tomlkit

    document = _parse(text)
    item = document.item("enabled") if "enabled" in document else None
    if item is None or item.unwrap() is not False:
        return None
    comment = item.trivia.comment[1:].strip() if item.trivia.comment.startswith("#") else ""
    was = comment[len(MARK) :] if comment.startswith(MARK) else WAS_ABSENT
    value, _bar, old_comment = was.partition(" | ")
    if value in (WAS_ABSENT, WAS_NO_FILE):
        del document["enabled"]
        result = str(tomlkit.dumps(document))
        return "" if value == WAS_NO_FILE and not result.strip() else result
    from tomlkit.items import Item

    try:
        restored = tomlkit.parse(f"enabled = {value}\n").item("enabled")
    except Exception:
        restored = None
    if not isinstance(restored, Item):
        del document["enabled"]  # a mark someone edited: fall back to no key
        return str(tomlkit.dumps(document))
    restored.trivia.comment = old_comment
    restored.trivia.comment_ws = item.trivia.comment_ws if old_comment else ""
    document["enabled"] = restored
    return str(tomlkit.dumps(document))


def _read_text(path: str) -> Optional[tuple[str, int]]:
    """The file's text and permission bits, or ``None`` when it does not exist."""
    try:
        data = read_regular_file(path, CONFIG_LIMIT, check_owner=False)
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None
    except UnsafeFile as exc:
        raise ConfigFileError(str(exc)) from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), mode
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path} is not UTF-8 text; fix it first") from None


def _write(path: str, text: str, mode: int) -> None:
    """Write atomically (temp file + ``os.replace``): a reader never sees half a file, and the
    new inode makes every cached plan stale at once."""
    from castore_hook._plancache import write_atomic

    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o755, exist_ok=True)
        # Never group/other-writable: castore-hook refuses such files
        # (docs/architecture.md, "Failure policy").
        write_atomic(folder, os.path.basename(path), text.encode("utf-8"), mode & 0o755)
    except OSError as exc:
        raise ConfigFileError(f"cannot write {path}: {exc.strerror or exc}") from None


def set_enabled(path: str, value: bool) -> str:
    """``disable`` (``value`` false) or ``enable`` the file at ``path``; return what was done,
    for the command's output. ``disable`` creates a missing file; ``enable`` restores what
    ``disable`` replaced (``enable_text``) and removes the file ``disable`` created when it
    holds nothing else. Raises ``ConfigFileError``."""
    current = _read_text(path)
    text, mode = current if current is not None else (None, 0o644)
    if not value:
        new = disable_text(text)
        if new is None:
            return "enabled = false (already so)"
        _write(path, new, mode)
        return "enabled = false (written; `castore-hook enable` puts back what was there)"
    new = None if text is None else enable_text(text)
    if new is None:
        return "no `enabled = false` here (already so)"
    if new == "":
        try:
            os.unlink(path)
        except OSError as exc:
            raise ConfigFileError(f"cannot remove {path}: {exc.strerror or exc}") from None
        return "removed (`castore-hook disable` had created it)"
    _write(path, new, mode)
    old = _parse(new).get("enabled")
    if old is None:
        return "`enabled = false` removed (the default or an earlier file decides)"
    return f"enabled = {str(old).lower() if isinstance(old, bool) else old} (restored)"


def init(path: str, force: bool) -> None:
    """Write the commented starter file; refuse to overwrite without ``force``."""
    if os.path.lexists(path) and not force:
        raise ConfigFileError(f"{path} already exists; use --force to overwrite it")
    _write(path, STARTER, 0o644)
