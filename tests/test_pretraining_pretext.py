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
    s = Splits(x, np.arange(50) % 10, x[:5], np.zeros(5, int), x[:7], np.zeros(7, int), tuple("abcdefghij"))
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
        assert [l.units for l in reused if hasattr(l, "units")] == [8, 4]
