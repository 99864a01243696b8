"""Pages generated at build time from the executed chapters: the claims index, the status page,
the seed-sweep page and the run banner at the top of each chapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from dnnbook.claims import MIME, PASS
from dnnbook.runtime import BACKEND_NAMES


def chapter_title(nb: Mapping) -> str:
    """The first Markdown heading of a notebook."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def claims_in(nb_path: Path) -> list[dict]:
    """Every claim record (:data:`dnnbook.claims.MIME`) displayed in an executed notebook, in
    order: ``statement``, ``status``, ``holds``, ``evidence``, ``margin``, ``figure``."""
    nb = json.loads(Path(nb_path).read_text())
    found = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            rec = (
                out.get("data", {}).get(MIME) if out.get("output_type") == "display_data" else None
            )
            if rec:
                found.append({**rec, "holds": rec["status"] == PASS})
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claims_page(paths: list[Path]) -> str:
    """Markdown of the claims index: every claim of every chapter with its evidence and status."""
    lines = [
        "# Claims index",
        "",
        "Every claim the chapters print, with the evidence that decided it in this build. A claim",
        "that does not hold stops the build, so every claim listed here held when the book was made.",
        "",
    ]
    total = 0
    for p in paths:
        nb = json.loads(p.read_text())
        found = claims_in(p)
        total += len(found)
        lines += [f"## [{chapter_title(nb) or p.stem}](chapters/{p.stem}.ipynb)", ""]
        if not found:
            lines += ["No claims.", ""]
            continue
        lines += ["| status | claim | evidence | shown in |", "|---|---|---|---|"]
        for c in found:
            status = "✓ holds" if c["holds"] else f"{c['status']} fails"
            lines.append(
                f"| {status} | {_cell(c['statement'])} | {_cell(c['evidence'])} | {_cell(c['figure'])} |"
            )
        lines.append("")
    lines.insert(4, f"This build checked **{total}** claims.")
    lines.insert(5, "")
    return "\n".join(lines) + "\n"


def status_page(status: Mapping[str, Mapping]) -> str:
    """Markdown of the execution status page: profile, backend, device, time and date per chapter."""
    lines = [
        "# Execution status",
        "",
        "Every chapter of this book was executed when the book was built. This table says how.",
        "",
        "| chapter | profile | backend | environment | seconds | executed |",
        "|---|---|---|---|---|---|",
    ]
    for name in sorted(status):
        s = status[name]
        lines.append(
            f"| {name} | {s.get('profile', '')} | {s.get('backend', '')} | "
            f"{_cell(s.get('environment', ''))} | {s.get('seconds', '')} | {s.get('date', '')} |"
        )
    return "\n".join(lines) + "\n"


def _environment(line: str) -> dict[str, str]:
    """The parts of ``runtime.setup``'s environment line: ``backend``, ``keras``, ``device``, ``seed``."""
    found = {}
    for part in (p.strip() for p in line.split("|")):
        if part.startswith(("backend ", "keras ", "seed ")):
            found[part.split(" ", 1)[0]] = part.split(" ", 1)[1]
        elif part.startswith(("CPU ", "GPU ")):
            found["device"] = part
    return found


def run_banner(run: Mapping) -> str:
    """Markdown of a chapter's run banner, from its ``status.json`` record: profile, backend,
    seeds, hardware, date and seconds."""
    env = _environment(run.get("environment", ""))
    backend = env.get("backend") or run.get("backend", "?")
    if env.get("keras"):
        backend += f", Keras {env['keras']}"
    seed = run.get("seed", env.get("seed"))
    seeds = (
        f"{seed}, {int(seed) + 1}, … (base seed {seed})" if str(seed).isdigit() else "the chapter's"
    )
    parts = [
        f"profile **{run.get('profile', '?')}**",
        f"backend {backend}",
        f"seeds {seeds}",
        f"hardware {env.get('device', 'not recorded')}",
        f"executed {run.get('date', '?')} in {run.get('seconds', '?')} s",
    ]
    return (
        "```{admonition} How this page was run\n:class: dnnbook-run-banner\n\n"
        + " · ".join(parts)
        + ". Every chapter: {doc}`/status`.\n```\n"
    )


