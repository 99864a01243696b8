"""The one vocabulary of checks: each holds on data with the effect and fails without it."""

import math

import numpy as np
import pandas as pd
import pytest

from dnnbook import checks, profiles


def test_paired_holds_above_threshold_and_fails_below():
    a = np.array([0.80, 0.82, 0.81, 0.83, 0.80])
    b = a - np.array([0.020, 0.022, 0.018, 0.021, 0.019])
    c = checks.paired(a, b, above=0.01, label="A − B")
    assert c.holds and 0 < c.margin < 0.01
    assert "A − B" in c.evidence and "95% CI" in c.evidence
    assert not checks.paired(a, b, above=0.03).holds
    # no effect: the CI straddles 0
    assert not checks.paired(a, a + np.array([0.01, -0.01, 0.005, -0.004, 0.0])).holds


def test_paired_one_sided_bound_is_tighter_than_two_sided():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.01, 0.01, 8), np.zeros(8)
    two = checks.paired(a, b)
    one = checks.paired(a, b, one_sided=True)
    assert one.margin > two.margin and "one-sided" in one.evidence


def test_below_and_equivalent():
    a = np.array([0.50, 0.51, 0.49, 0.50, 0.50])
    b = a + np.array([0.002, -0.001, 0.001, 0.0, 0.001])
    assert checks.below(a, b, under=0.01).holds
    assert not checks.below(a + 0.05, b, under=0.01).holds
    eq = checks.equivalent(a, b, margin=0.01)
    assert eq.holds and 0 < eq.margin < 0.01 and "TOST" in eq.evidence
    assert not checks.equivalent(a + 0.02, b, margin=0.01).holds
    with pytest.raises(ValueError, match="margin must be positive"):
        checks.equivalent(a, b, margin=0)


def test_mean_above_and_below_take_series():
    s = pd.Series([0.8, 0.81, 0.79], index=[1, 2, 3])
    assert checks.mean_above(s, 0.7).holds
    assert not checks.mean_above(s, 0.8).holds
    assert checks.mean_below(s, 0.9).holds
    assert not checks.mean_below(s, 0.8, one_sided=True).holds


def test_every_checks_each_value_and_nan():
    ok = checks.every([0.9, 1.1, 1.5], low=0.5, high=2.0, label="factor")
    assert ok.holds and math.isclose(ok.margin, 0.4)
    assert not checks.every([0.9, 2.5], low=0.5, high=2.0).holds
    nan = checks.every([1.0, float("nan")], low=0.5, high=2.0)
    assert not nan.holds and "NaN" in nan.evidence
    with pytest.raises(ValueError, match="low < high"):
        checks.every([1.0], low=2, high=1)


def test_share_and_all_of():
    assert checks.share([True, True, False], at_least=0.5).holds
    assert not checks.share([True, False, False], at_least=0.5).holds
    assert checks.share([False, False, True], at_most=0.5).holds
    with pytest.raises(ValueError, match="exactly one"):
        checks.share([True], at_least=0.5, at_most=0.6)
    both = checks.all_of(checks.Check(True, "a", 0.2), checks.Check(False, "b", -0.1))
    assert not both.holds and both.margin == -0.1 and both.evidence == "a; b"
    assert checks.all_of(checks.Check(True, "a", 0.2), checks.Check(None, "b")).holds is None


def test_paired_refuses_unpaired_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        checks.paired([1.0, 2.0], [1.0])


def test_sizes_table_shows_both_profiles_and_marks_this_run():
    table = profiles.sizes("regularization", "quick")
    assert list(table.columns) == ["quick (this run)", "full"]
    assert any("." in key for key in table.index)  # nested groups flattened
    with pytest.raises(KeyError, match="sections"):
        profiles.sizes("nope")


def test_close_exact_and_with_tolerance():
    assert checks.close([1.0, 2.0], [1.0, 2.0]).holds
    assert checks.close([1.0, 2.0], [1.0, 2.0]).margin == 0.0
    assert not checks.close([1.0, 2.0], [1.0, 2.0 + 1e-9]).holds
    assert checks.close([1.0], [1.0 + 1e-9], atol=1e-6).holds
    assert not checks.close([float("nan")], [1.0], atol=1.0).holds
    with pytest.raises(ValueError, match="one shape"):
        checks.close([1.0], [1.0, 2.0])


def test_a_misspelt_keyword_is_an_error_not_ignored():
    with pytest.raises(TypeError, match="unexpected keyword one_side; choices: label, digits"):
        checks.paired([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], one_side=True)
    with pytest.raises(TypeError, match="unexpected keyword"):
        checks.below([1.0, 2.0], [0.0, 0.0], undr=1.0)
