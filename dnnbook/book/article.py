"""The page "The article, checked": the source article's assertions in its order, each with the
book's verdict and the claims of this build that decide it (linked to their boxes, with their
record over the committed sweeps). A cited claim the chapters no longer print fails the build,
so the page cannot drift from the measurements; a verdict whose claims did not all hold is
shown as such."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dnnbook.book import citations

VERDICTS = (
    "holds",
    "holds with a caveat",
    "does not hold",
    "not settled here",  # measured and shown, but the interval is too wide to claim it
    "not measured here",
)


@dataclass(frozen=True)
class Assertion:
    """One assertion of the article: its words, the chapter that tests it, the verdict, what
    the book found (or why it is not measured), and phrases of the claims that decide it."""

    says: str
    chapter: str
    verdict: str
    finding: str
    claims: tuple[citations.Phrase, ...] = ()  # a tuple item: per-profile alternatives

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}; choices: {', '.join(VERDICTS)}")
        if self.verdict not in ("not measured here", "not settled here") and not self.claims:
            raise ValueError(f"the verdict {self.verdict!r} on {self.says!r} needs a claim")


def page(
    claims_by_chapter: dict[str, list[dict]],
    results: Path | None = None,
    assertions: tuple[Assertion, ...] | None = None,
) -> str:
    """Markdown of the page; ``claims_by_chapter`` maps a chapter stem to its claims,
    ``results`` holds the committed sweep tables."""
    if assertions is None:
        from dnnbook.book.article_rows import ASSERTIONS as assertions
    swept = citations.sweeps(results)
    lines = [
        "# The article, checked",
        "",
        "The source article, *Deep Neural Networks into Deeper*, makes the assertions below, in",
        "this order. For each, the book gives its verdict — **holds**, **holds with a caveat**,",
        "**does not hold**, **not settled here** (measured, but too close to call at this size)",
        "or **not measured here** (and why) — and the claims of this build",
        "that decide it: each links to its box in the chapter, with its evidence and how it",
        "fared over the base seeds of the committed sweeps.",
        "",
        "| # | the article says | verdict | what the book measured | claims of this build |",
        "|---|---|---|---|---|",
    ]
    counts = dict.fromkeys(VERDICTS, 0)
    for i, a in enumerate(assertions, 1):
        cited = []
        all_hold = True
        for phrase in a.claims:
            hit = citations.find(claims_by_chapter, a.chapter, phrase, f"assertion {i}")
            if hit is None:
                cited.append(f"(chapter {a.chapter} not built)")
                continue
            stem, c = hit
            all_hold &= bool(c["holds"])
            mark = "✓" if c["holds"] else "✗"
            cited.append(
                citations.link(stem, c, f"{mark} {citations.cell(c['statement'])}")
                + f" — {citations.cell(c['evidence'])}"
                + f" (over seeds: {citations.cell(citations.over_seeds(swept, c['statement']))})"
            )
        verdict = a.verdict if all_hold else f"{a.verdict} (a cited claim did not hold)"
        counts[a.verdict] += 1
        lines.append(
            f"| {i} | {citations.cell(a.says)} | **{verdict}** | {citations.cell(a.finding)} | "
            + ("<br>".join(cited) if cited else "—")
            + " |"
        )
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    at = next(i for i, line in enumerate(lines) if line.startswith("| # |"))
    lines[at:at] = [f"Of {len(assertions)} assertions: {summary}.", ""]
    return "\n".join(lines + textbook_section(results)) + "\n"


TEXTBOOK_TABLE = "textbook-optimizers.md"  # written by benchmarks/textbook_optimizers.py


def textbook_section(results: Path | None) -> list[str]:
    """The committed comparison with the textbook's published optimizer runs, as a section
    of the page (its title one level down), or nothing where it was not run."""
    path = None if results is None else results / TEXTBOOK_TABLE
    if path is None or not path.is_file():
        return []
    text = path.read_text(encoding="utf-8").strip().splitlines()
    title = text[0].lstrip("# ").strip() if text and text[0].startswith("# ") else ""
    return ["", f"## {title or 'The textbook beside the book'}", *text[1 if title else 0 :]]


def write(
    site: Path, claims_by_chapter: dict[str, list[dict]], results: Path | None = None
) -> None:
    """Write ``article.md`` into the staged book folder."""
    (site / "article.md").write_text(page(claims_by_chapter, results), encoding="utf-8")
