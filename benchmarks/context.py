#!/usr/bin/env python3
"""Per-call cost of ``ssl.create_default_context()``: stock Python against castore-hook.

Every HTTPS client that builds its own default context (urllib, http.client, asyncio,
aiohttp, urllib3) pays this once per context. Stock Python on OpenSSL 3 parses the whole CA
bundle for each one (~150 roots). castore-hook's patch loads the plan's trust through a
complete hashed folder (``capath``) when the system has one, so OpenSSL looks roots up
lazily instead (DESIGN §3, "Speed").

One venv with the castore-hook wheel; three cases, each run as fresh processes of that venv
in an environment built from scratch (no ``SSL_*``, ``PIP_*``, ``PYTHON*`` or
``CASTORE_HOOK_*`` from the calling shell):

* ``stock``        - ``CASTORE_HOOK_DISABLE=1``: exactly stock Python;
* ``exports-only`` - the default plan with ``patch = false``: only ``SSL_CERT_FILE``/
  ``SSL_CERT_DIR`` are exported, contexts load them the stock way;
* ``hook``         - the hook's default plan (no config file at all).

Rounds alternate the cases (rotating their order) so that drift of the machine hits all of
them alike; each process warms up, then times ``--calls`` calls with ``perf_counter_ns``.
The ratio is stock's median per call divided by the case's median.

Usage::

    python benchmarks/context.py [--python /path/to/python3.X] [--wheel dist/castore_hook-*.whl]
                                 [--venv EXISTING_VENV_WITH_THE_HOOK] [--calls 50]
                                 [--rounds 5] [--extra /abs/root.pem] [--markdown]

Without ``--wheel`` the repository is built with ``pip wheel``; without ``--venv`` a throw-away
venv is made from ``--python`` (default: this interpreter) and the wheel installed into it
with the calling environment (pip may need the network and the machine's proxy settings).
``--extra`` adds a root to the hook's config (as ``extra``), to price the merged bundle.
Standard library only; Python >= 3.9.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
MINIMAL_PATH = "/usr/bin:/bin"
MARK = "__castore_hook_original__"

WORKER = r"""
import json, os, ssl, sys, time
calls = int(sys.argv[1])
for _ in range(min(20, calls)):
    ssl.create_default_context()
clock = time.perf_counter_ns
samples = []
for _ in range(calls):
    start = clock()
    ssl.create_default_context()
    samples.append(clock() - start)
ctx = ssl.create_default_context()
info = {"samples": samples, "stats": ctx.cert_store_stats(),
        "wrapped": hasattr(ssl.SSLContext.load_default_certs, sys.argv[2]),
        "exported": {n: os.environ.get(n) for n in ("SSL_CERT_FILE", "SSL_CERT_DIR")},
        "python": sys.version.split()[0],
        "openssl": ssl.OPENSSL_VERSION, "form": None, "source": None}
if info["wrapped"] or info["exported"]["SSL_CERT_FILE"]:
    try:
        from castore_hook import status
        st = status()
        info["form"], info["source"] = st.get("form"), st.get("source")
        info["trail"] = [t for t in st.get("trail", []) if "in-process loading" in t]
    except Exception as exc:
        info["form"] = "status failed: %s" % exc
