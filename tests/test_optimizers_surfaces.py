"""Unit tests of dnnbook.surfaces: Keras optimizers stepped on 2-D surfaces."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from dnnbook import surfaces


def test_descent_matches_closed_form_sgd():
    bowl = surfaces.quadratic(a=0.1, b=10.0, start=(-9.0, 1.5))
    path = surfaces.Descent(bowl, keras.optimizers.SGD(learning_rate=0.05)).run(20)
    t = np.arange(21)
    np.testing.assert_allclose(path[:, 0], -9.0 * (1 - 0.05 * 0.1) ** t, rtol=1e-5)
    np.testing.assert_allclose(path[:, 1], 1.5 * (1 - 0.05 * 10.0) ** t, rtol=1e-4, atol=1e-6)


def test_race_restarts_every_optimizer_from_the_start():
    bowl = surfaces.quadratic()
    paths = surfaces.race(
        bowl, {"a": keras.optimizers.SGD(0.05), "b": keras.optimizers.Adam(0.05)}, steps=5
    )
    assert set(paths) == {"a", "b"}
    for path in paths.values():
        assert path.shape == (6, 2) and tuple(path[0]) == bowl.start


def test_sign_changes_step_lengths_and_divergence():
    assert surfaces.sign_changes([1, -1, 1, 1e-4, -1], tol=1e-3) == 3
    assert surfaces.sign_changes([3, 2, 1]) == 0
    np.testing.assert_allclose(surfaces.step_lengths(np.array([[0, 0], [3, 4], [3, 5]])), [5, 1])
    bowl = surfaces.quadratic()
    path = surfaces.Descent(bowl, keras.optimizers.SGD(learning_rate=1.0)).run(400)
    assert np.isnan(path[-1]).all()  # 1 - 10 < -1: diverges
    assert surfaces.distance_to_minimum(bowl, path) == math.inf
    valley = surfaces.rosenbrock(scale=10.0)
    assert surfaces.distance_to_minimum(valley, np.array([[0.0, 0.0], [1.0, 2.0]])) == 1.0
    assert valley.value(1.0, 1.0) == 0.0


def test_tuning_window_marks_too_small_good_and_diverging_rates():
    bowl = surfaces.quadratic(a=1.0, b=1.0, start=(1.0, 1.0))  # SGD contracts by |1 - rate|
    works = surfaces.tuning_window(
        bowl, lambda lr: keras.optimizers.SGD(learning_rate=lr), [1e-3, 0.5, 2.5], steps=50, tol=0.5
    )
    assert works.tolist() == [False, True, False]  # too slow, converges, diverges


def test_sgd_step_sizes_measure_the_rate_of_each_update():
    at = [0, 1, 5, 9, 10, 30, 2]
    assert surfaces.sgd_step_sizes(0.01, at) == pytest.approx([0.01] * len(at), rel=1e-6)
    decay = keras.optimizers.schedules.InverseTimeDecay(0.1, decay_steps=10, decay_rate=1.0)
    want = [0.1 / (1 + t / 10) for t in at]
    assert surfaces.sgd_step_sizes(decay, at) == pytest.approx(want, rel=1e-6)
    steps = keras.optimizers.schedules.PiecewiseConstantDecay([9], [0.1, 0.01])
    assert surfaces.sgd_step_sizes(steps, [8, 9, 10]) == pytest.approx([0.1, 0.1, 0.01])


def test_sgd_step_sizes_measure_the_update_not_the_promise(monkeypatch):
    """A negative control: an update that moves by more than its rate (momentum's, from its
    second step on) is measured as such, so the measure does not read the rate back."""
    sgd = keras.optimizers.SGD

    def momentum(learning_rate):
        return sgd(learning_rate=learning_rate, momentum=0.9)

    monkeypatch.setattr(keras.optimizers, "SGD", momentum)
    assert surfaces.sgd_step_sizes(0.01, [0, 1]) == pytest.approx([0.01, 0.019], rel=1e-5)


def test_plot_race_draws_one_line_per_optimizer_on_each_panel():
    import matplotlib.pyplot as plt

    bowl = surfaces.quadratic()
    paths = surfaces.race(bowl, {"SGD": keras.optimizers.SGD(0.05)}, steps=3)
    fig = surfaces.plot_race(bowl, paths, title="t")
    contour, loss = fig.axes
    assert len(loss.lines) == 1 and len(contour.lines) == 3  # path, minimum, start
    plt.close(fig)
