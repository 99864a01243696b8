"""The conditions of chapter 4's claims, as the chapter writes them with dnnbook.checks, hold
where the effect is there and fail where it is removed (negative controls: identical arms, no
dropout, no constraint)."""

import functools

import keras
import numpy as np
import pytest

from dnnbook import checks, data, experiments
from tests import chapter_code

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def tiny():
    """A few epochs on a small noisy Fashion-MNIST subset: no regularization, the same
    twice, dropout and max-norm; the chapter's per-run measurements."""
    from dnnbook.noisy_labels import with_label_noise

    ch = chapter_code.load("04")
    clean = data.load("fashion_mnist", n_train=300, n_valid=200, n_test=200, seed=0)
    noisy = with_label_noise(clean, 0.2, seed=0)
    mlp = functools.partial(ch.mlp, 2, 64)
    configs = {
        "none": mlp,
        "none again": mlp,
        "dropout 0.5": functools.partial(mlp, dropout=0.5),
        "max-norm 0.5": functools.partial(
            mlp, kernel_constraint=keras.constraints.MaxNorm(0.5, axis=0)
        ),
    }
    models: dict = {}
    history = experiments.run(configs, noisy, SEEDS, epochs=6, batch_size=32, models=models)
    return ch, ch.measure(models, noisy, history)


def test_claim_conditions_hold_with_the_effect_and_fail_without_it(tiny):
    ch, after = tiny
    on, off = ch.by_seed(after, "train_loss_dropout_on"), ch.by_seed(after, "train_loss")
    assert checks.every(on["dropout 0.5"] / off["dropout 0.5"], low=1.02).holds
    assert not checks.every(on["none"] / off["none"], low=1.02).holds  # on = off
    # every unit at its bound only where there is one
    largest = ch.by_seed(after, "max_unit_norm")
    assert checks.every(largest["max-norm 0.5"] / 0.5, low=0.99, high=1 + 1e-5).holds
    free = checks.every(largest["none again"] / 0.5, low=0.99, high=1 + 1e-5)
    assert not free.holds and free.margin < 0
    # identical arms: the same seeds give the same runs, so no difference at all
    gap = ch.by_seed(after, "gap")
    np.testing.assert_allclose(gap["none"], gap["none again"])
    assert not checks.paired(gap["none"], gap["none again"]).holds
    assert checks.equivalent(
        gap["none"] + 1e-3 * np.arange(3), gap["none again"], margin=0.02
    ).holds
