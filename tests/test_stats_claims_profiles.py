import numpy as np
import pytest

from dnnbook import claims, profiles, stats


def test_mean_ci_matches_t_distribution():
    ci = stats.mean_ci([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.302653; std = 1; half width = 4.302653 / sqrt(3)
    assert ci.mean == pytest.approx(2.0) and ci.std == pytest.approx(1.0)
    assert ci.high - ci.mean == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert ci.excludes(5.0) and not ci.excludes(0.0)


def test_paired_diff_uses_pairs():
    a, b = [0.80, 0.70, 0.90], [0.78, 0.68, 0.88]
    d = stats.paired_diff(a, b)
    assert d.mean == pytest.approx(0.02) and d.std == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="shape"):
        stats.paired_diff([1, 2], [1, 2, 3])


def test_claim_prints_or_raises(capsys, monkeypatch):
    monkeypatch.delenv("DNNBOOK_CLAIMS", raising=False)  # outside a notebook: strict
    rec = claims.claim("two is more than one", 2 > 1, "2 vs 1", margin=1, figure="fig 1")
    assert capsys.readouterr().out == "✓ two is more than one — 2 vs 1 [fig 1]\n"
    assert rec["status"] == claims.PASS and rec["margin"] == 1.0
    with pytest.raises(claims.ClaimError, match="one is more than two — 1 vs 2"):
        claims.claim("one is more than two", np.bool_(False), "1 vs 2")


def test_a_claim_with_nothing_to_check_fails(capsys, monkeypatch):
    monkeypatch.delenv("DNNBOOK_CLAIMS", raising=False)
    with pytest.raises(claims.ClaimError, match="nothing to check"):
        claims.claim("every dead unit wakes up", None, "no dead unit in any seed")
    assert capsys.readouterr().out.startswith("n/a every dead unit wakes up")


def test_claim_in_report_mode_prints_the_failure_and_goes_on(capsys, monkeypatch):
    monkeypatch.setenv("DNNBOOK_CLAIMS", "report")
    rec = claims.claim("one is more than two", False, "1 vs 2", figure="fig 2")
    assert capsys.readouterr().out == "✗ one is more than two — 1 vs 2 [fig 2]\n"
    assert rec["status"] == claims.FAIL
    monkeypatch.setenv("DNNBOOK_CLAIMS", "strict")
    with pytest.raises(claims.ClaimError):
        claims.claim("one is more than two", False, "1 vs 2")
    monkeypatch.setenv("DNNBOOK_CLAIMS", "lenient")
    with pytest.raises(ValueError, match="choices: strict, report"):
        claims.claim("x", True, "y")


def test_claim_in_a_notebook_is_a_record_and_a_box(monkeypatch):
    shown = []
    monkeypatch.setattr(claims, "_in_notebook", lambda: True)
    monkeypatch.delenv("DNNBOOK_CLAIMS", raising=False)  # an interactive notebook: report
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    rec = claims.claim("one is more than two", False, "1 < 2")
    (obj,) = shown
    assert obj[claims.MIME] == rec and "dnnbook-claim-fails" in obj["text/html"]
    assert obj["text/plain"] == "✗ one is more than two — 1 < 2"


def test_profiles_get_and_errors():
    q = profiles.get("quick")
    assert q.name == "quick" and q.n_seeds >= 3 and q.seeds(10) == list(range(10, 10 + q.n_seeds))
    assert q.seeds(10, 5) == [10, 11, 12, 13, 14] and q.seeds(3, 1) == [3]
    f = profiles.get("full")
    assert f.n_train > q.n_train and f.n_seeds >= 5
    assert profiles.get("auto").name in ("quick", "full")
    with pytest.raises(
        profiles.UnknownProfileError,
        match="unknown profile 'fast'; choose one of: quick, full, auto",
    ):
        profiles.get("fast")
    with pytest.raises(KeyError, match="no section 'nope'"):
        q.section("nope")
    assert set(q.sections) == set(f.sections)


def test_equivalence_needs_the_whole_ci_inside_the_margin():
    a = np.array([0.80, 0.81, 0.82, 0.80, 0.81])
    close = stats.equivalent(a, a - 0.001, margin=0.02)
    assert close.holds and close.slack > 0 and "TOST" in str(close)
    far = stats.equivalent(a, a - 0.05, margin=0.02)
    assert not far.holds and far.slack < 0
    noisy = stats.equivalent(a, np.array([0.70, 0.90, 0.75, 0.88, 0.81]), margin=0.02)
    assert not noisy.holds, "a wide CI around 0 is no evidence of equivalence"
    with pytest.raises(ValueError, match="positive"):
        stats.equivalent(a, a, margin=0)


def test_a_claims_record_is_not_echoed_as_a_cells_value():
    """``claim`` shows the ✓/✗ box; the record it returns, a cell's last value, adds no output."""
    from IPython.core.interactiveshell import InteractiveShell

    rec = claims.record("s", claims.Check(True, "e", 0.5))
    assert rec == {
        "id": claims.anchor("s"),
        "statement": "s",
        "status": "✓",
        "evidence": "e",
        "margin": 0.5,
        "figure": "",
    }
    assert rec["id"].startswith("claim-s-")
    shell = InteractiveShell.instance()
    assert shell.display_formatter.format(rec) == ({}, {})
    assert shell.display_formatter.format(dict(rec))[0]  # a plain dict would be echoed


def test_proportion_diff_is_newcombes_score_interval():
    # Newcombe (1998), Statistics in Medicine 17, table II, example (a): 56/70 - 48/80
    d = stats.proportion_diff(56, 70, 48, 80)
    assert d.mean == pytest.approx(0.2) and (d.low, d.high) == pytest.approx(
        (0.0524, 0.3339), abs=1e-4
    )
    # example (e): 10/10 - 0/10 stays inside [-1, 1] where a Wald interval would not
    e = stats.proportion_diff(10, 10, 0, 10)
    assert (e.low, e.high) == pytest.approx((0.6075, 1.0), abs=1e-4)
    with pytest.raises(ValueError, match="0 <= x <= n"):
        stats.proportion_diff(3, 2, 1, 2)
