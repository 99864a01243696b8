"""The Keras code a chapter teaches, loaded for unit tests: the chapter is the lesson, so a
builder, a schedule or a callback lives in the chapter's cell, and its test loads it from there.

``load("03")`` executes, in the chapter's order, the top-level imports, ``def`` and ``class``
statements of every code cell (nothing else: no training, no data) in one namespace and returns
it, so a test can call ``ns["OneCycle"](...)``. Definitions should therefore take what they
need as parameters, not from the chapter's variables.
"""

from __future__ import annotations

import ast
import functools
import json
from types import SimpleNamespace

from dnnbook.book import pipeline
from tests.conftest import ROOT

_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)


@functools.cache
def _source(chapter: str) -> str:
    """The imports and definitions of one chapter (by number, stem or topic) as one module."""
    found = [c for c in pipeline.chapters(ROOT) if chapter in (c.number, c.name, c.path.stem)]
    if not found:
        names = ", ".join(c.name for c in pipeline.chapters(ROOT))
        raise KeyError(f"no chapter {chapter!r}; chapters: {names}")
    cells = json.loads(found[0].path.read_text())["cells"]
    kept = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        text = "".join(cell["source"])
        if text.lstrip().startswith(("%", "!")):
            continue
        tree = ast.parse(text)
        kept += [n for n in tree.body if isinstance(n, _KEEP)]
    return ast.unparse(ast.Module(body=kept, type_ignores=[]))


def load(chapter: str) -> SimpleNamespace:
    """A fresh namespace holding the chapter's imports and definitions (see the module doc)."""
    scope: dict = {"__name__": f"chapter_{chapter}"}
    exec(compile(_source(chapter), f"<chapter {chapter}>", "exec"), scope)  # noqa: S102
    return SimpleNamespace(**{k: v for k, v in scope.items() if not k.startswith("__")})
