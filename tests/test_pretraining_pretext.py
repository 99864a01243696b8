"""Unit tests of dnnbook.pretraining: rotations, few-label subsets and the pretext models."""

import numpy as np
import pytest

from dnnbook import pretraining
from dnnbook.data import Splits


def test_rotate_labels_match_the_rotation():
    x = np.random.default_rng(0).random((40, 5, 5)).astype(np.float32)
    xr, k = pretraining.rotate(x, seed=1)
    assert set(k) == {0, 1, 2, 3}
    for i in range(len(x)):
        assert np.array_equal(xr[i], np.rot90(x[i], k[i]))
    assert np.array_equal(pretraining.rotate(x, 1)[1], k)


def test_few_labels_keeps_n_training_images_and_other_splits():
    x = np.arange(50, dtype=np.float32).reshape(50, 1, 1)
    s = Splits(
        x, np.arange(50) % 10, x[:5], np.zeros(5, int), x[:7], np.zeros(7, int), tuple("abcdefghij")
    )
    f = pretraining.few_labels(s, 12, seed=0)
    assert len(f.x_train) == 12 and len(set(f.x_train.ravel())) == 12
    assert np.array_equal(f.y_train, f.x_train.ravel().astype(int) % 10)
    assert f.x_test is s.x_test and f.x_valid is s.x_valid
    with pytest.raises(ValueError):
        pretraining.few_labels(s, 51, seed=0)


def test_pretext_models_share_the_body_and_can_be_reused():
    shape = (6, 6)
    ae = pretraining.autoencoder(shape, widths=(8, 4))
    x = np.random.default_rng(0).random((32, *shape)).astype(np.float32)
    assert ae.predict(x, verbose=0).shape == (32, *shape)
    rot = pretraining.rotation_model(shape, widths=(8, 4))
    gan = pretraining.GAN(shape, widths=(8, 4), latent=3)
    samples, log = gan.fit(x, epochs=2, batch_size=4, round_steps=2)
    assert samples.shape == (2, 8, *shape) and len(log) == 2
    assert ((samples >= 0) & (samples <= 1)).all()
    for model in (ae, rot, gan.discriminator):
        clf, reused = pretraining.reuse_layers(model, 2, [])
        assert [layer.units for layer in reused if hasattr(layer, "units")] == [8, 4]


def _squares(n=512, side=6, seed=0):
    """Dark images with one bright 2 × 2 square, always in the top-left quarter."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, side, side), np.float32)
    for i, (r, c) in enumerate(rng.integers(0, 2, size=(n, 2))):
        x[i, r : r + 2, c : c + 2] = 1.0
    return x


def test_gan_frozen_copy_is_refreshed_from_the_discriminator():
    x = _squares(64)
    gan = pretraining.GAN(x.shape[1:], widths=(8, 4), latent=3)
    start = gan.discriminator.get_weights()
    gan.fit(x, epochs=1, batch_size=8, round_steps=2)
    trained = gan.discriminator.get_weights()
    assert not pretraining.weights_equal(start, trained)  # the discriminator trained
    # after the last round the generator trained through the frozen copy, which must hold
    # the discriminator's weights of that round (refreshed, and not changed by that step)
    assert pretraining.weights_equal(trained, gan._frozen.get_weights())


def test_gan_samples_move_towards_the_data():
    """The generator learns something measurable: its samples' mean image gets closer to the
    data's (where the bright squares are) than the untrained generator's."""
    x = _squares()
    gan = pretraining.GAN(x.shape[1:], widths=(32, 16), latent=4, learning_rate=2e-3)
    z = np.random.default_rng(1).normal(size=(256, 4)).astype(np.float32)
    target = x.mean(axis=0)
    before = float(np.abs(gan.sample(z).mean(axis=0) - target).mean())
    gan.fit(x, epochs=8, batch_size=32, round_steps=4, seed=0)
    after = float(np.abs(gan.sample(z).mean(axis=0) - target).mean())
    assert after < 0.5 * before, (before, after)
