"""The extension tables (``_sourcetable``, ``_keytable``) and everything that reads them.

Adding a source kind or a config key means adding a table entry, its probe or effect, and a
test (docs/architecture.md, "Extension tables"). These tests hold the rest together: every
entry is complete, every reader (config, sources.probe, doctor, the starter file, config
--help) follows the table, and docs/configuration.md documents exactly the table's entries.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from castore_hook import _keytable, _sourcetable, config, configedit, sources
from castore_hook.cli import _config as cli_config
from castore_hook.doctor import probes as doctor_probes

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "configuration.md"


def _token(kind: _sourcetable.Source) -> str:
    """A valid token of ``kind``."""
    return f"{kind.prefix}/etc/ssl/x" if kind.path else kind.word


# --------------------------------------------------------------------------------------------
# The source table


def test_every_source_entry_is_complete() -> None:
    words = [s.word for s in _sourcetable.SOURCES]
    assert len(words) == len(set(words))
    for kind in _sourcetable.SOURCES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", kind.word), kind
        for text in (kind.summary, kind.doc, kind.fix):
            assert text.strip() == text and text, kind
            assert "\n" not in text, kind
        assert kind.probe in sources.PROBES, kind
        assert kind.syntax == (f"{kind.word}:/abs/path" if kind.path else kind.word)
        # Its starter line stays within the file's 80 columns.
        assert len(f"#   {kind.word:<8} {kind.summary}") <= 80, kind


def test_every_probe_belongs_to_a_source_kind() -> None:
    assert set(sources.PROBES) == {kind.probe for kind in _sourcetable.SOURCES}


def test_config_words_and_defaults_come_from_the_source_table() -> None:
    assert tuple(s.word for s in _sourcetable.SOURCES if not s.path) == config.SOURCE_WORDS
    assert tuple(s.word for s in _sourcetable.SOURCES if s.default) == config.DEFAULT_SOURCES
    assert config.DEFAULT_SOURCES  # an empty default would mean "trust nothing"
    assert config.Config().sources == config.DEFAULT_SOURCES
    for kind in _sourcetable.SOURCES:
        assert config.validate_source(_token(kind)) is None, kind
        assert _sourcetable.by_token(_token(kind)) is kind
    assert _sourcetable.by_token("nope") is None
    assert _sourcetable.by_token("file") is None  # a path kind needs its colon


@pytest.mark.parametrize("kind", _sourcetable.SOURCES, ids=lambda s: s.word)
def test_a_typo_of_each_source_kind_suggests_it(kind: _sourcetable.Source) -> None:
    typo = kind.prefix[:-1] + "x" + kind.prefix[-1:] if kind.path else kind.word + "x"
    assert (
        config.validate_source(typo) == f"unknown source {typo!r} (did you mean {kind.prefix!r}?)"
    )


@pytest.mark.parametrize("kind", _sourcetable.SOURCES, ids=lambda s: s.word)
def test_probe_runs_the_probe_the_table_names(
    kind: _sourcetable.Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    for name in sources.PROBES:
        monkeypatch.setitem(
            sources.PROBES, name, lambda ask, name=name: calls.append((name, ask.path))
        )
    result = sources.probe(_token(kind), {})
    assert calls == [(kind.probe, "/etc/ssl/x" if kind.path else "")]
    assert result.problems == []


def test_unknown_source_message_lists_every_kind() -> None:
    result = sources.probe("bogus", {})
    assert result.material is None
    expected = ", ".join(s.syntax for s in _sourcetable.SOURCES[:-1])
    expected += f" or {_sourcetable.SOURCES[-1].syntax}"
    assert result.problems == [f"unknown source 'bogus' (expected {expected})"]


def test_path_kinds_need_an_absolute_path() -> None:
    for kind in _sourcetable.path_kinds():
        result = sources.probe(f"{kind.prefix}relative", {})
        assert result.problems == [f"source '{kind.prefix}relative' needs an absolute path"]


def test_doctor_fix_is_the_table_fix() -> None:
    for kind in _sourcetable.SOURCES:
        assert doctor_probes._source_fix(_token(kind)) == kind.fix


# --------------------------------------------------------------------------------------------
# The config-key table

_ANNOTATION = {_keytable.BOOL: "bool", _keytable.LIST: "tuple[str, ...]"}


def test_every_key_entry_is_complete() -> None:
    names = [key.name for key in _keytable.KEYS]
    assert len(names) == len(set(names))
    for key in _keytable.KEYS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key.name), key
        assert key.kind in _ANNOTATION, key
        if key.kind == _keytable.BOOL:
            assert isinstance(key.default, bool), key
        else:
            assert isinstance(key.default, tuple), key
            assert all(isinstance(item, str) for item in key.default), key
        assert isinstance(key.in_process, bool), key
        assert key.doc and key.doc_type and key.starter, key
        assert all(line and "\n" not in line for line in key.starter), key
        # Config declares the attribute with the type its kind gives.
        assert config.Config.__annotations__.get(key.name) == _ANNOTATION[key.kind], key
    assert set(config.Config.__annotations__) == set(names)


def test_config_reads_keys_and_defaults_from_the_table() -> None:
    assert tuple(key.name for key in _keytable.KEYS) == config.KEYS
    assert set(config._BOOL_KEYS) | set(config._LIST_KEYS) == set(config.KEYS)
    assert not set(config._BOOL_KEYS) & set(config._LIST_KEYS)
    defaults = config.Config()
    for key in _keytable.KEYS:
        assert getattr(defaults, key.name) == key.default
        assert defaults.origins[key.name] == "default"
    assert _keytable.by_name("export").default == config.DEFAULT_EXPORT  # type: ignore[union-attr]
    assert _keytable.by_name("nope") is None


@pytest.mark.parametrize("key", _keytable.KEYS, ids=lambda k: k.name)
def test_each_key_is_read_and_type_checked_by_its_kind(key: _keytable.Key) -> None:
    good: Any = (not key.default) if key.kind == _keytable.BOOL else []
    wrong: Any = "yes" if key.kind == _keytable.BOOL else True
    values: dict[str, Any] = {}
    problems: list[config.Problem] = []
    config._apply_table({key.name: good}, "", "/p.toml", values, {}, {}, problems)
    assert values == {key.name: good if key.kind == _keytable.BOOL else ()}
    assert problems == []
    config._apply_table({key.name: wrong}, "", "/p.toml", values, {}, {}, problems)
    expected = "true or false" if key.kind == _keytable.BOOL else "a list of strings"
    assert [p.message.split(", not")[0] for p in problems] == [f"{key.name!r} must be {expected}"]


def test_unknown_key_suggestion_uses_the_table() -> None:
    problems: list[config.Problem] = []
    config._apply_table({"fast_context": True}, "", "/p.toml", {}, {}, {}, problems)
    assert (
        problems[0].message == "unknown key 'fast_context' (did you mean 'fast_contexts'?); ignored"
    )


# --------------------------------------------------------------------------------------------
# The starter config and config --help


def test_starter_has_a_block_per_key_in_table_order(tmp_path: Path) -> None:
    lines = configedit.STARTER.splitlines()
    assignments = [line[2:] for line in lines if re.match(r"# [a-z_0-9]+ = ", line)]
    assert [a.split(" = ")[0] for a in assignments] == list(config.KEYS)
    for key in _keytable.KEYS:
        block_end = lines.index(next(line for line in lines if line.startswith(f"# {key.name} = ")))
        comment = [line for line in key.starter if line != _keytable.SOURCE_LIST]
        assert all(f"# {line}" in lines[:block_end] for line in comment), key
    for kind in _sourcetable.word_kinds():
        assert f"#   {kind.word:<8} {kind.summary}" in lines
    assert "#   " + ", ".join(s.summary for s in _sourcetable.path_kinds()) in lines
    # Uncommented, every default line gives the default, and the examples are valid.
    path = tmp_path / "config.toml"
    path.write_text("\n".join(assignments) + "\n")
    cfg = config.load_config({"CASTORE_HOOK_CONFIG": str(path)})
    assert cfg.problems == []
    for key in _keytable.KEYS:
        if key.example is None:
            assert getattr(cfg, key.name) == key.default, key


def test_config_help_lists_every_key() -> None:
    listed = cli_config.HELP.split("Keys (docs/configuration.md): ")[1].split(".\n")[0]
    assert listed.split(", ") == list(config.KEYS)


# --------------------------------------------------------------------------------------------
# docs/configuration.md documents exactly the tables


def _table_rows(heading: str) -> list[str]:
    """The body rows of the first Markdown table after ``heading`` in docs/configuration.md."""
    text = DOCS.read_text(encoding="utf-8").splitlines()
    start = text.index(heading)
    rows: list[str] = []
    for line in text[start + 1 :]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return rows[2:]  # header and separator


def test_docs_document_every_key_and_no_other() -> None:
    rows = _table_rows("## Keys")
    documented = [re.match(r"\| `([^`]+)` \|", row).group(1) for row in rows]  # type: ignore[union-attr]
    assert documented == list(config.KEYS)
    for row, key in zip(rows, _keytable.KEYS):
        assert row == key.doc_row(), f"docs/configuration.md should say:\n{key.doc_row()}"


def test_docs_example_sets_every_key_in_table_order() -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    keys = [line.split(" ", 1)[0] for line in example.splitlines() if not line.startswith("#")]
    assert keys == list(config.KEYS)


def test_docs_document_every_source_kind_and_no_other() -> None:
    rows = _table_rows("### Sources")
    expected = [f"| `{kind.syntax}` | {kind.doc} |" for kind in _sourcetable.SOURCES]
    assert [row.split(" | ")[0] for row in rows] == [row.split(" | ")[0] for row in expected]
    assert rows == expected


def test_config_does_not_import_sources_or_ssl() -> None:
    """The tables keep config cheap: reading them pulls in no probe, no ssl, no doctor."""
    code = (
        "import sys, castore_hook.config, castore_hook._keytable; "
        "print(sorted(m for m in sys.modules if m in "
        "('ssl', 'castore_hook.sources', 'castore_hook.doctor', 'dataclasses')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src")},
    )
    assert out.stdout.strip() == "[]"
