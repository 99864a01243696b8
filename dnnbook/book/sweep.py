"""The seed sweep: the chapters executed at several base seeds, every claim tabulated per seed.

``python -m dnnbook sweep --seeds 1,2,3`` executes the chosen chapters once per base seed, each
seed into its own build folder (``_build/sweep/PROFILE-BACKEND/seed-N``, :func:`default_root`)
with ``DNNBOOK_CLAIMS=report`` so that a claim that fails does not stop the claims after it,
then writes ``claims.md`` and ``claims.csv`` beside the seed folders: one row per claim, its
status and margin at each seed, the smallest margin and whether it held at every seed. A
chapter that crashed at a seed says so in its rows and below the table."""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dnnbook.claims import PASS


@dataclass
class Run:
    """One chapter at one seed: its claims in order, or why it has none."""

    claims: list[dict] = field(default_factory=list)
    crashed: str = ""  # "ValueError: boom (cell 7)" when the chapter stopped with an error
    missing: bool = False  # never executed at this seed

    def no_record(self) -> str:
        """The cell of a claim this run did not print: why there is no record."""
        return "crashed" if self.crashed else "not run" if self.missing else "not printed"


@dataclass
class Row:
    """One claim of one chapter across the seeds."""

    chapter: str
    statement: str
    cells: dict[int, dict | str] = field(
        default_factory=dict
    )  # seed -> claim record or "crashed"/"not run"

    def margins(self) -> list[float]:
        return [
            c["margin"]
            for c in self.cells.values()
            if isinstance(c, dict) and c.get("margin") is not None
        ]

    def held_everywhere(self, seeds: list[int]) -> bool:
        """Whether the claim held at every seed its chapter was executed at (a seed where the
        chapter did not run at all, "not run", is not counted; one where it crashed or did
        not print the claim is), and at one seed at least."""
        ran = [s for s in seeds if self.cells.get(s) != "not run"]
        return bool(ran) and all(
            isinstance(self.cells.get(s), dict) and self.cells[s]["status"] == PASS for s in ran
        )


def _call(cmd: list[str], env: dict, cwd: str, prefix: str) -> int:
    """Run ``cmd``; with a ``prefix``, pass its output on line by line with the prefix (runs
    side by side stay readable). Its exit status."""
    if not prefix:
        return subprocess.call(cmd, env=env, cwd=cwd)
    from dnnbook.book.pipeline import relay_lines

    return relay_lines(cmd, cwd, prefix, env=env)


def default_root(profile: str, backend: str) -> Path:
    """Where a sweep of ``profile`` under ``backend`` keeps its seed folders and tables: one
    folder per profile and backend, so that a sweep never overwrites another's chapters."""
    from dnnbook.book import pipeline

    return pipeline.BUILD / "sweep" / f"{profile}-{backend}"


def seed_folder(root: Path, seed: int) -> Path:
    return root / f"seed-{seed}"


def _crash(nb_path: Path) -> str:
    """The error a failed executed notebook stopped on: ``Ename: evalue (cell N)``."""
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                where = f" (cell {cell['execution_count']})" if cell.get("execution_count") else ""
                return f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip() + where
    return "stopped before its end (no error output recorded)"


def read_run(build: Path, chapter: str) -> Run:
    """What one seed's build folder holds for ``chapter``."""
    from dnnbook.book.pages import claims_in

    executed = build / "executed" / "chapters" / f"{chapter}.ipynb"
    failed = build / "failed" / f"{chapter}.ipynb"
    if executed.exists():
        return Run(claims=claims_in(executed))
    if failed.exists():
        return Run(claims=claims_in(failed), crashed=_crash(failed))
    return Run(missing=True)


def collect(
    root: Path, chapters: list[str], seeds: list[int]
) -> tuple[list[Row], dict[tuple[str, int], Run]]:
    """Rows of claims (in the order the chapters first print them) and every run, read from
    ``root/seed-N``."""
    runs = {(c, s): read_run(seed_folder(root, s), c) for c in chapters for s in seeds}
    rows: dict[tuple[str, str], Row] = {}
    for c in chapters:
        for s in seeds:
            for rec in runs[c, s].claims:
                rows.setdefault((c, rec["statement"]), Row(c, rec["statement"])).cells[s] = rec
    for row in rows.values():
        for s in seeds:
            if s not in row.cells:
                row.cells[s] = runs[row.chapter, s].no_record()
    return list(rows.values()), runs