def _sweep_order(table: tuple[str, str, Path]) -> tuple:
    """Quick before full, then the backends in the book's order."""
    profile, backend, _ = table
    known = list(BACKEND_NAMES)
    return (profile != "quick", profile, known.index(backend) if backend in known else len(known))


def _table_claim(line: str) -> str | None:
    """The claim statement of one row of a sweep table (``| chapter | claim | ...``), or None
    for any other line."""
    if not line.startswith("| ") or line.startswith(("| chapter ", "|---")):
        return None
    cells = [c.strip() for c in line.replace("\\|", "\x00").split("|")[1:-1]]
    return cells[1].replace("\x00", "|") if len(cells) > 1 else None


def current_rows(body: list[str], statements: set[str] | None) -> tuple[list[str], int]:
    """The lines of a sweep table without the rows of claims that this build no longer prints
    (a claim restated or removed since the sweep), and how many rows were left out."""
    if statements is None:
        return body, 0
    kept, dropped = [], 0
    for line in body:
        claim = _table_claim(line)
        if claim is not None and claim not in statements:
            dropped += 1
            continue
        kept.append(line)
    return kept, dropped


def sweep_page(results: Path, statements: set[str] | None = None) -> str:
    """Markdown of the seed-sweep page: the committed sweep tables (``results/sweep-PROFILE-
    BACKEND.md``, written by ``python -m dnnbook sweep --save``), or how to make one. With
    ``statements`` (the claims this build printed) a table shows only the rows of those claims
    and says how many rows of earlier claims it leaves out."""
    lines = [
        "# Claims over seeds",
        "",
        "A claim must hold for any base seed, not only the one this build ran. The seed sweep",
        "(`python -m dnnbook sweep --seeds 1,2,3,4,5`) executes the chapters at several base seeds",
        "and tabulates every claim's status and margin at each.",
        "",
    ]
    tables = []  # (profile, backend, path) of each results/sweep-PROFILE-BACKEND.md
    for path in Path(results).glob("sweep-*.md") if results else []:
        profile, _, backend = path.stem.removeprefix("sweep-").partition("-")
        tables.append((profile, backend, path))
    if not tables:
        return "\n".join(lines + ["No sweep has been committed yet.", ""])
    for profile, backend, path in sorted(tables, key=_sweep_order):
        body = path.read_text(encoding="utf-8").splitlines()
        if body and body[0].startswith("# "):
            body = body[1:]
        body, dropped = current_rows(body, statements)
        name = BACKEND_NAMES.get(backend, backend)
        lines += [f"## Profile {profile}" + (f", {name}" if name else ""), "", *body, ""]
        if dropped:
            lines += [
                f"{dropped} rows of this table are left out: their claims were restated or "
                "removed after this sweep, and the current claims have not been swept with "
                "this profile and backend yet.",
                "",
            ]
    return "\n".join(lines) + "\n"


def write_pages(
    site: Path, paths: list[Path], status: Mapping[str, Mapping], results: Path | None = None
) -> None:
    """Write ``claims.md``, ``defaults.md``, ``article.md``, ``status.md`` and ``sweep.md`` into the staged book
    folder; ``results`` holds the committed sweep tables."""
    from dnnbook.book import article, defaults

    (site / "claims.md").write_text(claims_page(paths), encoding="utf-8")
    by_chapter = {p.stem: claims_in(p) for p in paths}
    printed = {c["statement"] for found in by_chapter.values() for c in found}
    (site / "sweep.md").write_text(sweep_page(results, printed), encoding="utf-8")
    defaults.write(site, by_chapter, results)
    article.write(site, by_chapter, results)
    names = {p.stem for p in paths}
    (site / "status.md").write_text(
        status_page({k: v for k, v in status.items() if k in names}), encoding="utf-8"
    )


def restrict_toc(toc_path: Path, keep: list[str]) -> None:
    """Drop chapters not in ``keep`` from a staged ``_toc.yml`` (for partial builds)."""
    import yaml

    toc = yaml.safe_load(toc_path.read_text())
    for part in toc.get("parts", []):
        part["chapters"] = [
            c
            for c in part["chapters"]
            if not c["file"].startswith("chapters/") or c["file"].split("/")[-1] in keep
        ]
    toc["parts"] = [p for p in toc.get("parts", []) if p["chapters"]]
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False))
