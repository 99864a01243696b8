"""Executable claims: every statement in the prose is a check that runs.

``claim(statement, holds, evidence, margin=...)`` shows the claim as a ✓ or ✗ box with its
evidence and returns its record. How a claim that does not hold acts depends on the mode
(:func:`mode`): in ``strict`` mode (the book's build, CI, tests, scripts) it raises
:class:`ClaimError`, which fails the chapter, the pipeline and CI; in ``report`` mode (a
reader's interactive notebook, e.g. Colab, and measuring runs such as the seed sweep) it is
shown as ✗ and the next cell runs. A claim whose check found nothing to check (``holds=None``)
shows as "n/a" and counts as one that does not hold.

Inside a notebook each claim is one display-data record of type :data:`MIME` (plus plain text
and HTML for people), which the claims index and the seed sweep read back.
"""

from __future__ import annotations

import html
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

PASS, FAIL, NA = "✓", "✗", "n/a"
MIME = "application/vnd.dnnbook.claim+json"
MODES = ("strict", "report")


class ClaimError(AssertionError):
    """A claim in the book did not hold for this run."""


def _in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (Colab included)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and "ipykernel" in sys.modules and hasattr(shell, "kernel")


def mode() -> str:
    """``$DNNBOOK_CLAIMS`` if set (``strict`` or ``report``); else ``report`` inside an
    interactive notebook and ``strict`` anywhere else. The pipeline sets ``strict``."""
    value = os.environ.get("DNNBOOK_CLAIMS", "")
    if value and value not in MODES:
        raise ValueError(
            f"DNNBOOK_CLAIMS={value!r} is not a claims mode; choices: {', '.join(MODES)}"
        )
    return value or ("report" if _in_notebook() else "strict")


def _status(holds: Any) -> str:
    if holds is None:
        return NA
    return PASS if bool(holds) else FAIL


class Record(dict):
    """A claim's record, a plain dict that a notebook does not echo as a cell's value:
    :func:`claim` has shown it already, as a ✓/✗ box."""

    def _ipython_display_(self) -> None:
        return None


@dataclass(frozen=True)
class Check:
    """What a check (:mod:`dnnbook.checks`) found: whether it ``holds`` (``None``: nothing was
    checked), the ``evidence`` (the figures that decide it) and the ``margin`` (how far the
    deciding value lies inside the threshold, in the claim's units; negative when it fails)."""

    holds: bool | None
    evidence: str
    margin: float | None = None

    def claim(self, statement: str, figure: str | None = None) -> dict:
        """Show the claim ``statement`` decided by this check (see :func:`claim`)."""
        return claim(statement, self.holds, self.evidence, margin=self.margin, figure=figure)


def anchor(statement: str) -> str:
    """A stable HTML id for a claim: ``claim-`` with its first words and a short hash of the
    whole statement (the defaults page and "The article, checked" link to it)."""
    import hashlib
    import re

    words = re.sub(r"[^a-z0-9]+", "-", statement.lower()).strip("-").split("-")[:6]
    digest = hashlib.sha1(statement.encode("utf-8")).hexdigest()[:6]
    return "claim-" + "-".join(w for w in words if w) + "-" + digest


def record(statement: str, check: Check, figure: str | None = None) -> dict:
    """The claim ``statement`` decided by ``check`` as a dict (:class:`Record`): statement,
    status (✓, ✗ or n/a), evidence, margin, figure and its HTML ``id``."""
    margin = None if check.margin is None else float(check.margin)
    return Record(
        {
            "id": anchor(statement),
            "statement": statement,
            "status": _status(check.holds),
            "evidence": check.evidence,
            "margin": None if margin is not None and math.isnan(margin) else margin,
            "figure": figure or "",
        }
    )


def line(rec: dict) -> str:
    """One line of text: ``✓ statement — evidence [figure]``."""
    where = f" [{rec['figure']}]" if rec["figure"] else ""
    return f"{rec['status']} {rec['statement']} — {rec['evidence']}{where}"


def to_html(rec: dict) -> str:
    """The claim as a box for the rendered page (styled by ``_static/custom.css``)."""
    kind = {PASS: "holds", FAIL: "fails", NA: "na"}[rec["status"]]
    label = {PASS: "✓ claim holds", FAIL: "✗ claim does not hold", NA: "n/a: nothing was checked"}
    where = (
        f" <span class='dnnbook-claim-figure'>[{html.escape(rec['figure'])}]</span>"
        if rec["figure"]
        else ""
    )
    return (
        f"<div class='dnnbook-claim dnnbook-claim-{kind}' id='{anchor(rec['statement'])}'>"
        f"<div class='dnnbook-claim-status'>{label[rec['status']]}</div>"
        f"<div class='dnnbook-claim-statement'>{html.escape(rec['statement'])}</div>"
        f"<div class='dnnbook-claim-evidence'>{html.escape(rec['evidence'])}{where}</div></div>"
    )


def show(rec: dict) -> None:
    """Display the claim: a structured record with text and HTML in a notebook, else one line."""
    if _in_notebook():
        from IPython.display import display

        display({MIME: rec, "text/plain": line(rec), "text/html": to_html(rec)}, raw=True)
    else:
        print(line(rec), flush=True)


def claim(
    statement: str,
    holds: Any,
    evidence: str,
    *,
    margin: float | None = None,
    figure: str | None = None,
) -> dict:
    """Show one claim of the book and return its record: ``statement`` is what the prose
    asserts, ``holds`` its measured truth (``None``: nothing to check), ``evidence``, ``margin``
    as in :class:`Check`, ``figure`` the figure or table that shows it."""
    rec = record(statement, Check(holds, evidence, margin), figure)
    how = mode()
    show(rec)
    if rec["status"] != PASS and how == "strict":
        why = "has nothing to check" if rec["status"] == NA else "does not hold"
        raise ClaimError(f"claim {why}: {statement} — {evidence}")
    return rec
