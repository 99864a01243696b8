"""Run some code cells of a chapter, timing each: a section rerun without the whole chapter.

Usage: python benchmarks/run_cells.py CHAPTER MARKER [MARKER ...] [--profile full]
Runs, in the chapter's order, every code cell whose source contains one of the markers (plain
text), in one namespace with the parameters PROFILE and SEED, from the chapters folder; prints each
cell's last expression (figures aside) and time. Name the cells a section needs: the setup cell
(e.g. "cfg = dnnbook.profiles.get") and the data cell come first. On the GPU machine, after
benchmarks/gpu_full.sh installed the bundle: e.g.
  python benchmarks/run_cells.py 01 "cfg = dnnbook.profiles.get" "fmnist = data.standardize" clip_mlp clip_runs
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def chapter_path(name: str) -> Path:
    """The chapter notebook named by its number, stem or topic (``01``, ``01_gradients``, ``gradients``)."""
    from dnnbook.book import pipeline

    try:
        return pipeline.select([name])[0].path
    except pipeline.UsageError as e:
        raise SystemExit(str(e)) from None


def select(cells: list[dict], markers: list[str]) -> list[tuple[int, str]]:
    """(index, source) of the code cells that contain a marker; every marker must match one."""
    chosen = [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    chosen = [(i, s) for i, s in chosen if any(m in s for m in markers)]
    unmatched = [m for m in markers if not any(m in s for _, s in chosen)]
    if unmatched:
        raise SystemExit(f"no code cell contains {', '.join(map(repr, unmatched))}")
    return chosen


def run(cells: list[tuple[int, str]], namespace: dict) -> None:
    """Execute the cells in one namespace, printing each one's last expression and time."""
    for i, source in cells:
        start = time.time()
        tree = ast.parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, f"cell {i}", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), f"cell {i}", "eval"), namespace)
            if value is not None and not hasattr(value, "savefig"):
                print(value)
        print(f"-- cell {i}: {time.time() - start:.1f} s", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("chapter")
    p.add_argument("markers", nargs="+")
    from dnnbook.profiles import CHOICES

    p.add_argument("--profile", default="full", choices=CHOICES)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    path = chapter_path(args.chapter)
    cells = select(json.loads(path.read_text())["cells"], args.markers)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(path.parent)
    run(cells, {"PROFILE": args.profile, "SEED": args.seed})


if __name__ == "__main__":
    main()
