"""The conditions of chapter 1's claims: each holds on the effect and fails without it
(negative controls: identical arms, or the effect removed)."""

import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import data, experiments, gradients


@pytest.fixture(scope="module")
def digits():
    return data.standardize(data.load("digits", n_train=200, n_valid=100, n_test=16, seed=0))


def probe(d, names, depths, **kwargs):
    x, y = d.x_train[:64], d.y_train[:64]
    return gradients.probe_pairings(
        names, x, y, depths=depths, seeds=[0, 1], width=32, n_classes=d.n_classes, **kwargs
    )


def norms_frame(config, per_seed_norms, depth=None):
    """A probe_pairings-like frame: per seed, the given hidden norms plus an output layer."""
    rows = []
    for seed, norms in enumerate(per_seed_norms):
        values = list(norms) + [1.0]
        rows += [
            {
                "config": config,
                "seed": seed,
                "depth": depth or len(norms),
                "layer": i + 1,
                "norm": v,
            }
            for i, v in enumerate(values)
        ]
    return pd.DataFrame(rows)


def test_growth_per_layer_and_chance():
    frame = norms_frame("c", [[8.0, 4.0, 2.0, 1.0]])
    assert gradients.growth_per_layer(frame) == pytest.approx(2.0)
    assert gradients.chance_level([0, 0, 0, 1]) == 0.75
    y = np.repeat(np.arange(10), 100)
    assert gradients.chance_band(y) == pytest.approx(0.1 + 3 * np.sqrt(0.09 / 1000))


def test_vanishing_and_band_checks_on_synthetic_frames():
    shrinking = norms_frame("s", [[0.25**k for k in range(5, 0, -1)]] * 2)
    flat = norms_frame("s", [[1.0, 2.0, 1.5, 1.0, 1.2]] * 2)
    assert gradients.vanishes(shrinking, "s").holds
    assert not gradients.vanishes(flat, "s").holds  # the effect removed
    assert gradients.within_order(flat, "s").holds
    assert not gradients.within_order(shrinking, "s").holds
    check = gradients.restores_flow(shrinking, flat, "s")
    assert check.holds and check.margin > 0
    assert not gradients.restores_flow(shrinking, shrinking, "s").holds  # identical arms


def test_saturation_check_needs_large_weights(digits):
    # 128 units: a fan-in like the chapter's, where N(0, 1) weights push most units into the
    # flat tails on every backend (at 32 the share sat near the 25-point bar)
    _, acts = gradients.probe_pairings(
        ["sigmoid + N(0, 1)", "sigmoid + Glorot"],
        digits.x_train[:64],
        digits.y_train[:64],
        depths=[5],
        seeds=[0, 1],
        width=128,
        n_classes=digits.n_classes,
    )
    check = gradients.saturates_more(acts, "sigmoid + N(0, 1)", "sigmoid + Glorot")
    assert check.holds and check.margin > 0
    control = gradients.saturates_more(acts, "sigmoid + Glorot", "sigmoid + Glorot")
    assert not control.holds and control.margin < 0  # Glorot in both arms


def test_exploding_with_depth_needs_an_exploding_init(digits):
    norms, _ = probe(digits, ["tanh + N(0, 1)", "tanh + Glorot"], [4, 10, 16])
    assert gradients.explodes_with_depth(norms, "tanh + N(0, 1)", "tanh + Glorot").holds
    assert not gradients.explodes_with_depth(norms, "tanh + Glorot", "tanh + Glorot").holds
    table = gradients.ratio_by_depth(norms)
    assert list(table.columns) == [4, 10, 16] and table.loc["tanh + N(0, 1)", 16] > 1e3


def test_bn_restores_the_gradient_in_training_mode(digits):
    plain, _ = probe(digits, ["sigmoid + Glorot"], [12])
    with_bn, _ = probe(digits, ["sigmoid + Glorot"], [12], training=True, batch_norm="after")
    assert gradients.restores_flow(plain, with_bn, "sigmoid + Glorot").holds
    assert not gradients.restores_flow(plain, plain, "sigmoid + Glorot").holds


