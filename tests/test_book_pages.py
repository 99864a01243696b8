"""Generated pages: the claims index, the defaults page and the status page."""
import nbformat
import pytest

from dnnbook import book_pages, defaults


def _executed(path, lines):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter\n\ntext"), nbformat.v4.new_code_cell("x")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="\n".join(lines) + "\n"),
                           nbformat.v4.new_output("stream", name="stderr", text="✓ not a claim — on stderr\n")]
    nbformat.write(nb, path)
    return path


def test_claims_are_parsed_from_stdout_only(tmp_path):
    p = _executed(tmp_path / "01_x.ipynb", ["progress", "✓ a holds — 1 vs 0 [fig a]", "✓ b — 2"])
    found = book_pages.claims_in(p)
    assert [c["statement"] for c in found] == ["a holds", "b"]
    assert found[0]["figure"] == "fig a" and found[1]["evidence"] == "2"
    page = book_pages.claims_page([p])
    assert "**2** claims" in page and "| ✓ holds | a holds | 1 vs 0 | fig a |" in page
    assert "[A chapter](chapters/01_x.ipynb)" in page


def test_status_page_lists_each_chapter():
    page = book_pages.status_page({"01_x": {"profile": "quick", "backend": "jax", "environment": "backend jax | x",
                                            "seconds": 12.5, "date": "2026-11-27 04:00 UTC"}})
    assert "| 01_x | quick | jax | backend jax \\| x | 12.5 | 2026-11-27 04:00 UTC |" in page


def test_defaults_quote_their_claims_and_fail_without_them():
    claims = {}
    for d in defaults.DEFAULTS:
        stem = f"{d.chapter}_topic"
        claims.setdefault(stem, []).append({"holds": True, "statement": f"we saw that {d.claim_phrase} here",
                                            "evidence": "numbers", "figure": ""})
    page = defaults.defaults_page(claims)
    assert page.count("✓ we saw that") == len(defaults.DEFAULTS)
    claims["03_topic"] = []
    with pytest.raises(defaults.MissingEvidence, match="chapter 03_topic"):
        defaults.defaults_page(claims)
    partial = defaults.defaults_page({"01_topic": claims["01_topic"]})
    assert "(chapter 04 not built)" in partial


def test_every_default_cites_a_claim_its_chapter_source_states():
    """Caught before any execution: a claim reworded in a chapter must be reworded here too."""
    from pathlib import Path

    chapters = Path(__file__).resolve().parent.parent / "chapters"
    for d in defaults.DEFAULTS:
        (path,) = chapters.glob(f"{d.chapter}_*.ipynb")
        code = "".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert d.claim_phrase in code, f"{d.topic!r}: {path.name} states no claim with {d.claim_phrase!r}"
