"""Unit tests of dnnbook.gradients: a real Keras optimizer's clipped step."""

import numpy as np

from dnnbook import gradients


def test_clipvalue_and_clipnorm_match_the_article():
    np.testing.assert_allclose(
        gradients.clipped_update([[0.9, 100.0]], clipvalue=1.0)[0], [0.9, 1.0], atol=1e-6
    )
    np.testing.assert_allclose(
        gradients.clipped_update([[0.9, 100.0]], clipnorm=1.0)[0],
        [0.00899964, 0.9999595],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        gradients.clipped_update([[0.3, 0.4]], clipnorm=1.0)[0], [0.3, 0.4], atol=1e-7
    )


def test_clipnorm_is_per_variable_global_clipnorm_is_global():
    grads = [[0.9, 100.0], [3.0, 4.0]]
    per = gradients.clipped_update(grads, clipnorm=1.0)
    np.testing.assert_allclose([np.linalg.norm(g) for g in per], [1.0, 1.0], rtol=1e-5)
    glob = gradients.clipped_update(grads, global_clipnorm=1.0)
    total = np.sqrt(0.9**2 + 100**2 + 25)
    np.testing.assert_allclose(glob[1], np.array([3.0, 4.0]) / total, rtol=1e-5)
    table = gradients.clipping_table(grads, {"g": {"global_clipnorm": 1.0}, "none": {}})
    assert abs(table.loc["g", "global norm"] - 1.0) < 1e-5
    assert abs(table.loc["none", "global norm"] - total) < 1e-3
