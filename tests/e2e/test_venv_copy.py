"""The tests' venvs are copies of templates (tests/helpers.py, ``make_venv``): a copy must be a
venv of its own, or every e2e test that uses one would check the template instead."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import _TEMPLATES, describe, hermetic_env, make_venv, run_python


def test_a_copied_venv_is_a_venv_of_its_own(built_wheel: Path, tmp_path: Path) -> None:
    first = make_venv(tmp_path / "first", str(built_wheel))
    second = make_venv(tmp_path / "second", str(built_wheel))
    assert first.root != second.root
    templates = [str(t) for t in _TEMPLATES.values()]

    # No file of the copy but compiled code names a template (shebangs, activate, pyvenv.cfg,
    # RECORD, .pth files, direct_url.json): the copy works wherever it is.
    for path in second.root.rglob("*"):
        if path.is_symlink() or not path.is_file() or path.suffix in (".pyc", ".so"):
            continue
        data = path.read_bytes()
        for template in templates:
            assert template.encode() not in data, (path, template)

    script = second.bin / "castore-hook"
    assert script.read_text().splitlines()[0] == f"#!{second.bin / 'python'}"

    # The copy's console script runs the copy's interpreter: a start-up file of the copy
    # records the prefix of whoever runs it.
    seen = tmp_path / "seen.json"
    (second.site_packages / "zz_whoami.pth").write_text(
        f"import json, sys; open({str(seen)!r}, 'w').write(json.dumps([sys.prefix, "
        "sys.executable]))\n"
    )
    env = hermetic_env(tmp_path / "world", CASTORE_HOOK_DISABLE="1")
    proc = run_python(Path("/bin/sh"), ["-c", f"exec {script} --version"], env)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.startswith("castore-hook "), describe(proc)
    prefix, executable = json.loads(seen.read_text())
    assert Path(prefix) == second.root, prefix
    assert Path(executable).parent == second.bin, executable

    # And the copy's own interpreter reports the copy's folders, not the template's.
    proc = run_python(
        second,
        "import json, sys, sysconfig; print(json.dumps([sys.prefix, "
        "sysconfig.get_paths()['purelib']]))",
        env,
    )
    assert proc.returncode == 0, describe(proc)
    prefix, purelib = json.loads(proc.stdout)
    assert (Path(prefix), Path(purelib)) == (second.root, second.site_packages)
