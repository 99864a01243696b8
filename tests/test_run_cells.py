"""benchmarks/run_cells.py: rerunning a chapter's section without the whole chapter."""

import importlib.util

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("run_cells", ROOT / "benchmarks" / "run_cells.py")
run_cells = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_cells)


def _cell(kind, source):
    return {"cell_type": kind, "source": source.splitlines(keepends=True)}


CELLS = [
    _cell("code", "x = PROFILE * 2"),
    _cell("markdown", "x = 'prose, not run'"),
    _cell("code", "y = 1"),
    _cell("code", "z = x + '!'\nz.upper()"),
]


def test_selects_the_marked_code_cells_in_the_chapters_order_and_runs_them_in_one_namespace(capsys):
    chosen = run_cells.select(CELLS, ["z =", "x ="])
    assert [i for i, _ in chosen] == [0, 3]
    ns = {"PROFILE": "ab"}
    run_cells.run(chosen, ns)
    assert ns["z"] == "abab!" and "y" not in ns
    out = capsys.readouterr().out
    assert "ABAB!" in out and "-- cell 3:" in out


def test_a_marker_that_matches_no_code_cell_is_an_error_before_anything_runs():
    with pytest.raises(SystemExit, match="'prose'"):
        run_cells.select(CELLS, ["x =", "prose"])


def test_chapters_are_named_by_number_or_stem_and_an_unknown_one_lists_the_choices():
    assert (
        run_cells.chapter_path("01").stem
        == run_cells.chapter_path("gradients").stem
        == "01_gradients"
    )
    with pytest.raises(
        SystemExit, match="unknown chapter '07'; choose from: 00_baseline, 01_gradients"
    ):
        run_cells.chapter_path("07")
