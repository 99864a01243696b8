"""The seed sweep's table, built from synthetic executed notebooks; one pipeline test sweeps a small book."""

import csv
import os
import sys

import nbformat
import pytest

from dnnbook import claims
from dnnbook.book import cli, sweep


def _notebook(path, records, error=None):
    """An executed notebook that displayed ``records`` (claims) and, with ``error``, stopped on it."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("run()", execution_count=3)
    for rec in records:
        data = {claims.MIME: rec, "text/plain": claims.line(rec), "text/html": claims.to_html(rec)}
        cell.outputs.append(nbformat.v4.new_output("display_data", data=data))
    if error:
        cell.outputs.append(
            nbformat.v4.new_output("error", ename=error[0], evalue=error[1], traceback=[])
        )
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter"), cell]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _executed(root, seed, chapter, records):
    _notebook(root / f"seed-{seed}" / "executed" / "chapters" / f"{chapter}.ipynb", records)


def _crashed(root, seed, chapter, records, error):
    _notebook(root / f"seed-{seed}" / "failed" / f"{chapter}.ipynb", records, error)


A, B, C = "Adam beats SGD", "the CI excludes 0", "dropout helps"


@pytest.fixture
def swept(tmp_path):
    """Two chapters at seeds 1-3: claim B fails at seed 2; chapter 04 crashes at seed 3 before
    its claim."""
    root = tmp_path / "sweep"
    for seed, b_holds in ((1, True), (2, False), (3, True)):
        _executed(
            root,
            seed,
            "03_optimizers",
            [
                claims.record(A, claims.Check(True, "0.8 vs 0.7", 0.1 * seed)),
                claims.record(B, claims.Check(b_holds, "[..]", 0.02 if b_holds else -0.01)),
            ],
        )
    _executed(root, 1, "04_regularization", [claims.record(C, claims.Check(True, "x", 0.5))])
    _executed(root, 2, "04_regularization", [claims.record(C, claims.Check(True, "x", 0.25))])
    _crashed(root, 3, "04_regularization", [], ("ValueError", "boom"))
    return root


def test_one_row_per_claim_one_column_per_seed_smallest_margin_and_verdict(swept):
    md, clean = sweep.write_tables(
        swept, ["03_optimizers", "04_regularization"], [1, 2, 3], about="Profile quick."
    )
    assert not clean
    text = md.read_text()
    assert "1 of 3 claims held at every seed their chapter" in text and "Profile quick." in text
    assert (
        "| chapter | claim | seed 1 | seed 2 | seed 3 | smallest margin | held at every seed |"
        in text
    )
    assert f"| 03_optimizers | {A} | ✓ +0.1 | ✓ +0.2 | ✓ +0.3 | +0.1 | yes |" in text
    assert f"| 03_optimizers | {B} | ✓ +0.02 | ✗ -0.01 | ✓ +0.02 | -0.01 | **no** |" in text
    # the crash is reported, not hidden: in the claim's row and under the table
    assert f"| 04_regularization | {C} | ✓ +0.5 | ✓ +0.25 | crashed | +0.25 | **no** |" in text
    assert "- 04_regularization at seed 3: crashed, ValueError: boom (cell 3)" in text


def test_csv_has_status_and_margin_per_seed(swept):
    sweep.write_tables(swept, ["03_optimizers", "04_regularization"], [1, 2, 3])
    rows = list(csv.DictReader(open(swept / "claims.csv", encoding="utf-8")))
    assert [r["claim"] for r in rows] == [A, B, C]
    assert rows[1]["status seed 2"] == "✗" and float(rows[1]["margin seed 2"]) == -0.01
    assert rows[2]["status seed 3"] == "crashed" and rows[2]["margin seed 3"] == ""
    assert (
        float(rows[0]["smallest margin"]) == pytest.approx(0.1)
        and rows[0]["held at every seed"] == "True"
    )
    assert rows[2]["held at every seed"] == "False"


def test_a_clean_sweep_and_a_chapter_never_run(tmp_path):
    root = tmp_path / "sweep"
    for seed in (5, 6):
        _executed(root, seed, "00_baseline", [claims.record(A, claims.Check(True, "e", None))])
    md, clean = sweep.write_tables(root, ["00_baseline"], [5, 6])
    assert clean and f"| 00_baseline | {A} | ✓ | ✓ |  | yes |" in md.read_text()
    md, clean = sweep.write_tables(root, ["00_baseline", "01_gradients"], [5, 6])
    text = md.read_text()
    assert not clean and "- 01_gradients: seeds none" in text  # still reported, and not clean
    assert "1 of 1 claims held at every seed their chapter was executed at" in text


def test_run_executes_each_seed_in_its_own_folder_in_report_mode(tmp_path, monkeypatch):
    calls = []

    def fake_call(cmd, env, cwd):
        seed = int(cmd[cmd.index("--seed") + 1])
        calls.append(
            (seed, env["DNNBOOK_BUILD"], env["DNNBOOK_CLAIMS"], cmd[cmd.index("--chapters") + 1])
        )
        _executed(
            tmp_path / "sweep",
            seed,
            "03_optimizers",
            [claims.record(A, claims.Check(seed != 2, "e", 2.0 - seed))],
        )
        return 0 if seed != 2 else 1

    monkeypatch.setattr(sweep.subprocess, "call", fake_call)
    md, clean = sweep.run(
        ["03_optimizers"], "quick", [1, 2], backend="jax", root=tmp_path / "sweep"
    )
    assert [c[0] for c in calls] == [1, 2] and {c[2] for c in calls} == {"report"}
    assert calls[1][1] == str(tmp_path / "sweep" / "seed-2") and calls[0][3] == "03_optimizers"
    assert not clean and "backend jax" in md.read_text() and "| ✓ +1 | ✗ +0 |" in md.read_text()


def test_jobs_beyond_the_chapters_run_seeds_side_by_side(tmp_path, monkeypatch):
    """Two chapters with --jobs 4: two seeds at once, each executing its two chapters at once,
    their lines prefixed by seed; a third seed waits for a free slot."""
    import threading

    running, peak, calls, lock = [0], [0], [], threading.Lock()
    both = threading.Barrier(2, timeout=10)

    def fake_call(cmd, env, cwd, prefix):
        seed = int(cmd[cmd.index("--seed") + 1])
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            calls.append((seed, cmd[cmd.index("--jobs") + 1], prefix))
        if seed in (1, 2):
            both.wait()  # fails (BrokenBarrierError) unless seeds 1 and 2 run at once
        with lock:
            running[0] -= 1
        return 0

    monkeypatch.setattr(sweep, "_call", fake_call)
    sweep.run(
        ["00_baseline", "01_gradients"],
        "quick",
        [1, 2, 3],
        backend="jax",
        jobs=4,
        root=tmp_path / "sweep",
    )
    assert peak[0] == 2 and sorted(calls) == [(s, "2", f"[seed {s}] ") for s in (1, 2, 3)]


def test_no_execute_tabulates_the_folders_as_they_are(tmp_path, monkeypatch, capsys):
    """--no-execute runs nothing (no data needed either) and tabulates what the seed folders
    hold, e.g. chapters executed on different machines and copied in."""
    from dnnbook.book import pipeline

    monkeypatch.setattr(pipeline, "BUILD", tmp_path)
    monkeypatch.setattr(pipeline, "RESULTS", tmp_path / "results")  # where --save writes
    monkeypatch.setattr(sweep.subprocess, "call", lambda *a, **k: pytest.fail("executed"))
    monkeypatch.setenv("DNNBOOK_DATA", str(tmp_path / "no data here"))
    folder = tmp_path / "sweep" / "full-tensorflow"  # one folder per profile and backend
    for seed in (1, 2):
        _executed(folder, seed, "03_optimizers", [claims.record(A, claims.Check(True, "e", 0.5))])
    args = ["sweep", "--no-execute", "--chapters", "03", "--backend", "tensorflow"]
    args += ["--seeds", "1,2", "--profile", "full"]
    code = cli.main(args)
    table = (folder / "claims.md").read_text()
    assert code == 0 and "tabulated" in table and "| ✓ +0.5 | ✓ +0.5 | +0.5 | yes |" in table
    assert cli.main([*args, "--save"]) == 0  # the table and its CSV, for the book
    saved = tmp_path / "results" / "sweep-full-tensorflow.md"  # one table per profile and backend
    assert saved.read_text() == table
    assert "smallest margin" in saved.with_suffix(".csv").read_text()
    assert cli.main([*args[:-2], "--profile", "full", "--seeds", "1,3"]) == 1  # seed 3 never ran
    assert "- 03_optimizers: seeds 1" in (folder / "claims.md").read_text()
    # a sweep of another size (or backend) has folders of its own: it sees none of these
    assert cli.main([*args[:-2], "--profile", "quick"]) == 1
    quick = (tmp_path / "sweep" / "quick-tensorflow" / "claims.md").read_text()
    assert "- 03_optimizers: seeds none" in quick


def test_prefixed_output_passes_every_line_on(capsys):
    code = sweep._call(
        [sys.executable, "-c", "print('a'); print('b'); raise SystemExit(3)"],
        dict(os.environ),
        ".",
        "[seed 7] ",
    )
    assert code == 3 and capsys.readouterr().out == "[seed 7] a\n[seed 7] b\n"


@pytest.mark.parametrize("seeds", ["", "1,x", "1,1", "-3"])
def test_bad_seeds_are_refused_before_any_work(seeds, capsys):
    assert cli.main(["sweep", "--seeds", seeds]) == 2
    assert "--seeds must be distinct whole numbers" in capsys.readouterr().err


@pytest.mark.pipeline
def test_sweep_end_to_end_on_a_small_book(fake_book):
    """Real executions of a two-cell chapter at two seeds: a claim that fails at one seed does
    not stop the claim after it (report mode), and a chapter that crashes is in the table."""
    from tests.conftest import chapter_notebook
    from tests.test_cli import _cli

    root, env = fake_book
    chapter_notebook(
        root / "chapters" / "00_fine.ipynb",
        "from dnnbook.claims import claim\nprint('backend fake | seed', SEED)\n"
        "claim('the seed is odd', SEED % 2 == 1, f'seed {SEED}', margin=SEED % 2 - 0.5)\n"
        "claim('one is one', 1 == 1, 'checked')",
    )
    args = (
        "--seeds",
        "3,4",
        "--profile",
        "quick",
        "--chapters",
        "00,01",
        "--backend",
        "tensorflow",
    )
    r = _cli("sweep", *args, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    folder = root / "_build" / "sweep" / "quick-tensorflow"
    text = (folder / "claims.md").read_text()
    assert "| 00_fine | the seed is odd | ✓ +0.5 | ✗ -0.5 | -0.5 | **no** |" in text
    assert "| 00_fine | one is one | ✓ | ✓ |  | yes |" in text
    assert "- 01_boom at seed 3: crashed, ValueError: boom in the chapter" in text
    assert (folder / "seed-4" / "executed" / "chapters" / "00_fine.ipynb").exists()


def test_chapters_swept_at_different_seeds_are_judged_where_they_ran(tmp_path):
    """One table over several chapters swept at their own seeds (folders filled elsewhere):
    a claim holds when it held wherever its chapter ran; a crash still counts against it."""
    root = tmp_path / "sweep"
    for seed in (1, 2):
        _executed(root, seed, "00_baseline", [claims.record(A, claims.Check(True, "e", 0.5))])
    _executed(root, 2, "01_gradients", [claims.record(B, claims.Check(True, "e", 0.1))])
    md, clean = sweep.write_tables(root, ["00_baseline", "01_gradients"], [1, 2])
    text = md.read_text()
    assert f"| 01_gradients | {B} | not run | ✓ +0.1 | +0.1 | yes |" in text
    assert "2 of 2 claims held" in text and "- 01_gradients: seeds 2" in text
    assert not clean  # a chapter not run at a seed is no clean sweep


def test_join_keeps_the_committed_seeds_beside_the_new_ones(tmp_path, monkeypatch, capsys):
    """--join reads the committed table's CSV: a chapter swept again at a seed replaces its
    cells there, every other cell stays (other seeds, other chapters), claims printed only
    there stay as rows, and a chapter the new sweep did not run is "not run" at the new seed."""
    from dnnbook.book import pipeline, sweep_join

    monkeypatch.setattr(pipeline, "BUILD", tmp_path)
    monkeypatch.setattr(pipeline, "RESULTS", tmp_path / "results")
    folder = tmp_path / "sweep" / "full-jax"
    args = ["sweep", "--no-execute", "--backend", "jax", "--profile", "full"]
    assert cli.main([*args, "--chapters", "03", "--seeds", "1", "--join"]) == 2  # none yet
    assert "no committed table" in capsys.readouterr().err
    for seed, margin in ((1, 0.5), (2, -0.25)):
        old = [
            claims.record(A, claims.Check(True, "e", 0.1)),
            claims.record(B, claims.Check(margin > 0, "e", margin)),
        ]
        _executed(folder, seed, "03_optimizers", old)
    for seed in (1, 2):
        _executed(
            folder, seed, "04_regularization", [claims.record(C, claims.Check(True, "x", 0.3))]
        )
    cli.main([*args, "--chapters", "03,04", "--seeds", "1,2", "--save"])
    for seed in (2, 3):  # seed 2 swept again, seed 3 new; chapter 04 not run now
        _executed(folder, seed, "03_optimizers", [claims.record(A, claims.Check(True, "e", 0.2))])
    assert cli.main([*args, "--chapters", "03", "--seeds", "2,3", "--join", "--save"]) == 1
    rows, seeds = sweep_join.read_csv(tmp_path / "results" / "sweep-full-jax.csv")
    assert seeds == [1, 2, 3]
    cells = {(r.chapter, r.statement): r.cells for r in rows}
    assert [cells["03_optimizers", A][s]["margin"] for s in seeds] == [0.1, 0.2, 0.2]
    assert cells["03_optimizers", B][1]["margin"] == 0.5  # only in the committed table
    assert cells["03_optimizers", B][2] == cells["03_optimizers", B][3] == "not printed"
    # 04 was not swept again: its cells at seeds 1 and 2 stay, seed 3 it never ran at
    assert [cells["04_regularization", C][s].get("margin") for s in (1, 2)] == [0.3, 0.3]
    assert cells["04_regularization", C][3] == "not run"
    table = (tmp_path / "results" / "sweep-full-jax.md").read_text()
    assert "joined to the other seeds of sweep-full-jax.csv" in table
    assert "- 04_regularization: seeds 1, 2" in table
