"""Unit tests of dnnbook.optimizers and dnnbook.optimizers: rates promised are rates applied."""

from __future__ import annotations

import math

import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import experiments, optimizers
from dnnbook.data import Splits


def _tiny_model(learning_rate=0.01) -> keras.Model:
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9), loss="mse"
    )
    return model


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x @ np.array([1.0, -2.0, 0.5], dtype="float32"))[:, None]


def _rate(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_mlp_with_compiles_the_baseline_mlp_with_the_named_optimizer():
    x = np.zeros((4, 6), "float32")
    y = np.zeros(4, "int64")
    splits = Splits(x, y, x, y, x, y, ("a", "b"))
    model = optimizers.mlp_with(splits, "Nesterov", 0.03)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [100, 100, 100, 2]
    assert isinstance(model.optimizer, keras.optimizers.SGD) and model.optimizer.nesterov
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.03)
    with pytest.raises(KeyError, match="unknown optimizer 'Adamax'"):
        optimizers.mlp_with(splits, "Adamax", 0.01)


def test_schedule_helpers_give_documented_rates():
    assert _rate(optimizers.power(0.1, 10), 0) == pytest.approx(0.1)
    assert _rate(optimizers.power(0.1, 10), 10) == pytest.approx(0.05)  # halves after `steps`
    assert _rate(optimizers.power(0.1, 10, power=2), 10) == pytest.approx(0.025)
    assert _rate(optimizers.exponential(0.1, 100), 100) == pytest.approx(0.01)  # ten times lower
    assert _rate(optimizers.exponential(0.1, 100), 50) == pytest.approx(0.1 * 0.1**0.5)
    pw = optimizers.piecewise([9], [0.1, 0.01])
    assert _rate(pw, 9) == pytest.approx(0.1) and _rate(pw, 10) == pytest.approx(0.01)
    with pytest.raises(ValueError):
        optimizers.piecewise([5, 10], [0.1, 0.01])


def test_schedule_rates_are_the_schedules_at_every_step():
    steps = np.array([0, 5, 9, 10, 11, 30, 10, 0])
    for schedule in (
        optimizers.power(0.1, 10),
        optimizers.exponential(0.1, 100),
        optimizers.piecewise([9], [0.1, 0.01]),
        optimizers.OneCycleSchedule(0.1, 31),
    ):
        want = [_rate(schedule, int(t)) for t in steps]
        np.testing.assert_allclose(optimizers.schedule_rates(schedule, steps), want, rtol=1e-6)


def test_one_cycle_rate_shape():
    total, top = 101, 1.0
    rates = [optimizers.OneCycleSchedule(top, total).rate(t) for t in range(total)]
    peak = int(np.argmax(rates))
    assert rates[0] == pytest.approx(0.1) and rates[peak] == pytest.approx(1.0)
    assert peak == 45
    assert rates[90] == pytest.approx(0.1) and rates[-1] == pytest.approx(1e-3)
    assert np.all(np.diff(rates[: peak + 1]) > 0) and np.all(np.diff(rates[peak:]) < 0)


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_one_cycle_schedule_applies_promised_rate_every_update(steps_per_execution):
    """The recorder reads the rate inside each update, so it sees every one even with several
    steps per call (the epoch of 8 updates runs as two calls of 4)."""
    if steps_per_execution > 1 and keras.backend.backend() == "torch":
        pytest.skip("the PyTorch trainer runs one step per call")
    x, y = _data()
    steps = 8 * 3  # 8 batches per epoch, 3 epochs
    cycle = optimizers.OneCycleSchedule(0.05, steps)
    model = _tiny_model(cycle)
    model.compile(optimizer=model.optimizer, loss="mse", steps_per_execution=steps_per_execution)
    rec = optimizers.RateRecorder()
    rec.prepare(model.optimizer, steps)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False, callbacks=[rec])
    assert len(rec.rates) == steps and rec.epochs == [t // 8 + 1 for t in range(steps)]
    want = [cycle.rate(t) for t in range(steps)]
    np.testing.assert_allclose(rec.rates, want, rtol=1e-5)  # float32 arithmetic in the schedule
    np.testing.assert_allclose(
        [_rate(cycle, t) for t in range(steps + 3)], want + [want[-1]] * 3, rtol=1e-5
    )
    assert max(rec.rates) == pytest.approx(0.05, rel=1e-6)


def test_rate_recorder_needs_prepare_and_enough_rows():
    x, y = _data()
    with pytest.raises(ValueError, match="prepare"):
        _tiny_model().fit(
            x, y, batch_size=8, epochs=1, verbose=0, callbacks=[optimizers.RateRecorder()]
        )
    model, rec = _tiny_model(), optimizers.RateRecorder()
    rec.prepare(model.optimizer, 4)
    with pytest.raises(ValueError, match="prepared for 4 updates, but 8 ran"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[rec])


def test_lr_finder_rates_are_exponential_and_applied():
    x, y = _data()
    model = _tiny_model()
    finder, rec = (
        optimizers.LRFinder(1e-4, 1e-1, steps=12, stop_factor=math.inf),
        optimizers.RateRecorder(),
    )
    rec.prepare(model.optimizer, 8 * 3)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False, callbacks=[finder, rec])
    want = 1e-4 * 1000.0 ** (np.arange(12) / 11)
    np.testing.assert_allclose(finder.rates, want, rtol=1e-6)  # stops after `steps` updates
    np.testing.assert_allclose(rec.rates, want, rtol=1e-6)
    assert finder.rates[-1] == pytest.approx(1e-1)
    assert len(finder.losses) == 12 and np.all(np.isfinite(finder.losses))


