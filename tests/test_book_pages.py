"""Generated pages: the claims index, the defaults page and the status page."""

import nbformat
import pytest

from dnnbook.book import defaults, pages


def _executed(path, records):
    from dnnbook import claims

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A chapter\n\ntext"),
        nbformat.v4.new_code_cell("x"),
    ]
    nb.cells[1].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="✓ printed, not a claim — 1\n")
    ]
    for rec in records:
        data = {claims.MIME: rec, "text/plain": claims.line(rec), "text/html": claims.to_html(rec)}
        nb.cells[1].outputs.append(nbformat.v4.new_output("display_data", data=data))
    nbformat.write(nb, path)
    return path


def test_claims_are_read_from_their_records_only(tmp_path):
    from dnnbook import claims

    recs = [
        claims.record("a holds", claims.Check(True, "1 vs 0", 1.0), "fig a"),
        claims.record("b", claims.Check(True, "2")),
    ]
    p = _executed(tmp_path / "01_x.ipynb", recs)
    found = pages.claims_in(p)
    assert [c["statement"] for c in found] == ["a holds", "b"]
    assert (
        found[0]["figure"] == "fig a" and found[1]["evidence"] == "2" and found[0]["margin"] == 1.0
    )
    page = pages.claims_page([p])
    assert "**2** claims" in page and "| ✓ holds | a holds | 1 vs 0 | fig a |" in page
    assert "[A chapter](chapters/01_x.ipynb)" in page


def test_status_page_lists_each_chapter():
    page = pages.status_page(
        {
            "01_x": {
                "profile": "quick",
                "backend": "jax",
                "environment": "backend jax | x",
                "seconds": 12.5,
                "date": "2026-11-27 04:00 UTC",
            }
        }
    )
    assert "| 01_x | quick | jax | backend jax \\| x | 12.5 | 2026-11-27 04:00 UTC |" in page


def test_defaults_quote_their_claims_and_fail_without_them():
    claims = {}
    for d in defaults.DEFAULTS:
        stem = f"{d.chapter}_topic"
        claims.setdefault(stem, []).append(
            {
                "holds": True,
                "statement": f"we saw that {d.claim_phrase} here",
                "evidence": "numbers",
                "figure": "",
            }
        )
    page = defaults.defaults_page(claims)
    assert page.count("✓ we saw that") == len(defaults.DEFAULTS)
    claims["03_topic"] = []
    with pytest.raises(defaults.MissingEvidence, match="chapter 03_topic"):
        defaults.defaults_page(claims)
    partial = defaults.defaults_page({"01_topic": claims["01_topic"]})
    assert "(chapter 04 not built)" in partial


def _chapter_strings(number: str) -> str:
    """Every string literal of a chapter's code, adjacent literals joined as Python joins
    them (an f-string's literal parts too), one per line: where a claim's statement lives."""
    import ast
    from pathlib import Path

    chapters = Path(__file__).resolve().parent.parent / "chapters"
    (path,) = chapters.glob(f"{number}_*.ipynb")
    found = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or cell.source.lstrip().startswith(("%", "!")):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.JoinedStr):
                found.append("".join(v.value for v in node.values if isinstance(v, ast.Constant)))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value)
    return "\n".join(found)


def test_every_default_cites_a_claim_its_chapter_source_states():
    """Caught before any execution: a claim reworded in a chapter must be reworded here too."""
    for d in defaults.DEFAULTS:
        assert d.claim_phrase in _chapter_strings(d.chapter), (
            f"{d.topic!r}: chapter {d.chapter} states no claim with {d.claim_phrase!r}"
        )


RUN = {
    "profile": "full",
    "backend": "jax",
    "seed": 7,
    "seconds": 480.2,
    "date": "2026-11-27 04:00 UTC",
    "environment": "backend jax 0.7.1 | keras 3.15.1 | python 3.11.7 | GPU NVIDIA H200 | profile full "
    "| deterministic ops | seed 7",
}


