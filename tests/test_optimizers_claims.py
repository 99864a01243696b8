"""Chapter 3's claim conditions: each holds on an effect and fails once the effect is removed
(negative controls), on tiny experiments or synthetic frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dnnbook import optimizers


def _history(finals: dict[str, list[float]], first: dict[str, list[float]] | None = None):
    """A tidy history: per config, one run per seed, epoch 1 (``first``, else the final value
    minus 0.1) and epoch 2 (``finals``)."""
    rows = []
    for name, values in finals.items():
        for seed, value in enumerate(values):
            start = (first or {}).get(name, [v - 0.1 for v in values])[seed]
            rows += [
                {"config": name, "seed": seed, "epoch": 1, "val_accuracy": start},
                {"config": name, "seed": seed, "epoch": 2, "val_accuracy": value},
            ]
    df = pd.DataFrame(rows)
    df["config"] = pd.Categorical(df["config"], list(finals), ordered=True)
    return df


def test_adam_ahead_of_sgd_holds_on_a_tiny_run_and_fails_with_identical_arms():
    from dnnbook import data, experiments, models

    d = data.load("digits", n_train=320, n_valid=160, n_test=32, seed=0)

    def make(name, rate):
        def build():
            model = models.build_mlp(d.input_shape, d.n_classes, depth=1, width=32)
            return models.compile_classifier(model, optimizers.make_optimizer(name, rate))

        return build

    configs = {
        "Adam": make("Adam", 1e-2),
        "SGD": make("SGD", 1e-4),  # far too low to learn in one epoch: a gap on every backend
        "Adam again": make("Adam", 1e-2),
    }
    history = experiments.run(configs, d, [0, 1, 2, 3], epochs=1)
    assert optimizers.ahead(history, "Adam", "SGD", epoch=1).holds
    control = optimizers.ahead(history, "Adam", "Adam again", epoch=1)  # the same optimizer twice
    assert not control.holds and control.margin <= 0
    fast = optimizers.faster(history, "Adam", "SGD")
    assert fast.holds and "SGD − Adam" in fast.evidence
    assert not optimizers.faster(history, "SGD", "Adam").holds  # the other way round
    control = optimizers.faster(history, "Adam", "Adam again")
    assert not control.holds and control.margin <= 0


def test_faster_compares_the_training_loss_of_the_epoch_asked_for():
    rows = [
        {"config": c, "seed": s, "epoch": e, "loss": loss}
        for s in range(3)
        for c, e, loss in (
            ("Adam", 1, 0.50 + 0.01 * s),
            ("SGD", 1, 0.70 + 0.01 * s),
            ("Adam", 2, 0.40 + 0.01 * s),
            ("SGD", 2, 0.30 + 0.02 * s),
        )
    ]
    history = pd.DataFrame(rows)
    history["config"] = pd.Categorical(history["config"], ["Adam", "SGD"], ordered=True)
    first = optimizers.faster(history, "Adam", "SGD")
    assert first.holds and first.margin == pytest.approx(0.2, abs=0.02)
    assert not optimizers.faster(history, "Adam", "SGD", epoch=2).holds


def test_learns_fails_for_a_run_near_chance():
    good = _history({"SGD": [0.70, 0.68, 0.69], "Adam": [0.78, 0.77, 0.79]})
    check = optimizers.learns(good)
    assert check.holds and check.margin > 0
    at_chance = _history({"SGD": [0.70, 0.68, 0.69], "Adam": [0.78, 0.11, 0.79]})
    assert not optimizers.learns(at_chance).holds


def test_not_below_fails_far_below_the_reference_and_holds_on_a_tie():
    tie = _history({"SGD": [0.70, 0.68, 0.69], "AdaGrad": [0.70, 0.685, 0.69]})
    assert optimizers.not_below(tie, "AdaGrad", "SGD", tolerance=0.02).holds
    below = _history({"SGD": [0.70, 0.68, 0.69], "AdaGrad": [0.60, 0.59, 0.61]})
    check = optimizers.not_below(below, "AdaGrad", "SGD", tolerance=0.02)
    assert not check.holds and check.margin < 0


def test_one_sided_ahead_fails_for_identical_schedules():
    win = _history({"constant": [0.75, 0.74, 0.76], "1cycle": [0.78, 0.775, 0.785]})
    assert optimizers.ahead(win, "1cycle", "constant", one_sided=True).holds
    same = _history({"constant": [0.75, 0.74, 0.76], "1cycle": [0.75, 0.74, 0.76]})
    assert not optimizers.ahead(same, "1cycle", "constant", one_sided=True).holds


def test_not_beaten_fails_when_another_rate_is_clearly_better():
    same = _history({"chosen": [0.75, 0.74, 0.76], "× 10": [0.73, 0.74, 0.75]})
    assert optimizers.not_beaten(same, "chosen", ["× 10"], tolerance=0.03).holds
    better = _history({"chosen": [0.75, 0.74, 0.76], "× 10": [0.81, 0.80, 0.83]})
    check = optimizers.not_beaten(better, "chosen", ["× 10"], tolerance=0.03)
    assert not check.holds and check.margin < 0


def test_not_beaten_holds_for_a_tie_of_schedules_and_fails_for_one_that_wins():
    tie = _history({"constant": [0.75, 0.74, 0.76], "1cycle": [0.75, 0.745, 0.755]})
    assert optimizers.not_beaten(tie, "constant", ["1cycle"], tolerance=0.05).holds
    win = _history({"constant": [0.75, 0.74, 0.76], "1cycle": [0.84, 0.83, 0.85]})
    assert not optimizers.not_beaten(win, "constant", ["1cycle"], tolerance=0.05).holds


def test_surface_checks_fail_without_the_effect():
    assert optimizers.overshoots({"momentum": 32, "SGD": 0}).holds
    assert not optimizers.overshoots({"momentum": 32, "SGD": 1}).holds
    assert not optimizers.overshoots({"momentum": 9, "SGD": 0}).holds
    assert optimizers.brakes({"Nesterov": 5, "momentum": 32}).holds
    assert not optimizers.brakes({"Nesterov": 16, "momentum": 32}).holds
    works = {
        "Adam": np.array([0, 1, 1, 1]),
        "Nadam": np.array([0, 1, 1, 1]),
        "momentum": np.array([0, 1, 1, 0]),
        "SGD": np.array([0, 0, 1, 0]),
    }
    assert optimizers.wider_window(works).holds
    same = {k: np.array([0, 1, 1, 0]) for k in works}  # every optimizer the same window
    assert not optimizers.wider_window(same).holds


def test_stalls_fails_when_every_optimizer_takes_the_same_path():
    valley = optimizers.rosenbrock(scale=10.0)
    slowing = (
        np.asarray(valley.minimum)
        + (np.asarray(valley.start) - valley.minimum) * (np.exp(-np.arange(301) / 30.0)[:, None])
    )  # steps shrink, ends at the minimum
    stuck = np.asarray(valley.start) + (np.asarray(valley.minimum) - valley.start) * (
        0.5 * (1 - np.exp(-np.arange(301) / 30.0))[:, None]
    )  # stops halfway
    assert optimizers.stalls(valley, {"AdaGrad": stuck, "RMSProp": slowing, "Adam": slowing}).holds
    same = {"AdaGrad": slowing, "RMSProp": slowing, "Adam": slowing}
    assert not optimizers.stalls(valley, same).holds


def test_finder_gap_fails_when_the_rates_are_the_same():
    rates = {"SGD": 1e-2, "RMSProp": 2e-4, "Adam": 1e-3, "Nadam": 1e-3}
    assert optimizers.finder_gap(rates).holds
    assert not optimizers.finder_gap({k: 1e-2 for k in rates}).holds


def test_rate_checks_fail_on_a_wrong_rate():
    assert optimizers.rates_applied(pd.Series({"a": 1e-7})).holds
    assert not optimizers.rates_applied(pd.Series({"a": 1e-3})).holds
    rates = pd.DataFrame({"config": "piecewise", "seed": 0, "rate": [0.1, 0.1, 0.01]})
    assert optimizers.piecewise_drop(rates).holds
    flat = rates.assign(rate=0.1)  # a schedule that never drops
    assert not optimizers.piecewise_drop(flat).holds


def test_both_needs_every_check():
    yes, no = optimizers.Check(True, "a", 0.5), optimizers.Check(False, "b", -0.1)
    assert optimizers.both(yes, yes).holds
    combined = optimizers.both(yes, no)
    assert not combined.holds and combined.margin == pytest.approx(-0.1)
    assert combined.evidence == "a; b"