def test_lr_finder_recovers_batch_losses_from_running_mean():
    x, y = _data()
    model = _tiny_model()
    finder = optimizers.LRFinder(
        1e-6, 2e-6, steps=8, stop_factor=math.inf
    )  # rate ~ 0: weights barely move
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False, callbacks=[finder])
    pred = model.predict(x, verbose=0)
    batch_mse = ((pred - y) ** 2).reshape(8, 8).mean(axis=1)
    np.testing.assert_allclose(finder.losses, batch_mse, rtol=1e-3)


def test_suggest_is_minimum_over_ten():
    rates = np.logspace(-5, 1, 1201)  # dense, so the moving average lags little
    losses = (np.log10(rates) + 2) ** 2  # minimum at 1e-2
    assert optimizers.suggest(rates, losses) == pytest.approx(1e-3, rel=0.25)
    assert optimizers.suggest(rates, losses, divisor=1.0) == pytest.approx(1e-2, rel=0.25)


def test_plateau_replay_matches_keras_rule():
    r = 0.1
    assert optimizers.plateau_replay([1.0, 0.9, 0.95, 0.96, 0.5], r, 0.5, 1) == pytest.approx(
        [r, r, r, r / 2, r / 4]
    )
    assert optimizers.plateau_replay([1.0, 1.1, 1.2], r, 0.5, 2) == pytest.approx([r, r, r])


def test_rate_errors_flags_a_wrong_rate():
    rates = pd.DataFrame(
        {"config": "c", "seed": 0, "step": range(4), "epoch": 1, "rate": [0.1, 0.1, 0.1, 0.2]}
    )
    hist = pd.DataFrame({"config": ["c"], "seed": [0], "epoch": [1], "val_loss": [1.0]})
    err = optimizers.rate_errors(rates, hist, {"c": lambda r, h: np.full(len(r), 0.1)})
    assert err["c"] == pytest.approx(1.0)


def test_descent_matches_closed_form_sgd():
    bowl = optimizers.quadratic(a=0.1, b=10.0, start=(-9.0, 1.5))
    path = optimizers.descend(bowl, keras.optimizers.SGD(learning_rate=0.05), steps=20)
    t = np.arange(21)
    np.testing.assert_allclose(path[:, 0], -9.0 * (1 - 0.05 * 0.1) ** t, rtol=1e-5)
    np.testing.assert_allclose(path[:, 1], 1.5 * (1 - 0.05 * 10.0) ** t, rtol=1e-4, atol=1e-6)


def test_sign_changes_and_divergence():
    assert optimizers.sign_changes([1, -1, 1, 1e-4, -1], tol=1e-3) == 3
    assert optimizers.sign_changes([3, 2, 1]) == 0
    bowl = optimizers.quadratic()
    path = optimizers.descend(
        bowl, keras.optimizers.SGD(learning_rate=1.0), steps=400
    )  # 1 - 10 < -1: diverges
    assert optimizers.distance_to_minimum(bowl, path) == math.inf