def test_run_banner_names_profile_backend_seeds_hardware_date_and_seconds():
    banner = pages.run_banner(RUN)
    assert banner.startswith("```{admonition} How this page was run\n:class: dnnbook-run-banner")
    for part in (
        "profile **full**",
        "backend jax 0.7.1, Keras 3.15.1",
        "seeds 7, 8, … (base seed 7)",
        "hardware GPU NVIDIA H200",
        "executed 2026-11-27 04:00 UTC in 480.2 s",
    ):
        assert part in banner, part
    old = pages.run_banner(
        {
            "profile": "quick",
            "backend": "tensorflow",
            "seconds": 3,
            "environment": "backend tensorflow 2.21.0 | CPU 2 cores | seed 42",
        }
    )
    assert "seeds 42, 43, … (base seed 42)" in old and "hardware CPU 2 cores" in old


def test_staged_chapter_carries_the_banner_under_its_title(tmp_path):
    from dnnbook.book import pipeline

    src = _executed(tmp_path / "03_x.ipynb", [])
    nb = nbformat.read(src, as_version=4)
    nb.cells[
        0
    ].source += (
        f"\n\n[![Open In Colab]({pipeline.COLAB_BADGE})](https://colab.research.google.com/x)"
    )
    nbformat.write(nb, src)
    pipeline._stage_notebook(src, tmp_path / "staged.ipynb", RUN)
    cells = nbformat.read(tmp_path / "staged.ipynb", as_version=4).cells
    assert cells[0].source.startswith("# A chapter") and "How this page was run" in cells[1].source
    # the badge image is the book's own copy; the link still opens Colab
    assert (
        f"[![Open In Colab]({pipeline.LOCAL_BADGE})](https://colab.research.google.com/x)"
        in cells[0].source
    )
    pipeline._stage_notebook(src, tmp_path / "plain.ipynb")
    assert len(nbformat.read(tmp_path / "plain.ipynb", as_version=4).cells) == len(cells) - 1


def test_sweep_page_shows_the_committed_tables_or_says_there_is_none(tmp_path):
    assert "No sweep has been committed yet." in pages.sweep_page(tmp_path)
    for name in ("full-jax", "quick-torch", "quick-tensorflow"):  # one per profile and backend
        (tmp_path / f"sweep-{name}.md").write_text(
            f"# Seed sweep\n\n| chapter | claim |\n|---|---|\n| 03 | {name} |\n"
        )
    page = pages.sweep_page(tmp_path)
    assert page.startswith("# Claims over seeds")
    order = ["## Profile quick, TensorFlow", "| 03 | quick-tensorflow |"]
    order += ["## Profile quick, PyTorch", "| 03 | quick-torch |"]
    order += ["## Profile full, JAX", "| 03 | full-jax |"]  # quick first, backends in order
    assert [page.index(text) for text in order] == sorted(page.index(text) for text in order)
    assert page.count("# Seed sweep") == 0


def test_the_build_serves_its_own_mathjax_or_says_how_to_get_one(tmp_path, monkeypatch):
    import yaml

    from dnnbook.book import pipeline

    site = tmp_path / "site"
    (site / "_static").mkdir(parents=True)
    (site / "_config.yml").write_text("title: t\nsphinx:\n  config:\n    smartquotes: false\n")
    es5 = tmp_path / "mathjax" / "es5"
    (es5 / "sre").mkdir(parents=True)
    (es5 / "output" / "chtml" / "fonts").mkdir(parents=True)
    for f in ("tex-mml-chtml.js", "tex-svg.js", "sre/speech.js", "output/chtml/fonts/a.woff"):
        (es5 / f).write_text("//")
    monkeypatch.setenv("DNNBOOK_MATHJAX", str(es5))
    assert pipeline.find_mathjax() == es5
    assert pipeline._stage_mathjax(site) == es5
    assert not (site / "_static" / "mathjax").exists()  # Jupyter Book would load every script there
    pipeline._copy_mathjax(es5, tmp_path / "html")
    copied = tmp_path / "html" / "_static" / "mathjax"
    assert (copied / "tex-mml-chtml.js").exists() and (
        copied / "output/chtml/fonts/a.woff"
    ).exists()
    assert not (copied / "sre").exists() and not (copied / "tex-svg.js").exists()
    config = yaml.safe_load((site / "_config.yml").read_text())["sphinx"]["config"]
    assert config == {"smartquotes": False, "mathjax_path": "mathjax/tex-mml-chtml.js"}

    monkeypatch.setattr(pipeline, "find_mathjax", lambda: None)
    with pytest.raises(pipeline.PipelineError, match="no local MathJax.*make install"):
        pipeline._stage_mathjax(site)
    monkeypatch.setenv("DNNBOOK_MATHJAX", "cdn")  # an explicit choice to need the internet
    assert pipeline._stage_mathjax(site) is None


