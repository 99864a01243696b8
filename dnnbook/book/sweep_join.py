"""Joining a new sweep to a committed one: the seeds swept now beside those of the table in
``results/`` (``python -m dnnbook sweep --join``), so that seeds swept on different days or
machines tabulate together without their build folders."""

from __future__ import annotations

import csv
from pathlib import Path

from dnnbook.book.sweep import Row, Run

# the cells of a seed where a claim has no record (write_csv writes them as they are)
NO_RECORD = ("not run", "not printed", "crashed")


def read_csv(path: Path) -> tuple[list[Row], list[int]]:
    """The rows and seeds of a table that :func:`dnnbook.book.sweep.write_csv` wrote."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        seeds = [int(h.removeprefix("status seed ")) for h in header if h.startswith("status ")]
        rows = []
        for line in reader:
            row = Row(line[0], line[1])
            for i, seed in enumerate(seeds):
                status, margin = line[2 + 2 * i], line[3 + 2 * i]
                row.cells[seed] = (
                    status
                    if status in NO_RECORD
                    else {
                        "statement": line[1],
                        "status": status,
                        "margin": float(margin) if margin else None,
                    }
                )
            rows.append(row)
    return rows, seeds


def join(
    rows: list[Row], runs: dict[tuple[str, int], Run], seeds: list[int], committed: Path
) -> tuple[list[Row], dict[tuple[str, int], Run], list[int]]:
    """``rows``, ``runs`` and ``seeds`` of a new sweep with the committed table's cells
    wherever the new sweep did not run: a chapter swept again at a seed replaces that
    chapter's old cells at that seed, every other cell of the committed table stays. Rows
    keep their chapter's order: the claims printed now first, then the committed table's
    other claims (earlier wordings)."""
    old_rows, old_seeds = read_csv(committed)
    swept = {c for c, _ in runs}
    by_key = {(r.chapter, r.statement): r for r in rows}
    merged = list(rows)
    for old in old_rows:
        row = by_key.get((old.chapter, old.statement))
        if row is None:
            row = by_key[old.chapter, old.statement] = Row(old.chapter, old.statement)
            merged.append(row)
        for seed in old_seeds:
            if old.chapter not in swept or seed not in seeds:
                row.cells[seed] = old.cells[seed]
    runs = dict(runs)
    chapters = list(dict.fromkeys(r.chapter for r in merged))
    every = sorted({*seeds, *old_seeds})
    for chapter in chapters:
        for seed in every:
            if (chapter, seed) in runs:
                continue
            cells = [o.cells.get(seed, "not run") for o in old_rows if o.chapter == chapter]
            runs[chapter, seed] = Run(
                missing=all(c == "not run" for c in cells),
                crashed="crashed (see the committed table)" if "crashed" in cells else "",
            )
    for row in merged:
        for seed in every:
            if seed not in row.cells:
                row.cells[seed] = runs[row.chapter, seed].no_record()
    merged.sort(key=lambda r: r.chapter)  # stable: each chapter's rows keep their order
    return merged, runs, every
