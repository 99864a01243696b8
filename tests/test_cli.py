"""The command line rejects bad input at once and never passes a failed build off as a book."""

import json
import os
import subprocess
import sys

import nbformat
import pytest

from dnnbook import data
from dnnbook.book import cli, pipeline
from tests.conftest import ROOT
from tests.conftest import chapter_notebook as _notebook


def _cli(*args, env=None, cwd=ROOT):
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dnnbook", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["execute", "--profile", "fast"],
            "unknown profile 'fast'; choose one of: quick, full, auto",
        ),
        (["execute", "--chapters", "99"], "unknown chapter '99'; choose from: 00_baseline"),
        (
            ["all", "--backend", "mxnet"],
            "unknown backend 'mxnet'; choose one of: tensorflow, jax, torch",
        ),
        (
            ["execute", "--jobs", "0"],
            "--jobs must be 'auto' or a whole number of at least 1, got '0'",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_work(tmp_path, args, message):
    r = _cli(*args, env={"DNNBOOK_BUILD": str(tmp_path / "build")})
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines == [f"dnnbook: error: {lines[0].split('error: ', 1)[1]}"] and message in lines[0]
    assert not (tmp_path / "build").exists()


def test_missing_data_fails_before_executing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DNNBOOK_DATA", str(tmp_path / "nothing"))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data, "KERAS_DIR", tmp_path / "no-keras")
    monkeypatch.delenv("DNNBOOK_DOWNLOAD", raising=False)

    called = []
    monkeypatch.setattr(pipeline, "execute", lambda *a, **k: called.append(a))
    assert cli.main(["execute", "--profile", "quick", "--chapters", "00"]) == 1
    err = capsys.readouterr().err
    assert "Fashion-MNIST not found" in err and "nothing" in err and "apt-get install" in err
    assert not called


@pytest.mark.pipeline
def test_failing_chapter_is_named_kept_and_nothing_is_built(fake_book):
    root, env = fake_book
    r = _cli("all", "--profile", "quick", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert (
        "chapter 01_boom failed in cell" in r.stderr
        and "ValueError: boom in the chapter" in r.stderr
    )
    assert (root / "_build" / "failed" / "01_boom.ipynb").exists()
    assert not (root / "_build" / "executed" / "chapters" / "01_boom.ipynb").exists()
    assert not (root / "_build" / "html").exists()
    assert not list((root / "chapters").glob("*.running*"))
    # sources are never touched
    for nb in (root / "chapters").glob("*.ipynb"):
        assert all(
            not c.get("outputs")
            for c in json.loads(nb.read_text())["cells"]
            if c["cell_type"] == "code"
        )
    # build refuses to render a chapter that was never executed
    r = _cli("build", "--profile", "quick", env=env)
    assert r.returncode == 1 and "not executed yet: 01_boom" in r.stderr


@pytest.mark.pipeline
def test_good_chapter_executes_validates_and_builds(fake_book):
    root, env = fake_book
    nb = nbformat.read(root / "chapters" / "00_fine.ipynb", as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("A formula: $\\frac{1}{2} x^2$."))
    nbformat.write(nb, root / "chapters" / "00_fine.ipynb")
    r = _cli("all", "--profile", "quick", "--chapters", "00", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "_build" / "html" / "index.html").exists()
    assert (root / "_build" / "html" / "chapters" / "00_fine.html").exists()
    index = (root / "_build" / "html" / "index.html").read_text()
    assert (
        "url=intro.html" in index and 'rel="icon"' in index
    )  # no /favicon.ico request before the redirect
    claims_html = (root / "_build" / "html" / "claims.html").read_text()
    assert "one is one" in claims_html
    status = json.loads((root / "_build" / "executed" / "status.json").read_text())
    assert status["00_fine"]["profile"] == "quick" and status["00_fine"]["seconds"] > 0
    assert status["00_fine"]["seed"] == 42  # the chapter's own, named by its environment line
    assert "00_fine" in r.stdout and "The book is at" in r.stdout
    # formulas offline: the book serves its own MathJax, and loads no other
    page = (root / "_build" / "html" / "chapters" / "00_fine.html").read_text()
    assert (root / "_build" / "html" / "_static" / "mathjax" / "tex-mml-chtml.js").exists()
    assert "_static/mathjax/tex-mml-chtml.js" in page and "cdn.jsdelivr.net/npm/mathjax" not in page
    assert "How this page was run" in page and "profile <strong>quick</strong>" in page


@pytest.mark.pipeline
def test_chapters_side_by_side_name_the_failure_and_keep_the_rest(fake_book):
    root, env = fake_book
    _notebook(root / "chapters" / "05_also_fine.ipynb", "print('fine too')")
    toc = root / "_toc.yml"
    toc.write_text(
        toc.read_text().replace(
            "      - file: chapters/01_boom\n",
            "      - file: chapters/01_boom\n      - file: chapters/05_also_fine\n",
        )
    )
    r = _cli("execute", "--profile", "quick", "--jobs", "2", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "failed: 01_boom" in r.stderr and "ValueError: boom in the chapter" in r.stdout
    assert "00_fine done in" in r.stdout and "01_boom FAILED in" in r.stdout
    executed = root / "_build" / "executed" / "chapters"
    assert (executed / "00_fine.ipynb").exists() and (executed / "05_also_fine.ipynb").exists()
    status = json.loads((root / "_build" / "executed" / "status.json").read_text())
    assert set(status) == {"00_fine", "05_also_fine"}
    r = _cli("all", "--profile", "quick", "--chapters", "00,05", "--jobs", "2", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "wall time" in r.stdout and "The book is at" in r.stdout
    # `all` validates each chapter in its slot as soon as it has run
    assert "00_fine validated in" in r.stdout and "05_also_fine validated in" in r.stdout


@pytest.mark.pipeline
def test_chapters_side_by_side_name_the_one_that_does_not_reproduce(fake_book):
    root, env = fake_book
    _notebook(root / "chapters" / "06_flaky.ipynb", "import uuid\nprint(uuid.uuid4())")
    nb = nbformat.read(root / "chapters" / "06_flaky.ipynb", as_version=4)
    nb.cells[-1].metadata["tags"] = ["nbval-check-output"]  # a new number on every run
    nbformat.write(nb, root / "chapters" / "06_flaky.ipynb")
    toc = root / "_toc.yml"
    toc.write_text(
        toc.read_text().replace(
            "      - file: chapters/01_boom\n",
            "      - file: chapters/01_boom\n      - file: chapters/06_flaky\n",
        )
    )
    args = ("--profile", "quick", "--chapters", "00,06", "--jobs", "2")
    r = _cli("execute", "--validate", *args, env=env)  # what `all` does before it builds
    assert r.returncode == 1, r.stdout + r.stderr
    assert "failed: 06_flaky (nbval: its checked cells did not reproduce)" in r.stderr
    assert "00_fine validated in" in r.stdout and "06_flaky did NOT reproduce in" in r.stdout
    assert not (root / "_build" / "html").exists()


def test_chapters_run_longest_first_by_recorded_time_else_by_budget(tmp_path, monkeypatch):
    chapters = []
    for name, budget in (("00_a", 90), ("01_b", 240), ("02_c", 180)):
        _notebook(
            tmp_path / f"{name}.ipynb",
            f"dnnbook.runtime.report_time(budget_s={budget} if True else None)",
        )
        chapters.append(pipeline.Chapter(tmp_path / f"{name}.ipynb"))
    assert [c.budget for c in chapters] == [90, 240, 180]
    status = tmp_path / "status.json"
    monkeypatch.setattr(pipeline, "STATUS", status)
    names = lambda order: [c.name for c in order]  # noqa: E731
    assert names(pipeline.longest_first(chapters, "quick")) == [
        "01_b",
        "02_c",
        "00_a",
    ]  # fresh: budgets
    times = {"00_a": 300, "01_b": 20, "02_c": 100}
    status.write_text(json.dumps({n: {"profile": "quick", "seconds": s} for n, s in times.items()}))
    assert names(pipeline.longest_first(chapters, "quick")) == ["00_a", "02_c", "01_b"]
    assert names(pipeline.longest_first(chapters, None)) == ["00_a", "02_c", "01_b"]
    assert names(pipeline.longest_first(chapters, "full")) == [
        "00_a",
        "01_b",
        "02_c",
    ]  # none: as given
    assert names(pipeline.longest_first(chapters[::-1], "full")) == ["02_c", "01_b", "00_a"]
    del times["02_c"]  # one missing: budgets for all
    status.write_text(json.dumps({n: {"profile": "quick", "seconds": s} for n, s in times.items()}))
    assert names(pipeline.longest_first(chapters, "quick")) == ["01_b", "02_c", "00_a"]


def test_jobs_auto_is_every_chapter_on_a_gpu_and_one_on_a_cpu(monkeypatch):
    from dnnbook import runtime
    from dnnbook.book import cli

    monkeypatch.setattr(runtime, "gpu_names", lambda: [])
    assert cli.resolve_jobs("auto", 5) == 1 and cli.resolve_jobs("3", 5) == 3
    monkeypatch.setattr(runtime, "gpu_names", lambda: ["NVIDIA H200"])
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    assert cli.resolve_jobs("auto", 5) == 5
    import os

    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def test_jobs_must_be_auto_or_a_count(capsys):
    from dnnbook.book import cli

    assert cli.main(["execute", "--jobs", "many"]) == 2
    assert "'auto' or a whole number" in capsys.readouterr().err


def test_execute_command_leaves_out_what_is_not_given():
    assert pipeline.execute_command("quick")[1:] == [
        "-m",
        "dnnbook",
        "execute",
        "--profile",
        "quick",
    ]
    cmd = pipeline.execute_command("full", chapters="00,03", backend="jax", seed=0, jobs=2)
    assert cmd[6:] == ["--chapters", "00,03", "--backend", "jax", "--seed", "0", "--jobs", "2"]
    assert cli._parser().parse_args(cmd[3:]).seed == 0  # a command the CLI accepts
