"""Property tests: whatever bytes or values reach the hot path, it never raises, never
applies a plan that names a missing path, and never sets a variable outside the allowlist."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import applied_by, cache_plan, examples

import _castore_hook as hot
from castore_hook import _plancache, _plankey
from castore_hook._safefile import stat_signature

_ALLOWED = sorted(hot.EXPORT_ALLOWED)

# Values marshal can carry, nested a little: the shapes a corrupt or hostile cache could hold.
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | st.sampled_from([*_ALLOWED, "LD_PRELOAD", "PATH", "/", "/etc/passwd", "relative"])
)
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4).map(tuple)
        | st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_plans = st.fixed_dictionaries(
    {},
    optional={
        "format": st.just(hot.PLAN_FORMAT) | st.integers(),
        "key": _values,
        "stats": _values,
        "set": _values,
        "unset": _values,
        "record": _values,
        "trust": _values,
        "info": _values,
    },
)


def _user_ca_values(environ: Dict[str, str], ignore_env: bool) -> Tuple[str, str]:
    """The user's own SSL_CERT_FILE / SSL_CERT_DIR as the slow path sees them."""
    env = _plankey.decision_environ(environ, ignore_env)
    return env.get("SSL_CERT_FILE", ""), env.get("SSL_CERT_DIR", "")


def _write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "plan"
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return str(path)


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=2048))
def test_read_plan_never_raises_on_bytes(tmp_path: Path, data: bytes) -> None:
    plan, reason = hot.read_plan(_write(tmp_path, data))
    assert (plan is None) == bool(reason)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=64))
def test_forged_headers_never_reach_marshal_slowly(tmp_path: Path, data: bytes) -> None:
    # A header that claims the right magic but whose sum does not match must be rejected in
    # microseconds (hypothesis' default 200 ms deadline applies here) before marshal, which
    # would allocate whatever a length inside the payload claims. (A file with a correct sum
    # over lying lengths takes a writer with this user's rights: SECURITY.md.)
    plan, reason = hot.read_plan(_write(tmp_path, hot.PLAN_MAGIC + data))
    assert (plan is None) == bool(reason)


@settings(
    max_examples=examples(400),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=_plans)
def test_hostile_plans_never_raise_nor_apply_unsafe_changes(
    tmp_path: Path, plan: dict[str, Any]
) -> None:
    # As start-up does: a plan is applied only once valid_cached_plan accepted it.
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "plan"
    path.write_bytes(_plancache.encode_plan(plan))
    os.chmod(path, 0o600)
    lookup = _plankey.native_lookup({"PATH": "/bin"})
    loaded, reason = hot.valid_cached_plan(lookup, False, str(folder), str(path))
    if loaded is None:
        assert reason
        return
    env: dict[str, str] = {"PATH": "/bin"}
    try:
        applied = applied_by(loaded, env)
    except (TypeError, ValueError):
        return  # an unsettable record: raised before anything changed (run() records it)
    if applied is None:
        assert env == {"PATH": "/bin"}
        return
    for name, value in applied.items():
        assert name in hot.EXPORT_ALLOWED
        if value is not None:
            assert stat_signature(value) is not None  # it exists: valid_cached_plan just stat'ed it
    assert env["PATH"] == "/bin"


@settings(max_examples=examples(200))
@given(value=st.text(max_size=200))
def test_exported_record_parsing_never_raises(value: str) -> None:
    record = _plankey.parse_exported(value)
    assert set(record) <= hot.EXPORT_ALLOWED
    env = {"SSL_CERT_FILE": value, hot.EXPORTED_VAR: value}
    _user_ca_values(env, False)
    key, _record = _plankey.plan_key(env, False, (("SSL_CERT_DIR", "/d"),), ())
    assert tuple(map(_plankey.native_lookup(env), key[4])) in key[5]


def test_a_plan_whose_exported_file_vanished_is_a_miss(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("x")
    to_set = (("SSL_CERT_FILE", str(bundle)),)
    plan, folder, path = cache_plan(tmp_path, [(str(bundle), stat_signature(str(bundle)))], to_set)
    lookup = _plankey.native_lookup({})
    # No in-process trust: the file's trust section is empty.
    assert hot.valid_cached_plan(lookup, False, str(folder), str(path))[0] == dict(plan, trust=b"")
    bundle.unlink()
    assert hot.valid_cached_plan(lookup, False, str(folder), str(path))[1].startswith("changed: ")
