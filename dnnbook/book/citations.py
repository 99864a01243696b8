"""Pages that cite the chapters' claims (the defaults page, "The article, checked"): find a
claim of this build by a phrase of its statement, link to its box in the chapter, and say how
it fared over the base seeds of the committed sweep tables."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from dnnbook.claims import anchor


class MissingEvidence(RuntimeError):
    """A page cites a claim that its chapter no longer prints."""


Phrase = str | tuple[str, ...]  # a phrase, or alternatives (a claim stated per profile)


def find(
    claims_by_chapter: Mapping[str, list[dict]], chapter: str, phrase: Phrase, who: str
) -> tuple[str, dict] | None:
    """The chapter stem and the first claim of chapter ``chapter`` (a number, e.g. ``"01"``)
    whose statement contains ``phrase`` (or, for a tuple, any of its alternatives: a claim
    whose wording depends on the profile); ``None`` when that chapter was not built. Raises
    :class:`MissingEvidence` (naming ``who`` cites it) when the chapter printed no such claim."""
    stems = [s for s in claims_by_chapter if s.split("_", 1)[0] == chapter]
    if not stems:
        return None
    options = (phrase,) if isinstance(phrase, str) else phrase
    found = [c for c in claims_by_chapter[stems[0]] if any(p in c["statement"] for p in options)]
    if not found:
        raise MissingEvidence(
            f"{who} cites a claim of chapter {stems[0]} containing {phrase!r}, but that "
            "chapter printed no such claim"
        )
    return stems[0], found[0]


def link(stem: str, claim: Mapping, text: str) -> str:
    """An HTML link (valid inside a Markdown table) to the claim's box in its chapter page."""
    return f'<a href="chapters/{stem}.html#{anchor(claim["statement"])}">{text}</a>'


@dataclass(frozen=True)
class Swept:
    """How one claim fared in one committed sweep table."""

    table: str  # e.g. "quick, tensorflow"
    held: int
    seeds: int
    smallest: float | None

    def __str__(self) -> str:
        low = "" if self.smallest is None else f", smallest margin {self.smallest:+.3g}"
        return f"{self.table}: {self.held}/{self.seeds} seeds{low}"


def sweeps(results: Path | None) -> dict[str, list[Swept]]:
    """Per claim statement, its record in every committed sweep table
    (``results/sweep-PROFILE-BACKEND.csv``)."""
    out: dict[str, list[Swept]] = {}
    for path in sorted(Path(results).glob("sweep-*.csv")) if results else []:
        profile, _, backend = path.stem.removeprefix("sweep-").partition("-")
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                statuses = [v for k, v in row.items() if k and k.startswith("status seed ")]
                ran = [s for s in statuses if s]
                margins = [
                    float(v)
                    for k, v in row.items()
                    if k and k.startswith("margin seed ") and v not in ("", None)
                ]
                out.setdefault(row["claim"], []).append(
                    Swept(
                        f"{profile}, {backend}",
                        sum(s == "✓" for s in ran),
                        len(ran),
                        min(margins) if margins else None,
                    )
                )
    return out


def over_seeds(swept: Mapping[str, list[Swept]], statement: str) -> str:
    """One cell: the claim's record over the sweep tables, or that none has swept it yet."""
    found = swept.get(statement)
    return "; ".join(map(str, found)) if found else "not in a committed sweep yet"


def cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