def test_run_schedules_in_lockstep_match_seed_after_seed():
    from dnnbook import data, models

    d = data.load("digits", n_train=256, n_valid=64, n_test=32, seed=0)

    def make(rate):
        return models.compile_classifier(
            models.build_mlp(d.input_shape, d.n_classes, depth=1, width=16),
            optimizers.make_optimizer("momentum", rate),
        )

    configs, promises = optimizers.schedule_suite(make, 0.05, steps_per_epoch=8, epochs=3)
    pick = {name: configs[name] for name in ("power", "performance", "1cycle")}
    lock, lock_rates = optimizers.run_schedules(pick, d, [1, 2], epochs=3)
    with experiments.seed_after_seed():
        solo, solo_rates = optimizers.run_schedules(pick, d, [1, 2], epochs=3)
    # a schedule, 1cycle and the rate recorder let the seeds share the optimizer;
    # ReduceLROnPlateau runs per replica
    assert (lock["lockstep"] == 2).all()
    assert (solo["lockstep"] == 1).all() and list(lock.columns) == list(solo.columns)
    cols = ["loss", "accuracy", "val_loss", "val_accuracy"]
    np.testing.assert_allclose(lock[cols].to_numpy(), solo[cols].to_numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(lock_rates["rate"], solo_rates["rate"], rtol=1e-6)
    assert len(lock_rates) == 3 * 2 * 3 * 8  # configs × seeds × epochs × steps
    assert optimizers.rate_errors(lock_rates, lock, {k: promises[k] for k in pick}).max() < 1e-5


def test_tuning_window_marks_too_small_good_and_diverging_rates():
    bowl = optimizers.quadratic(a=1.0, b=1.0, start=(1.0, 1.0))  # SGD contracts by |1 - rate|
    works = optimizers.tuning_window(
        bowl, lambda lr: keras.optimizers.SGD(learning_rate=lr), [1e-3, 0.5, 2.5], steps=50, tol=0.5
    )
    assert works.tolist() == [False, True, False]  # too slow, converges, diverges (|1 - 2.5| > 1)


def test_lr_finder_end_to_end_suggests_a_rate_below_the_blow_up_that_trains():
    from dnnbook import data, models

    d = data.load("digits", n_train=320, n_valid=64, n_test=32, seed=0)

    def make():
        model = models.build_mlp(d.input_shape, d.n_classes, depth=1, width=32)
        return models.compile_classifier(model, keras.optimizers.SGD(learning_rate=1e-3))

    frame = optimizers.lr_find(make, d, seed=0, steps=100, start=1e-4, end=10.0)
    rate = optimizers.suggest(frame["rate"], frame["loss"])
    lowest = int(frame["smoothed"].idxmin())
    after = frame.iloc[lowest:]
    blow_up = after[after["smoothed"] > frame["smoothed"].iloc[0]]  # worse than at the start
    assert len(frame) < 100 or len(blow_up), "the loss never shot up: widen the range"
    shoots_up_at = float(blow_up["rate"].iloc[0]) if len(blow_up) else float(frame["rate"].iloc[-1])
    assert rate < shoots_up_at / 3
    from dnnbook.runtime import seed_everything

    seed_everything(0)
    model = make()
    model.optimizer.learning_rate = rate
    before = model.evaluate(d.x_train, d.y_train, verbose=0)[0]
    model.fit(d.x_train, d.y_train, epochs=3, batch_size=32, verbose=0)
    after_loss = model.evaluate(d.x_train, d.y_train, verbose=0)[0]
    assert after_loss < 0.7 * before


def test_find_rates_picks_from_the_mean_curve_of_its_seeds(monkeypatch):
    """The pick comes from the seeds' mean loss (over the steps all reached), not one run's."""
    rates = 1e-4 * 10.0 ** (np.arange(40) / 10)
    shapes = {  # seed -> (loss curve, last step reached)
        0: ((np.log10(rates) + 2) ** 2, 39),  # lowest at 1e-2
        1: ((np.log10(rates) + 2) ** 2 + 0.5 * (np.arange(40) == 5), 30),  # a noisy batch
        2: ((np.log10(rates) + 3) ** 2, 35),  # lowest at 1e-3
    }

    def fake_find(make, data, *, seed, steps, batch_size):
        loss, last = shapes[seed]
        return pd.DataFrame(
            {"step": np.arange(last + 1), "rate": rates[: last + 1], "loss": loss[: last + 1]}
        )

    monkeypatch.setattr(optimizers, "lr_find", fake_find)
    curves, chosen = optimizers.find_rates(
        lambda n, r: None, ["SGD"], None, seeds=[0, 1, 2], steps=40
    )
    assert sorted(curves["seed"].unique()) == [0, 1, 2] and set(curves["config"]) == {"SGD"}
    mean = optimizers.mean_curve(curves)
    assert mean["step"].max() == 30  # the steps every run reached
    want = np.mean([shapes[s][0][:31] for s in shapes], axis=0)
    np.testing.assert_allclose(mean["loss"], want)
    assert chosen["SGD"] == pytest.approx(optimizers.suggest(rates[:31], want))
    # one seed alone picks from its own curve; the mean lies between the seeds' picks
    _, alone = optimizers.find_rates(lambda n, r: None, ["SGD"], None, seeds=[2], steps=40)
    assert alone["SGD"] == pytest.approx(optimizers.suggest(rates[:36], shapes[2][0][:36]))
    _, first = optimizers.find_rates(lambda n, r: None, ["SGD"], None, seeds=[0], steps=40)
    assert alone["SGD"] < chosen["SGD"] < first["SGD"]
    with pytest.raises(ValueError, match="at least one seed"):
        optimizers.find_rates(lambda n, r: None, ["SGD"], None, seeds=[], steps=40)
    # the figure draws the mean curve (one line and its pick per optimizer), not every run
    import matplotlib.pyplot as plt

    fig = optimizers.plot_finder(curves, chosen)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and "mean of 3 seeds" in ax.get_ylabel()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mean["smoothed"])
    plt.close(fig)