print(json.dumps(info))
"""


def ambient_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTORE_HOOK_")}
    for name in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH"):
        env.pop(name, None)
    return env


def hermetic_env(base: Path, venv_bin: Path, config: Optional[str]) -> Dict[str, str]:
    """Like tests.helpers.hermetic_env: nothing inherited, every folder under *base*."""
    names = {
        "HOME": "home",
        "XDG_CONFIG_HOME": "config",
        "XDG_CACHE_HOME": "cache",
        "XDG_DATA_HOME": "data",
        "XDG_STATE_HOME": "state",
        "XDG_CONFIG_DIRS": "etc-xdg",
        "XDG_RUNTIME_DIR": "run",
        "TMPDIR": "tmp",
    }
    env = {}
    for name, sub in names.items():
        path = base / sub
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700 if name == "XDG_RUNTIME_DIR" else 0o755)
        env[name] = str(path)
    os.chmod(base, 0o755)  # noqa: S103 - config folders must not look foreign to the hook
    env["PATH"] = f"{venv_bin}{os.pathsep}{MINIMAL_PATH}"
    env["LANG"] = "C.UTF-8"
    if config is not None:
        folder = base / "config" / "castore-hook"
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)  # noqa: S103
        (folder / "config.toml").write_text(config, encoding="utf-8")
        os.chmod(folder / "config.toml", 0o644)
    return env


def run(args: List[str], env: Dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
    )
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {args}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build_wheel(out: Path, python: str) -> Path:
    run(
        [python, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO_ROOT)],
        ambient_env(),
    )
    wheels = sorted(out.glob("castore_hook-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"expected one wheel in {out}, found {wheels}")
    return wheels[0]


def make_venv(root: Path, python: str, wheel: Path) -> Path:
    run([python, "-m", "venv", str(root)], ambient_env())
    vpy = root / "bin" / "python"
    run(
        [str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        ambient_env(),
    )
    return vpy


def measure(vpy: Path, env: Dict[str, str], calls: int) -> Dict[str, Any]:
    out = run([str(vpy), "-c", WORKER, str(calls), MARK], env)
    result: Dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def fmt_us(ns: float) -> str:
    us = ns / 1000.0
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="base interpreter for the venv")
    parser.add_argument("--wheel", type=Path, help="castore-hook wheel (default: build it)")
    parser.add_argument("--venv", type=Path, help="an existing venv with castore-hook installed")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per process")
    parser.add_argument("--rounds", type=int, default=5, help="processes per case, alternating")
    parser.add_argument("--extra", action="append", default=[], help="an extra root (abs path)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="castore-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if opts.venv:
            vpy = opts.venv / "bin" / "python"
        else:
            wheel = opts.wheel or build_wheel(tmp / "wheel", opts.python)
            vpy = make_venv(tmp / "venv", opts.python, wheel)
        extra = "extra = " + json.dumps([str(Path(p).resolve()) for p in opts.extra]) + "\n"
        configs: Dict[str, Optional[str]] = {
            "stock": None,
            "exports-only": extra + "patch = false\n",
            "hook": extra if opts.extra else None,
        }
        envs = {
            name: hermetic_env(tmp / f"env-{name}", vpy.parent, config)
            for name, config in configs.items()
        }
        envs["stock"]["CASTORE_HOOK_DISABLE"] = "1"
        for env in envs.values():  # decide and cache each plan before timing
            run([str(vpy), "-c", "pass"], env)

        names = list(configs)
        per_round: Dict[str, List[float]] = {name: [] for name in names}
        samples: Dict[str, List[int]] = {name: [] for name in names}
        last: Dict[str, Dict[str, Any]] = {}
        for index in range(opts.rounds):
            order = names[index % len(names) :] + names[: index % len(names)]
            for name in order:
                result = measure(vpy, envs[name], opts.calls)
                per_round[name].append(statistics.median(result["samples"]))
                samples[name].extend(result["samples"])
                last[name] = result

    stock = statistics.median(samples["stock"])
    rows = []
    for name in names:
        med = statistics.median(samples[name])
        rounds = per_round[name]
        info = last[name]
        lazy = info["wrapped"] and any("uses the folder" in t for t in info.get("trail", []))
        trust = f"{info['stats']['x509_ca']} roots parsed" + (" + hashed folder" if lazy else "")
        rows.append(
            (
                name,
                fmt_us(med),
                f"{fmt_us(min(rounds))} - {fmt_us(max(rounds))}",
                f"{stock / med:.1f}x",
                trust,
            )
        )
    meta = last["hook"]
    header = (
        f"Python {meta['python']} ({platform.system()} {platform.machine()}), "
        f"{meta['openssl']}; hook plan: source {meta.get('source')!r}, form {meta.get('form')!r}; "
        f"{opts.rounds} alternating rounds x {opts.calls} calls per case"
    )
    cols = ("case", "median per call", "round medians", "speed-up vs stock", "trust in context")
    if opts.markdown:
        print(header + "\n")
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---" for _ in cols) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        print(header)
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


if __name__ == "__main__":
    main()
