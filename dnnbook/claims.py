"""Executable claims: every statement in the prose is a check that runs.

``claim(statement, holds, evidence)`` prints ``✓ statement — evidence`` or raises
:class:`ClaimError`, which fails the chapter, the pipeline and CI. With
``$DNNBOOK_CLAIMS=report`` (for measuring runs such as ``benchmarks/gpu_full.sh``, never the
book's build) a claim that does not hold prints ``✗ statement — evidence`` and the chapter goes on.
"""
from __future__ import annotations

import os
from typing import Any

PASS, FAIL = "✓", "✗"


class ClaimError(AssertionError):
    """A claim in the book did not hold for this run."""


def claim(statement: str, holds: Any, evidence: str, *, figure: str | None = None) -> None:
    """Check one claim of the book.

    ``statement`` is what the prose asserts, ``holds`` the measured truth of it (anything
    with a truth value, numpy bools included), ``evidence`` the figures that decide it, and
    ``figure`` optionally names the figure or table that shows it.
    """
    ok = bool(holds)
    where = f" [{figure}]" if figure else ""
    line = f"{PASS if ok else FAIL} {statement} — {evidence}{where}"
    if not ok and os.environ.get("DNNBOOK_CLAIMS") != "report":
        raise ClaimError(f"claim does not hold: {statement} — {evidence}")
    print(line, flush=True)