def test_article_page_links_claims_gives_verdicts_and_fails_without_them(tmp_path):
    from dnnbook.book import article

    rows = (
        article.Assertion("X is good", "01", "holds", "X helped", ("X helps",)),
        article.Assertion("Y is a synonym", "02", "not measured here", "a matter of words"),
        article.Assertion("Z always works", "01", "does not hold", "Z failed", ("Z fails",)),
    )
    claims = {
        "01_topic": [
            {"holds": True, "statement": "X helps by 2 points", "evidence": "CI [1, 3]"},
            {"holds": True, "statement": "Z fails at depth", "evidence": "0 of 5"},
        ]
    }
    (tmp_path / "sweep-quick-tensorflow.csv").write_text(
        "chapter,claim,status seed 1,margin seed 1,status seed 2,margin seed 2\n"
        "01_topic,X helps by 2 points,✓,0.5,✓,0.25\n"
    )
    page = article.page(claims, tmp_path, rows)
    assert "Of 3 assertions: 1 holds, 1 does not hold, 1 not measured here." in page
    assert 'href="chapters/01_topic.html#claim-x-helps-by-2-points-' in page
    assert "quick, tensorflow: 2/2 seeds, smallest margin +0.25" in page
    assert "not in a committed sweep yet" in page  # Z was never swept
    assert "(chapter 02 not built)" not in page  # a row citing no claim needs no chapter
    assert "## The textbook" not in page  # no committed comparison: no section
    (tmp_path / article.TEXTBOOK_TABLE).write_text("# The textbook, over seeds\n\n| a |\n|---|\n")
    with_table = article.page(claims, tmp_path, rows)
    assert with_table.endswith("\n## The textbook, over seeds\n\n| a |\n|---|\n")
    with pytest.raises(defaults.MissingEvidence, match="assertion 1"):
        article.page({"01_topic": claims["01_topic"][1:]}, tmp_path, rows)
    with pytest.raises(ValueError, match="needs a claim"):
        article.Assertion("W", "01", "holds", "w")
    with pytest.raises(ValueError, match="unknown verdict"):
        article.Assertion("W", "01", "maybe", "w", ("w",))


def test_every_article_assertion_cites_a_claim_its_chapter_source_states():
    """Caught before any execution: the article page's claim phrases are in the chapters."""
    from dnnbook.book import article_rows

    for a in article_rows.ASSERTIONS:
        strings = _chapter_strings(a.chapter)
        for phrase in a.claims:
            for option in (phrase,) if isinstance(phrase, str) else phrase:
                assert option in strings, f"{a.says!r}: chapter {a.chapter} states no {option!r}"


def test_sweep_page_leaves_out_rows_of_claims_no_longer_printed(tmp_path):
    (tmp_path / "sweep-quick-jax.md").write_text(
        "# Seed sweep\n\n| chapter | claim | seed 1 |\n|---|---|---|\n"
        "| 01_x | kept \\| with a pipe | ✓ +0.1 |\n| 01_x | restated since | ✓ +0.2 |\n"
    )
    page = pages.sweep_page(tmp_path, {"kept | with a pipe", "another"})
    assert "kept \\| with a pipe" in page and "restated since" not in page
    assert "1 rows of this table are left out" in page
    assert "restated since" in pages.sweep_page(tmp_path)  # no statements given: all rows
