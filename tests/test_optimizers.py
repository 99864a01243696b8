"""Unit tests of chapter 3's Keras code, loaded from the chapter: the baseline MLP, the
learning-rate finder and its rule, and the 1cycle schedule."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dnnbook import data, experiments
from tests import chapter_code

ch = chapter_code.load("03")


def _digits(n_train=320):
    return data.load("digits", n_train=n_train, n_valid=64, n_test=32, seed=0)


def _rate(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_mlp_is_the_baseline_compiled_with_the_given_optimizer():
    optimizer = keras.optimizers.SGD(learning_rate=0.03, momentum=0.9, nesterov=True)
    model = ch.mlp(optimizer, input_shape=(6,), n_classes=2)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [100, 100, 100, 2]
    assert [layer.get_config()["activation"] for layer in dense] == ["relu"] * 3 + ["softmax"]
    assert model.optimizer is optimizer and model.optimizer.nesterov


def test_one_cycle_rises_falls_and_ends_at_a_thousandth():
    total, top = 101, 1.0
    cycle = ch.OneCycle(top, total)
    rates = np.array([_rate(cycle, t) for t in range(total + 3)])
    peak = int(np.argmax(rates))
    assert peak == 45 and rates[peak] == pytest.approx(1.0)
    assert rates[0] == pytest.approx(0.1) and rates[90] == pytest.approx(0.1)
    assert rates[100] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-3)  # held
    assert np.all(np.diff(rates[: peak + 1]) > 0) and np.all(np.diff(rates[peak:101]) < 0)
    want = np.interp(np.arange(101), [0, 45, 90, 100], [0.1, 1.0, 0.1, 1e-3])
    np.testing.assert_allclose(rates[:101], want, rtol=1e-5)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(cycle))
    assert _rate(again, 30) == pytest.approx(_rate(cycle, 30))


def test_one_cycle_trains_seeds_in_lockstep_as_they_train_alone():
    """The schedule lets the seeds share one stacked model: each seed's run is its solo run."""
    d = _digits(256)

    def make():
        optimizer = keras.optimizers.SGD(learning_rate=ch.OneCycle(0.1, 24), momentum=0.9)
        return ch.mlp(optimizer, input_shape=d.input_shape, n_classes=d.n_classes)

    lock = experiments.run({"1cycle": make}, d, [1, 2], epochs=3)
    with experiments.seed_after_seed():
        solo = experiments.run({"1cycle": make}, d, [1, 2], epochs=3)
    assert (lock["lockstep"] == 2).all() and (solo["lockstep"] == 1).all()
    cols = ["loss", "val_loss", "val_accuracy"]
    np.testing.assert_allclose(lock[cols].to_numpy(), solo[cols].to_numpy(), rtol=1e-4, atol=1e-5)


def test_lr_finder_raises_the_rate_exponentially_and_stops_after_its_steps():
    d = _digits()
    finder = ch.LRFinder(1e-4, 1e-1, steps=12)
    model = ch.mlp(keras.optimizers.SGD(1e-3), d.input_shape, d.n_classes)
    model.fit(d.x_train, d.y_train, batch_size=32, epochs=3, verbose=0, callbacks=[finder])
    np.testing.assert_allclose(finder.rates, 1e-4 * 1000.0 ** (np.arange(12) / 11), rtol=1e-9)
    assert len(finder.losses) == 12 and np.all(np.isfinite(finder.losses))  # 10 per epoch
    applied = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert applied == pytest.approx(1e-1, rel=1e-6)  # the last rate was set for the last batch


def test_lr_finder_recovers_each_batch_loss_from_the_running_mean():
    d = _digits()
    model = ch.mlp(keras.optimizers.SGD(1e-3), d.input_shape, d.n_classes)
    finder = ch.LRFinder(1e-9, 2e-9, steps=10)  # rate ~ 0: the weights do not move
    model.fit(
        d.x_train, d.y_train, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[finder]
    )
    loss = keras.losses.sparse_categorical_crossentropy(
        d.y_train, model.predict(d.x_train, verbose=0)
    )
    per_batch = keras.ops.convert_to_numpy(loss).reshape(10, 32).mean(axis=1)
    np.testing.assert_allclose(finder.losses, per_batch, rtol=1e-3)


def test_lr_finder_stops_when_the_loss_blows_up():
    d = _digits()
    model = ch.mlp(keras.optimizers.SGD(1e-3), d.input_shape, d.n_classes)
    finder = ch.LRFinder(1e-3, 1e4, steps=100)
    model.fit(d.x_train, d.y_train, batch_size=32, epochs=10, verbose=0, callbacks=[finder])
    assert len(finder.losses) < 100
    last = finder.losses[-1]
    assert not last < 4 * np.nanmin(finder.losses)


def test_suggest_is_the_lowest_smoothed_loss_over_ten():
    rates = np.logspace(-5, 1, 1201)  # dense, so the moving average lags little
    losses = (np.log10(rates) + 2) ** 2  # lowest at 1e-2
    assert ch.suggest(rates, losses) == pytest.approx(1e-3, rel=0.25)
    np.testing.assert_allclose(ch.smooth([2.0, 2.0, 2.0]), [2.0, 2.0, 2.0])  # bias-corrected


def test_find_rate_suggests_a_rate_below_the_blow_up_that_trains():
    d = _digits()

    def make():
        return ch.mlp(keras.optimizers.SGD(1e-3), d.input_shape, d.n_classes)

    rates, losses, rate = ch.find_rate(make, d, seeds=[0, 1], steps=100)
    assert len(rates) == len(losses) <= 100
    assert rate == pytest.approx(ch.suggest(rates, losses))
    assert rate < rates[-1] / 3
    model = make()
    model.optimizer.learning_rate = rate
    before = model.evaluate(d.x_train, d.y_train, verbose=0)[0]
    model.fit(d.x_train, d.y_train, epochs=3, batch_size=32, verbose=0)
    assert model.evaluate(d.x_train, d.y_train, verbose=0)[0] < 0.7 * before
