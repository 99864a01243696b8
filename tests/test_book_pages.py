"""Generated pages: the claims index, the defaults page and the status page."""
import nbformat
import pytest

from dnnbook.book import pages, defaults


def _executed(path, records):
    from dnnbook import claims

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter\n\ntext"), nbformat.v4.new_code_cell("x")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="✓ printed, not a claim — 1\n")]
    for rec in records:
        data = {claims.MIME: rec, "text/plain": claims.line(rec), "text/html": claims.to_html(rec)}
        nb.cells[1].outputs.append(nbformat.v4.new_output("display_data", data=data))
    nbformat.write(nb, path)
    return path


def test_claims_are_read_from_their_records_only(tmp_path):
    from dnnbook import claims

    recs = [claims.record("a holds", True, "1 vs 0", margin=1.0, figure="fig a"),
            claims.record("b", True, "2")]
    p = _executed(tmp_path / "01_x.ipynb", recs)
    found = pages.claims_in(p)
    assert [c["statement"] for c in found] == ["a holds", "b"]
    assert found[0]["figure"] == "fig a" and found[1]["evidence"] == "2" and found[0]["margin"] == 1.0
    page = pages.claims_page([p])
    assert "**2** claims" in page and "| ✓ holds | a holds | 1 vs 0 | fig a |" in page
    assert "[A chapter](chapters/01_x.ipynb)" in page


def test_status_page_lists_each_chapter():
    page = pages.status_page({"01_x": {"profile": "quick", "backend": "jax", "environment": "backend jax | x",
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
