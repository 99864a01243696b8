"""Quick-profile wall time of every chapter, per backend. Prints a table; asserts nothing.

Usage: python benchmarks/chapter_times.py [--backends tensorflow,jax,torch] [--profile quick]
Each backend executes into its own folder (_build/bench-<backend>), leaving the book alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dnnbook.book import pipeline  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="tensorflow")
    p.add_argument("--profile", default="quick")
    p.add_argument("--chapters", default="")
    args = p.parse_args()
    table: dict[str, dict[str, float]] = {}
    for backend in args.backends.split(","):
        build = ROOT / "_build" / f"bench-{backend}"
        env = {**os.environ, "DNNBOOK_BUILD": str(build)}
        cmd = pipeline.execute_command(args.profile, chapters=args.chapters, backend=backend)
        print(f"== {backend}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        total = time.perf_counter() - start
        status = (
            json.loads((build / "executed" / "status.json").read_text())
            if (build / "executed" / "status.json").exists()
            else {}
        )
        table[backend] = {name: s["seconds"] for name, s in status.items()}
        table[backend]["(command, incl. start-up)"] = round(total, 1)
        if rc:
            table[backend]["(failed)"] = rc
    names = sorted({n for t in table.values() for n in t})
    backends = list(table)
    print(f"\nprofile {args.profile}, {os.cpu_count()} CPU cores, seconds:")
    print("| chapter | " + " | ".join(backends) + " |")
    print("|---|" + "---|" * len(backends))
    for n in names:
        print(f"| {n} | " + " | ".join(str(table[b].get(n, "–")) for b in backends) + " |")


if __name__ == "__main__":
    main()
