"""Time each step of `make test` or `make book`, here and, side by side, at another commit.

Usage:
    python benchmarks/make_times.py test                  # the steps of `make test`, here
    python benchmarks/make_times.py test --rev HEAD~1     # ... and at HEAD~1, in a clean clone
    python benchmarks/make_times.py book PROFILE=full BACKEND=jax

`test` runs the prerequisites of the Makefile's `test` target one after another (as `make
test` does), each as its own `make` call, and prints the seconds of each. `book` runs the
steps `make book` runs (install and data, then execute, validate and build as separate
`python -m dnnbook` calls with the Makefile's PROFILE, BACKEND and JOBS) and prints those,
then each chapter's execution time. With `--rev`, the same steps run first in a fresh clone of
that commit (under `_build/make-times/`), so both columns come from one machine under the
same load. Beside each step's seconds it prints how many cores the step kept busy on average
(the CPU time of its processes over its wall time): a step well under the machine's cores
leaves room to run something beside it. A step that fails is marked and the rest still run.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_steps(makefile: Path) -> list[str]:
    """The prerequisites of the ``test`` target, in the order ``make test`` runs them."""
    match = re.search(r"^test:([^\n#]*)", makefile.read_text(), flags=re.M)
    if not match:
        raise SystemExit(f"no `test:` target in {makefile}")
    return match.group(1).split()


def book_steps(variables: dict[str, str]) -> list[tuple[str, list[str]]]:
    """The steps of ``make book`` as separate commands: (name, argv)."""
    profile = variables.get("PROFILE", "auto")
    backend = variables.get("BACKEND", "tensorflow")
    jobs = variables.get("JOBS", "1")
    py = [".venv/bin/python", "-m", "dnnbook"]
    opts = ["--profile", profile, "--backend", backend, "--jobs", jobs]
    install = ["make", "install", "data", *(f"{k}={v}" for k, v in variables.items())]
    return [
        ("install + data", install),
        ("execute", [*py, "execute", *opts]),
        ("validate (nbval)", [*py, "validate", "--jobs", jobs]),
        ("build (jupyter-book)", [*py, "build"]),
    ]


def run_steps(where: Path, target: str, variables: dict[str, str]) -> dict[str, float | str]:
    """Run the steps in ``where``; return step name -> seconds (or a failure mark)."""
    if target == "test":
        steps = [
            (s, ["make", s, *(f"{k}={v}" for k, v in variables.items())])
            for s in test_steps(where / "Makefile")
        ]
    else:
        steps = book_steps(variables)
    times: dict[str, float | str] = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DNNBOOK_BUILD", None)
    log_dir = where / "_build" / "make-times-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()
    for name, argv in steps:
        log = log_dir / (re.sub(r"\W+", "_", name) + ".log")
        print(f"== {where.name}: {name}: {' '.join(argv)} (log {log})", flush=True)
        start, cpu = time.perf_counter(), _children_cpu()
        with log.open("w") as out:
            rc = subprocess.call(argv, cwd=where, env=env, stdout=out, stderr=subprocess.STDOUT)
        elapsed = time.perf_counter() - start
        seconds = round(elapsed, 1)
        times[name] = seconds if rc == 0 else f"FAILED ({rc}) after {seconds}"
        busy = ""
        if elapsed >= 1:  # a step that only starts something in the background has no figure
            times[f"{name}: cores busy"] = round((_children_cpu() - cpu) / elapsed, 2)
            busy = f", {times[f'{name}: cores busy']} cores busy on average"
        print(f"   {times[name]} s{busy}", flush=True)
    times["total"] = round(time.perf_counter() - total, 1)
    status = where / "_build" / "executed" / "status.json"
    if target == "book" and status.exists():
        for chapter, s in sorted(json.loads(status.read_text()).items()):
            times[f"  {chapter}"] = s.get("seconds", "")
    return times


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes and their descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def clone(rev: str) -> Path:
    """A fresh clone of this repository at ``rev`` under ``_build/make-times/``."""
    sha = subprocess.check_output(["git", "rev-parse", "--short", rev], cwd=ROOT, text=True).strip()
    dest = ROOT / "_build" / "make-times" / sha
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.check_call(["git", "clone", "-q", str(ROOT), str(dest)])
    subprocess.check_call(["git", "checkout", "-q", sha], cwd=dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target", choices=("test", "book"))
    p.add_argument("variables", nargs="*", help="make variables, e.g. PROFILE=full")
    p.add_argument("--rev", help="also time this commit, in a fresh clone, before this tree")
    args = p.parse_args(argv)
    bad = [v for v in args.variables if "=" not in v]
    if bad:
        p.error(f"make variables look like NAME=value, got {', '.join(bad)}")
    variables = dict(v.split("=", 1) for v in args.variables)
    columns: dict[str, dict[str, float | str]] = {}
    if args.rev:
        columns[args.rev] = run_steps(clone(args.rev), args.target, variables)
    columns["this tree"] = run_steps(ROOT, args.target, variables)
    rows = list(dict.fromkeys(k for col in columns.values() for k in col))
    print(
        f"\n`make {args.target}` step times (seconds), {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print("| step | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in rows:
        print(f"| {row} | " + " | ".join(str(col.get(row, "")) for col in columns.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