def _cell(value: dict | str) -> str:
    if isinstance(value, str):
        return value
    margin = value.get("margin")
    return value["status"] + ("" if margin is None else f" {margin:+.3g}")


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_markdown(
    rows: list[Row], runs: dict[tuple[str, int], Run], seeds: list[int], about: str = ""
) -> str:
    """The sweep as Markdown: the claims table, then the chapters that crashed or did not run."""
    held = sum(r.held_everywhere(seeds) for r in rows)
    lines = ["# Seed sweep", ""]
    if about:
        lines += [about, ""]
    lines += [
        f"{held} of {len(rows)} claims held at every seed their chapter was executed at. A cell "
        "shows the claim's status at that base seed and its margin (how far the measure lay "
        "from the claim's threshold, in the claim's own units; positive when it held); \"not "
        'run": the chapter was not executed at that seed.',
        "",
        "| chapter | claim | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | smallest margin | held at every seed |",
        "|---|---|" + "---|" * len(seeds) + "---|---|",
    ]
    for r in rows:
        margins = r.margins()
        smallest = f"{min(margins):+.3g}" if margins else ""
        lines.append(
            f"| {r.chapter} | {_md(r.statement)} | "
            + " | ".join(_md(_cell(r.cells[s])) for s in seeds)
            + f" | {smallest} | {'yes' if r.held_everywhere(seeds) else '**no**'} |"
        )
    chapters = list(dict.fromkeys(c for c, _ in runs))
    partial = {
        c: [s for s in seeds if not runs[c, s].missing]
        for c in chapters
        if any(runs[c, s].missing for s in seeds)
    }
    if partial:
        lines += ["", "Chapters executed at some of the seeds only:", ""]
        lines += [
            f"- {c}: seeds {', '.join(map(str, ran)) or 'none'}" for c, ran in partial.items()
        ]
    trouble = [(c, s, run) for (c, s), run in runs.items() if run.crashed]
    if trouble:
        lines += ["", "Chapters that did not run to their end:", ""]
        lines += [
            f"- {c} at seed {s}: crashed, {_md(run.crashed)}"
            for c, s, run in sorted(trouble, key=lambda t: (t[0], t[1]))
        ]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[Row], seeds: list[int]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "chapter",
                "claim",
                *[f"{k} seed {s}" for s in seeds for k in ("status", "margin")],
                "smallest margin",
                "held at every seed",
            ]
        )
        for r in rows:
            cells = []
            for s in seeds:
                c = r.cells[s]
                cells += (
                    [c["status"], "" if c.get("margin") is None else c["margin"]]
                    if isinstance(c, dict)
                    else [c, ""]
                )
            margins = r.margins()
            w.writerow(
                [
                    r.chapter,
                    r.statement,
                    *cells,
                    min(margins) if margins else "",
                    r.held_everywhere(seeds),
                ]
            )


def write_tables(
    root: Path, chapters: list[str], seeds: list[int], about: str = "", join: Path | None = None
) -> tuple[Path, bool]:
    """Write ``root/claims.md`` and ``root/claims.csv``; return the Markdown path and whether
    every claim held at every seed with no chapter crashed. With ``join`` (a committed
    table's CSV), its other seeds are tabulated beside these (:mod:`.sweep_join`)."""
    rows, runs = collect(root, chapters, seeds)
    if join is not None:
        from dnnbook.book.sweep_join import join as join_table

        rows, runs, seeds = join_table(rows, runs, seeds, join)
    root.mkdir(parents=True, exist_ok=True)
    md = root / "claims.md"
    md.write_text(table_markdown(rows, runs, seeds, about), encoding="utf-8")
    write_csv(root / "claims.csv", rows, seeds)
    clean = all(r.held_everywhere(seeds) for r in rows) and not any(
        run.crashed or run.missing for run in runs.values()
    )
    return md, clean


def run(
    chapters: list[str],
    profile: str,
    seeds: list[int],
    *,
    backend: str,
    jobs: int = 1,
    root: Path | None = None,
    join: Path | None = None,
) -> tuple[Path, bool]:
    """Execute ``chapters`` at each base seed (``python -m dnnbook execute`` in a process of its
    own, into ``root/seed-N``), then write the tables (:func:`write_tables`).

    Up to ``jobs`` chapters run at once: a seed's chapters side by side first, then, when
    ``jobs`` covers several seeds' worth of chapters (a GPU shared by all), several seeds at
    once, their output lines prefixed with ``[seed N]``."""
    from dnnbook.book import pipeline

    root = root or default_root(profile, backend)
    per_seed = max(1, min(jobs, len(chapters)))
    seeds_at_once = max(1, min(len(seeds), jobs // per_seed))

    def one(i: int, seed: int) -> None:
        build = seed_folder(root, seed)
        print(f"== seed {seed} ({i}/{len(seeds)}): {', '.join(chapters)} into {build}", flush=True)
        env = {**os.environ, "DNNBOOK_BUILD": str(build), "DNNBOOK_CLAIMS": "report"}
        cmd = pipeline.execute_command(
            profile, chapters=",".join(chapters), backend=backend, seed=seed, jobs=per_seed
        )
        prefix = f"[seed {seed}] " if seeds_at_once > 1 else ""
        if _call(cmd, env, str(pipeline.ROOT), prefix) != 0:
            print(f"== seed {seed}: a chapter failed (reported in the table)", flush=True)

    with ThreadPoolExecutor(max_workers=seeds_at_once) as pool:
        for done in [pool.submit(one, i, s) for i, s in enumerate(seeds, 1)]:
            done.result()
    return tabulate(chapters, profile, seeds, backend=backend, root=root, join=join)


def tabulate(
    chapters: list[str],
    profile: str,
    seeds: list[int],
    *,
    backend: str,
    root: Path | None = None,
    executed: bool = True,
    join: Path | None = None,
) -> tuple[Path, bool]:
    """Write the tables of what ``root/seed-N`` holds (:func:`write_tables`), dated today:
    "executed" after :func:`run`, "tabulated" for folders filled elsewhere; ``join``: a
    committed table whose other seeds join these."""

    root = root or default_root(profile, backend)
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    about = (
        f"Profile {profile}, backend {backend}, chapters {', '.join(chapters)}, "
        f"base seeds {', '.join(map(str, seeds))}; "
        f"{'executed' if executed else 'tabulated'} {date}"
        + (f", joined to the other seeds of {join.name}." if join else ".")
    )
    return write_tables(root, chapters, seeds, about, join)
