"""The checks behind chapter 2's claims, and negative controls: each check fails when the
effect its claim rests on is removed or reversed (synthetic frames and a tiny digits run)."""

import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import data, models, pretraining


def _frame(arms: dict[str, np.ndarray]) -> pd.DataFrame:
    """A tidy last-epoch frame: one row per (config, seed), test accuracy per arm."""
    rows = [
        {"config": name, "seed": seed, "epoch": 1, "test_accuracy": float(v)}
        for name, values in arms.items()
        for seed, v in enumerate(values)
    ]
    df = pd.DataFrame(rows)
    df["config"] = pd.Categorical(df["config"], categories=list(arms), ordered=True)
    return df


RNG = np.random.default_rng(0)
BASE = 0.95 + RNG.normal(0, 0.005, size=8)


def test_error_cut_is_three_quarters_of_the_error():
    df = _frame({"scratch": np.full(4, 0.9)})
    assert pretraining.error_cut(df, "scratch") == pytest.approx(0.075)
    assert pretraining.error_cut(df, "scratch", factor=2) == pytest.approx(0.05)


def test_equivalence_holds_for_arms_that_barely_differ():
    df = _frame({"scratch": BASE, "reused": BASE + RNG.normal(0, 0.002, size=8)})
    check = pretraining.equivalent_to(df, ["reused"], "scratch", margin=0.03)
    assert check.holds and 0 < check.margin < 3.0
    assert "reused" in check.evidence and "±3.00" in check.evidence


@pytest.mark.parametrize("shift", [0.05, -0.05])
def test_equivalence_fails_when_one_arm_moves_beyond_the_margin(shift):
    """Negative control: a real effect (either direction) larger than the margin fails."""
    df = _frame(
        {
            "scratch": BASE,
            "reused": BASE + shift + RNG.normal(0, 0.002, size=8),
            "other": BASE.copy(),
        }
    )
    check = pretraining.equivalent_to(df, ["other", "reused"], "scratch", margin=0.03)
    assert not check.holds and check.margin < 0


def test_equivalence_fails_when_the_runs_are_too_noisy_to_tell():
    """Negative control: a CI that merely contains 0 is not equivalence."""
    df = _frame({"scratch": BASE, "reused": BASE + np.array([0.06, -0.06] * 4)})
    check = pretraining.equivalent_to(df, ["reused"], "scratch", margin=0.03)
    assert abs(df.groupby("config", observed=True)["test_accuracy"].mean().diff().iloc[-1]) < 1e-9
    assert not check.holds


def test_gains_above_holds_for_small_effects_and_fails_for_a_real_loss():
    df = _frame({"scratch": BASE, "pre": BASE + 0.01 + RNG.normal(0, 0.003, size=8)})
    check = pretraining.gains_above(df, ["pre"], "scratch", floor=-0.05)
    assert check.holds and check.margin > 0
    # negative control: pretraining that costs more than the reference -> the check fails
    hurt = _frame({"scratch": BASE, "pre": BASE - 0.08 + RNG.normal(0, 0.003, size=8)})
    check = pretraining.gains_above(hurt, ["pre"], "scratch", floor=-0.05)
    assert not check.holds and check.margin < 0


def test_label_gain_pairs_on_shared_seeds():
    few = _frame({"scratch": np.array([0.70, 0.72, 0.74, 0.76])})
    more = _frame({"scratch": np.array([0.80, 0.83, 0.84])})  # seeds 0..2 only
    assert pretraining.label_gain({500: few, 2000: more}, "scratch", 500, 2000) == pytest.approx(
        np.mean([0.10, 0.11, 0.10])
    )


def test_changed_weights_counts_differences():
    a = [np.zeros((2, 3)), np.ones(3)]
    b = [np.zeros((2, 3)), np.array([1.0, 2.0, 1.0])]
    assert pretraining.changed_weights(a, a) == 0 and pretraining.changed_weights(a, b) == 1
    with pytest.raises(ValueError):
        pretraining.changed_weights(a, a[:1])


def _model_a(d):
    keras.utils.set_random_seed(0)
    a = models.compile_classifier(models.build_mlp(d.input_shape, 8, depth=3, width=100), "adam")
    return a


def test_reuse_upper_copies_the_upper_layers_under_a_new_first_layer():
    d = data.load("digits", n_train=64, n_valid=32, n_test=32, seed=0)
    a = _model_a(d)
    before = a.get_weights()
    new, reused = pretraining.reuse_upper(
        a,
        [keras.layers.Dense(100, activation="relu")],
        [keras.layers.Dense(2, activation="softmax")],
    )
    assert [type(layer).__name__ for layer in reused] == ["Dense", "Activation"] * 2
    for old, copy in zip(a.layers[3:7], reused):
        assert old is not copy and pretraining.weights_equal(old.get_weights(), copy.get_weights())
    assert new.output_shape == (None, 2)
    pretraining.set_trainable(new, reused, True, 0.05)
    new.fit(d.x_train, d.y_train % 2, epochs=1, verbose=0)
    assert pretraining.changed_weights(before, a.get_weights()) == 0


def test_transfer_runs_trains_every_arrangement_and_the_unfrozen_schedule():
    d = data.load("digits", n_train=300, n_valid=100, n_test=100, seed=0)
    ab = pretraining.split_ab(d, n_b_train=40, seed=0)
    a = pretraining.train_model_a(ab, epochs=1, seed=0)
    before = a.get_weights()
    schedule = pretraining.Schedule(frozen_epochs=1, tuned_epochs=1, batch_size=16)

    def task_b(seed):
        return pretraining.split_ab(d, n_b_train=40, seed=seed).b

    df = pretraining.transfer_runs(a, task_b, [1, 2], schedule)
    names = [
        "B from scratch",
        "B on A (lower 1)",
        "B on A (lower 2)",
        "B on A (all 3)",
        "B on A (upper 2)",
        pretraining.UNFROZEN,
    ]
    assert list(df["config"].cat.categories) == names
    assert len(df) == 12 and set(df["seed"]) == {1, 2}
    assert (df["epoch"] == 2).all()
    frozen, unfrozen = (
        df[df.config == n].test_accuracy.to_numpy()
        for n in ("B on A (all 3)", pretraining.UNFROZEN)
    )
    assert not np.array_equal(frozen, unfrozen)  # the two schedules train differently
    assert pretraining.changed_weights(before, a.get_weights()) == 0
