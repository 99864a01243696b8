"""``python -m dnnbook``: the book pipeline's command line (:mod:`dnnbook.book.cli`).

``pip install dnnbook`` brings what the chapters import; the pipeline's tools (papermill, nbval,
Jupyter Book...) are the ``book`` extra. Without them, a pipeline command stops with one line
that says how to get them, before anything else runs.
"""

from __future__ import annotations

import importlib.util
import sys

# modules the pipeline commands import or run, by the distribution that provides them
BOOK_MODULES = {
    "papermill": "papermill",
    "nbval": "nbval",
    "nbformat": "nbformat",
    "nbclient": "nbclient",
    "ipykernel": "ipykernel",
    "jupyter_client": "jupyter_client",
    "jupyter_book": "jupyter-book",
    "yaml": "PyYAML",
    "pytest": "pytest",
}
# the tools each command needs beyond the chapters' own packages (all: every tool)
EXECUTING = {"papermill", "nbformat", "nbclient", "ipykernel", "jupyter_client", "yaml"}
NEEDS = {
    "data": set(),
    "execute": EXECUTING,
    "sweep": EXECUTING,
    "validate": {"nbval", "nbformat", "pytest", "jupyter_client", "ipykernel"},
}
INSTALL_HINT = 'pip install "dnnbook[book]"'


def command(argv: list[str]) -> str | None:
    """The command word of a ``python -m dnnbook`` argument list (every option takes a value)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = "=" not in arg and arg not in ("-h", "--help")
        else:
            return arg
    return None


def missing_book_tools(argv: list[str]) -> list[str]:
    """The book tools that ``argv``'s command needs and this environment lacks."""
    if "-h" in argv or "--help" in argv:
        return []
    needed = NEEDS.get(command(argv) or "", set(BOOK_MODULES))
    missing = {
        dist
        for module, dist in BOOK_MODULES.items()
        if module in needed and importlib.util.find_spec(module) is None
    }
    return sorted(missing, key=str.lower)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    missing = missing_book_tools(argv)
    if missing:
        print(
            f"dnnbook: error: `{command(argv) or 'dnnbook'}` needs the book tools, missing here: "
            f"{', '.join(missing)}; install them with: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    from dnnbook.book.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
