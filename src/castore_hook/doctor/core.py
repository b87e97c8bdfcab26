"""What every doctor check shares: the verdicts, the ``Check`` each returns, and the
``Context`` (environment, config, plan) they all read, made once per run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from castore_hook import _plankey, _session, config

if TYPE_CHECKING:
    from castore_hook._contracts import Plan

#: The verdicts, from fine to failed (``info``: worth knowing, nothing to fix). A ``fail``
#: makes ``castore-hook doctor`` exit 1.
OK = "ok"
WARN = "warn"
FAIL = "fail"
INFO = "info"


@dataclass
class Check:
    """One line of the report: its area (the heading it is listed under), verdict, title,
    details and, for ``warn``/``fail``, the fix."""

    area: str
    verdict: str
    title: str
    details: list[str] = field(default_factory=list)
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "verdict": self.verdict,
            "title": self.title,
            "details": self.details,
            "fix": self.fix,
        }


@dataclass
class Context:
    """What the checks share: the environment as the user set it and the parsed config."""

    environ: Mapping[str, str]
    ignore_env: bool
    env: dict[str, str]
    cfg: config.Config
    plan: Optional[Plan]
    timing: bool = True


def make_context(timing: bool = True) -> Context:
    """The context of this interpreter: its environment, as start-up reads it, and the
    config and plan it decides from (``timing``: whether ``cost`` may time start-up)."""
    environ = dict(os.environ)
    ignore_env = config.hook_environ_ignored()
    env = _plankey.decision_environ(environ, ignore_env)
    plan = _session.plan()
    return Context(
        environ=environ,
        ignore_env=ignore_env,
        env=env,
        cfg=config.load_config(env),
        plan=plan if isinstance(plan, dict) else None,
        timing=timing,
    )
