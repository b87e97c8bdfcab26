"""The plan's shape is declared once (``castore_hook._contracts``) and tied to the plan format:
a plan file written by one release is read by another only when both mean the same fields, so
a change of shape without a bump of ``PLAN_FORMAT``/``PLAN_MAGIC`` must not ship.

``SHAPES`` records, per plan format, a digest of the on-disk types' fields and annotations. A
change to ``Plan``, ``Trust`` or ``PlanInfo`` fails the first test until the format is bumped
(in ``_castore_hook``: ``PLAN_FORMAT`` and ``PLAN_MAGIC``) and the new digest recorded under the
new number. The other tests check that what the slow path really writes has that shape."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from tests.helpers import make_ca, write_ca_pem

import _castore_hook as hot
from castore_hook import _contracts, _plancache, api, resolve

#: The on-disk types: the plan file's body, its trust section, and its sidecar's info.
ON_DISK = (_contracts.Plan, _contracts.Trust, _contracts.PlanInfo)

#: PLAN_FORMAT -> the digest of ON_DISK's shape (shape_digest) that format means.
SHAPES = {5: "947084b8b9fff01d"}


def shape(kind: Any) -> Tuple[str, bool, List[Tuple[str, str]]]:
    """A TypedDict's name, totality and ``(field, annotation)`` pairs, spaces removed so that
    formatting never counts (annotations are strings: ``from __future__ import annotations``;
    3.9 and 3.10 wrap them in ``ForwardRef``)."""
    fields = sorted(
        (name, str(getattr(annotation, "__forward_arg__", annotation)).replace(" ", ""))
        for name, annotation in kind.__annotations__.items()
    )
    return kind.__name__, kind.__total__, fields


def shape_digest() -> str:
    text = repr([shape(kind) for kind in ON_DISK])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_a_change_of_shape_comes_with_a_new_plan_format() -> None:
    digest = shape_digest()
    assert SHAPES.get(hot.PLAN_FORMAT) == digest, (
        f"the plan contract's shape is {digest}, but PLAN_FORMAT {hot.PLAN_FORMAT} means "
        f"{SHAPES.get(hot.PLAN_FORMAT)}: bump PLAN_FORMAT and PLAN_MAGIC in _castore_hook and "
        f"record SHAPES[{hot.PLAN_FORMAT + 1}] = {digest!r} here"
    )


def test_the_magic_names_the_format() -> None:
    assert f"castore-hook plan {hot.PLAN_FORMAT}\n".encode() == hot.PLAN_MAGIC


def test_the_digest_sees_a_renamed_field() -> None:
    # The negative control: the digest changes when a field does.
    class Renamed(dict):  # stands in for a TypedDict with one field renamed
        __annotations__ = {
            ("certifi_files" if name == "certifi_file" else name): annotation
            for name, annotation in _contracts.Trust.__annotations__.items()
        }
        __total__ = True

    Renamed.__name__ = "Trust"
    assert shape(Renamed) != shape(_contracts.Trust)


@pytest.fixture
def decided(tmp_path: Path) -> Dict[str, Any]:
    """A plan decided for real: a CA file as the source, another as an extra, a bundle."""
    source = write_ca_pem(make_ca(), tmp_path / "ca.pem")
    extra = write_ca_pem(make_ca(), tmp_path / "extra.pem")
    conf = tmp_path / "config.toml"
    conf.write_text('export = ["all"]\n')
    for path in (source, extra, conf):
        os.chmod(path, 0o644)
    env = {
        "HOME": str(tmp_path),
        "CASTORE_HOOK_CONFIG": str(conf),
        "CASTORE_HOOK_SOURCES": f"file:{source}",
        "CASTORE_HOOK_EXTRA": str(extra),
    }
    return {"plan": resolve.build_plan(env, str(tmp_path / "cache"), False), "tmp": tmp_path}


def test_a_decided_plan_has_the_contracts_fields(decided: Dict[str, Any]) -> None:
    plan = decided["plan"]
    assert plan["format"] == hot.PLAN_FORMAT
    assert set(plan) <= set(_contracts.Plan.__annotations__)
    assert plan["trust"] is not None, plan["info"]["problems"]
    assert set(plan["trust"]) == set(_contracts.Trust.__annotations__)
    assert set(plan["info"]) <= set(_contracts.PlanInfo.__annotations__)
    assert plan["info"]["bundle"] and plan["set"]  # the extra made a bundle, exported


def test_a_stored_plan_reads_back_with_the_same_fields(decided: Dict[str, Any]) -> None:
    plan, folder = decided["plan"], decided["tmp"] / "cache"
    path = str(folder / "plan.marshal")
    assert _plancache.store_plan(str(folder), path, plan) == ""
    cached, reason = hot.read_plan(path)
    assert cached is not None, reason
    # The body without the human side, the trust section still raw (checked when used).
    assert set(cached) == set(plan) - {"info"} | {"trust_size"}
    assert _plancache.decode_trust(cached["trust"]) == plan["trust"]
    info = _plancache.load_info(path, plan["key"])
    assert info == plan["info"]


def test_status_has_exactly_the_reports_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("CASTORE_HOOK_", "SSL_CERT_", "XDG_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CASTORE_HOOK_CACHE_DIR", str(tmp_path / "cache"))
    report = api.status()
    assert set(report) == set(_contracts.StatusReport.__annotations__)
    assert set(report["cache"]) == set(_contracts.CacheReport.__annotations__)
    assert set(report["material"]) == set(_contracts.MaterialReport.__annotations__)
