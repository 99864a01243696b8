"""Stop before any long work when the disk has too little room for what `make` will install.

    python3 tools/disk_check.py GB WHAT

``GB`` is what the command needs on the repository's disk when nothing is installed yet
(``docs/results.md`` has the measured figures); what is already there (``.venv``, Colab's
environment in ``_build/colab/env``) counts towards it. Exit status 0 when there is room, 1
(with one line that says how much is needed and free, and what to do) when there is not, 2 for
bad input. ``GB`` 0 skips the check. Standard library only: it runs before ``.venv`` exists.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = (".venv", "_build/colab/env")  # what a `make` run installs, relative to ROOT
GB = 1e9


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it does not exist), links not followed."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            total += stat.st_size
    return total


def shortfall(needed: float, free: float, present: float) -> float:
    """Gigabytes missing: ``needed`` less what is ``present`` already, less ``free`` (≥ 0)."""
    return max(0.0, needed - present - free)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: disk_check.py GB WHAT, e.g. disk_check.py 8 'make test'", file=sys.stderr)
        return 2
    try:
        needed = float(argv[0])
    except ValueError:
        print(f"disk_check.py: GB must be a number, not {argv[0]!r}", file=sys.stderr)
        return 2
    if needed <= 0:
        return 0
    free = shutil.disk_usage(ROOT).free / GB
    if free >= needed:  # room enough whatever is installed: no need to measure it
        return 0
    present = sum(tree_bytes(ROOT / p) for p in INSTALLED) / GB
    missing = shortfall(needed, free, present)
    if missing > 0:
        print(
            f"{argv[1]} needs about {needed:.0f} GB on the disk of {ROOT} "
            f"({present:.1f} GB of it installed already) and {free:.1f} GB is free: free "
            f"{missing:.1f} GB more (`make clean` removes _build), or set DISK_GB=0 to try anyway",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
