"""The conditions of chapter 4's claims: each holds where the effect is there and fails where it
is removed (negative controls: identical arms, no dropout, no constraint, synthetic frames)."""

import numpy as np
import pandas as pd
import pytest

from dnnbook import data, experiments
from dnnbook import regularization as reg

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def tiny():
    """A few epochs on noisy digits: no regularization, the same twice, dropout and max-norm."""
    clean = data.load("digits", n_train=400, n_valid=300, n_test=300, seed=0)
    noisy = reg.with_label_noise(clean, 0.2, seed=0)
    arch = dict(depth=2, width=128, learning_rate=3e-3)
    configs = {
        "none": reg.factory(noisy, **arch),
        "none again": reg.factory(noisy, **arch),
        "dropout 0.5": reg.factory(noisy, **arch, dropout=0.5),
        "max-norm 0.5": reg.factory(noisy, **arch, max_norm=0.5),
    }
    models: dict = {}
    history = experiments.run(configs, noisy, SEEDS, epochs=40, batch_size=32, models=models)
    return reg.after_training(models, noisy, history)


def test_claim_conditions_hold_with_the_effect_and_fail_without_it(tiny):
    """One test for the conditions that read the trained runs, so that the fixture's training
    runs once (pytest-xdist would train a module fixture once per worker)."""
    # dropout narrows the gap; identical arms (dropout rate 0 in both) do not
    assert reg.lower(tiny, "gap", "dropout 0.5", "none").holds
    control = reg.lower(tiny, "gap", "none again", "none")
    assert not control.holds and control.margin <= 0
    # dropout's loss checks fail without dropout (on = off: ratio 1)
    assert reg.dropout_loss_ratio(tiny, "dropout 0.5", ratio=1.1).holds
    assert reg.fit_loss_overstates(tiny, "dropout 0.5").holds
    assert not reg.dropout_loss_ratio(tiny, "none", ratio=1.1).holds
    assert not reg.fit_loss_overstates(tiny, "none again").holds
    # max-norm checks fail without a constraint in the "bounded" arm
    assert reg.bounded(tiny, {"max-norm 0.5": 0.5}).holds
    free = reg.bounded(tiny, {"none again": 0.5})
    assert not free.holds and free.margin < 0
    # narrowing beyond the accuracy change fails for identical arms
    assert reg.narrows_beyond_accuracy(tiny, "dropout 0.5").holds
    assert not reg.narrows_beyond_accuracy(tiny, "none again").holds


def test_overfits_needs_a_gap():
    frame = pd.DataFrame({"config": ["none"] * 3, "seed": SEEDS, "gap": [0.1, 0.12, 0.11]})
    assert reg.overfits(frame).holds
    assert reg.overfits(frame, threshold=0.03).holds
    frame["gap"] = [0.04, 0.05, 0.06]  # above 0 at every seed, but its 95% CI reaches below 0.03
    assert reg.overfits(frame).holds and not reg.overfits(frame, threshold=0.03).holds
    frame["gap"] = [0.0, 0.01, -0.01]
    assert not reg.overfits(frame).holds


def _two(column: str, a: list[float], b: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"config": ["none"] * 3 + ["other"] * 3, "seed": SEEDS * 2, column: a + b})


def test_shrinks_and_sparser_fail_for_identical_arms():
    assert reg.shrinks(_two("weight_norm", [10.0, 11, 12], [5.0, 5, 6]), "other").holds
    assert not reg.shrinks(_two("weight_norm", [10.0, 11, 12], [10.0, 11, 12]), "other").holds
    assert reg.sparser(_two("near_zero", [0.01] * 3, [0.4] * 3), "other").holds
    assert not reg.sparser(_two("near_zero", [0.01] * 3, [0.01] * 3), "other").holds


def test_loss_adds_up_fails_when_the_parts_do_not():
    parts = pd.DataFrame(
        {"reported": [0.5, 1.0], "data": [0.5, 0.7], "penalty": [0.0, 0.3]}, index=["none", "l2"]
    )
    assert reg.loss_adds_up(parts).holds
    assert not reg.loss_adds_up(parts.assign(data=[0.5, 0.9])).holds  # 0.9 + 0.3 ≠ 1.0
    assert not reg.loss_adds_up(parts.assign(penalty=[0.0, 0.05], data=[0.5, 0.95])).holds


def test_lower_one_sided_is_less_strict_than_two_sided():
    frame = _two("best", [0.1, 0.1, 0.1], [0.25, 0.30, 0.28])
    assert reg.lower(frame, "best", "none", "other", one_sided=True).holds
    two = reg.lower(frame, "best", "none", "other")
    one = reg.lower(frame, "best", "none", "other", one_sided=True)
    assert one.margin > two.margin


def test_mostly_diverged_counts_runs():
    def history(losses):
        rows = [
            {"config": "a", "seed": s, "epoch": e + 1, "loss": v}
            for s, run in enumerate(losses)
            for e, v in enumerate(run)
        ]
        return pd.DataFrame(rows)

    chance = np.log(10)
    assert reg.mostly_diverged(history([[3.0, np.nan], [2.4, 2.4], [1.0, 0.5]]), "a", chance).holds
    control = reg.mostly_diverged(history([[1.0, 0.5], [2.4, 2.4], [1.0, 0.4]]), "a", chance)
    assert not control.holds and control.margin == pytest.approx(1 / 3 - 0.5)


def test_mc_checks_by_hand():
    assert reg.gain_below(np.array([0.50, 0.51, 0.52]), np.array([0.5, 0.5, 0.5]), 0.05).holds
    gain = reg.gain_below(np.array([0.40, 0.41, 0.39]), np.array([0.5, 0.5, 0.5]), 0.05)
    assert not gain.holds  # MC improves by 0.1: more than the margin
    assert reg.equivalent(np.array([0.80, 0.801, 0.799]), np.array([0.8, 0.8, 0.8]), 0.02).holds
    assert not reg.equivalent(np.array([0.85, 0.86, 0.84]), np.array([0.8, 0.8, 0.8]), 0.02).holds


def test_underconfident_fails_for_an_overconfident_pass():
    labels = np.array([0, 1, 0, 1])
    shy = {0: {"deterministic": np.array([[0.6, 0.4], [0.4, 0.6]] * 2)}}  # right, 0.6 sure
    assert reg.underconfident(shy, labels).holds
    bold = {0: {"deterministic": np.array([[0.99, 0.01]] * 4)}}  # half right, 0.99 sure
    assert not reg.underconfident(bold, labels).holds


def test_lower_in_most_seeds_holds_for_a_majority_only():
    # lower in 2 of 3 seeds: holds, its margin the median difference
    most = reg.lower_in_most_seeds(
        _two("acc", [0.6, 0.6, 0.6], [0.7, 0.55, 0.8]), "acc", "none", "other"
    )
    assert most.holds and abs(most.margin - 0.1) < 1e-9 and "2 of 3" in most.evidence
    # lower in 1 of 3 seeds: fails
    control = reg.lower_in_most_seeds(
        _two("acc", [0.6, 0.6, 0.6], [0.7, 0.6, 0.5]), "acc", "none", "other"
    )
    assert not control.holds and control.margin == 0
