"""Chapter 1's clipped step (loaded from the chapter): a real Keras optimizer's clipping."""

import numpy as np

from tests import chapter_code


def test_clipvalue_and_clipnorm_match_the_article():
    clipped_step = chapter_code.load("01").clipped_step
    np.testing.assert_allclose(
        clipped_step([[0.9, 100.0]], clipvalue=1.0)[0], [0.9, 1.0], atol=1e-6
    )
    np.testing.assert_allclose(
        clipped_step([[0.9, 100.0]], clipnorm=1.0)[0], [0.00899964, 0.9999595], atol=1e-6
    )
    np.testing.assert_allclose(clipped_step([[0.3, 0.4]], clipnorm=1.0)[0], [0.3, 0.4], atol=1e-7)


def test_clipnorm_is_per_variable_global_clipnorm_is_global():
    clipped_step = chapter_code.load("01").clipped_step
    grads = [[0.9, 100.0], [3.0, 4.0]]
    per = clipped_step(grads, clipnorm=1.0)
    np.testing.assert_allclose([np.linalg.norm(g) for g in per], [1.0, 1.0], rtol=1e-5)
    glob = clipped_step(grads, global_clipnorm=1.0)
    total = np.sqrt(0.9**2 + 100**2 + 25)
    np.testing.assert_allclose(glob[1], np.array([3.0, 4.0]) / total, rtol=1e-5)
    np.testing.assert_allclose(clipped_step(grads)[0], grads[0], rtol=1e-6)  # no clipping
