"""`pip install dnnbook` has no book tools: `python -m dnnbook` says how to get them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import tomllib

from dnnbook import __main__ as entry

ROOT = Path(__file__).resolve().parents[1]


def test_command_word_skips_option_values():
    assert entry.command(["--profile", "quick", "execute", "--chapters", "00"]) == "execute"
    assert entry.command(["--jobs=2", "all"]) == "all"
    assert entry.command(["-h"]) is None


def test_a_pipeline_command_without_the_book_tools_names_the_extra(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("papermill", "jupyter_book") else real(name, *a),
    )
    assert entry.main(["all", "--chapters", "00"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "dnnbook[book]"' in err
    assert "jupyter-book, papermill" in err
    assert entry.missing_book_tools(["data"]) == []  # fetching the data needs none of them
    # executing and sweeping need papermill, not Jupyter Book (a GPU machine may lack it)
    assert entry.missing_book_tools(["execute"]) == entry.missing_book_tools(["sweep"])
    assert entry.missing_book_tools(["sweep"]) == ["papermill"]
    assert entry.missing_book_tools(["build"]) == ["jupyter-book", "papermill"]


def test_runtime_dependencies_leave_the_book_tools_to_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    for tool in (
        "jupyter-book",
        "papermill",
        "nbval",
        "pytest",
        "playwright",
        "ipykernel",
        "nbformat",
        "tqdm",
    ):
        assert tool not in runtime, f"{tool} belongs in an extra, not in what a chapter installs"
    assert "dnnbook[book]" in project["optional-dependencies"]["test"]
    assert project["scripts"]["dnnbook"] == "dnnbook.__main__:main"