def history(accs, config="a", loss=1.0):
    return pd.DataFrame(
        [
            {"config": config, "seed": s, "epoch": e + 1, "loss": loss, "val_accuracy": v}
            for s, row in enumerate(accs)
            for e, v in enumerate(row)
        ]
    )


def test_stays_at_chance_checks_every_epoch():
    assert gradients.stays_at_chance(history([[0.1, 0.11], [0.1, 0.1]]), "a", 0.13).holds
    late = gradients.stays_at_chance(history([[0.1, 0.5], [0.1, 0.1]]), "a", 0.13)
    early = gradients.stays_at_chance(history([[0.5, 0.1], [0.1, 0.1]]), "a", 0.13)
    assert not late.holds and not early.holds  # not only the last epoch


def test_paired_checks_fail_on_identical_arms():
    table = pd.DataFrame({"a": [0.7, 0.72, 0.69], "b": [0.1, 0.12, 0.1]})
    assert experiments.paired_check(table, "a", "b").holds
    same = experiments.paired_check(table, "a", "a")
    assert not same.holds and same.margin == 0
    assert not experiments.paired_check(table, "a", "b", threshold=0.7).holds
    one, two = (experiments.paired_check(table, "a", "b", one_sided=s) for s in (True, False))
    assert one.margin > two.margin and "one-sided" in one.evidence
    with pytest.raises(KeyError, match="no config 'c'"):
        experiments.paired_check(table, "a", "c")


def test_dying_and_waking_checks():
    units = pd.DataFrame(
        {
            "config": ["r", "r", "l", "l"],
            "seed": [0, 1, 0, 1],
            "dead_fraction": [0.2, 0.25, 0.03, 0.05],
            "never": [100, 90, 20, 10],
            "woke": [30, 20, 15, 8],
        }
    )
    assert gradients.dies_more(units, "r", "l").holds
    assert not gradients.dies_more(units, "r", "r").holds  # identical arms
    woke = gradients.wakes_more(units, "l", "r")  # 23 of 30 against 50 of 190, pooled
    assert woke.holds and "23 of 30" in woke.evidence and 0 < woke.margin < 0.5
    assert not gradients.wakes_more(units, "l", "l").holds  # identical arms: bound below 0
    # a seed with none of them is fine when pooled; a network with none at all is n/a
    assert gradients.wakes_more(
        units.assign(never=[100, 90, 0, 10], woke=[30, 20, 0, 8]), "l", "r"
    ).holds
    none = units.assign(never=[100, 90, 0, 0], woke=[30, 20, 0, 0])
    assert gradients.wakes_more(none, "l", "r").holds is None
    # a small edge from few units is not enough: 3 of 4 against 50 of 100
    few = units.assign(never=[50, 50, 2, 2], woke=[25, 25, 2, 1])
    assert not gradients.wakes_more(few, "l", "r").holds


def test_divergence_check_needs_a_diverging_arm():
    plain = history([[0.1, 0.1], [0.09, 0.1]], "plain", loss=np.nan)
    clipped = history([[0.5, 0.6], [0.55, 0.62]], "clipped")
    both = pd.concat([plain, clipped], ignore_index=True)
    assert gradients.diverges_without_clipping(both, "plain", "clipped", band=0.13).holds
    twice = pd.concat([clipped, clipped.assign(config="other")], ignore_index=True)
    assert not gradients.diverges_without_clipping(twice, "other", "clipped", band=0.13).holds


def test_never_positive_tracks_units_across_calls():
    model = keras.Sequential(
        [
            keras.Input(shape=(2,)),
            keras.layers.Dense(2),
            keras.layers.Activation("relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.set_weights(
        [
            np.array([[1.0, -1.0], [0.0, 0.0]], "float32"),
            np.zeros(2, "float32"),
            np.eye(2, dtype="float32"),
            np.zeros(2, "float32"),
        ]
    )
    x = np.array([[1.0, 0.0], [2.0, 0.0]], "float32")
    tracker = gradients.NeverPositive(x)
    assert tracker(model) == 0.5  # the second unit is never positive
    weights = model.get_weights()
    weights[0][0, 1] = 1.0  # wake it up
    model.set_weights(weights)
    assert tracker(model) == 0.0
    assert tracker.woke(model) == {"never": 1, "woke": 1, "woke_share": 1.0}
