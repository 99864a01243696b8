"""Chapter 2's pretraining without labels: the autoencoder, GAN and rotation code of the
chapter (loaded from it), the GAN loop of dnnbook.adversarial, the PCA yardstick and the
linear probe, with negative controls."""

import keras
import numpy as np

from dnnbook import adversarial
from tests import chapter_code

CH = chapter_code.load("02")


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_rotate_labels_match_the_rotation():
    x = np.random.default_rng(0).random((40, 5, 5)).astype(np.float32)
    xr, k = CH.rotate(x, seed=1)
    assert set(k) == {0, 1, 2, 3}
    for i in range(len(x)):
        assert np.array_equal(xr[i], np.rot90(x[i], k[i]))
    assert np.array_equal(CH.rotate(x, 1)[1], k)


def test_pretext_models_share_the_lower_layers_and_can_be_reused():
    shape = (6, 6)
    ae = CH.autoencoder(shape, widths=(8, 4))
    x = np.random.default_rng(0).random((32, *shape)).astype(np.float32)
    assert ae.predict(x, verbose=0).shape == (32, *shape)
    rot = CH.compiled(CH.mlp(shape, 4, widths=(8, 4)))
    generator, discriminator, frozen, combined = CH.gan_models(shape, latent=3, widths=(8, 4))
    samples, log = adversarial.fit_gan(
        generator, discriminator, frozen, combined, x, epochs=2, batch_size=4, round_steps=2
    )
    assert samples.shape == (2, 8, *shape) and len(log) == 2
    assert ((samples >= 0) & (samples <= 1)).all()
    for model in (ae, rot, discriminator):
        clf, reused = CH.reuse_lower(model, 2, [keras.layers.Dense(3, activation="softmax")])
        assert [layer.units for layer in reused if hasattr(layer, "units")] == [8, 4]
        assert CH.features(model, x).shape == (32, 4)


def _squares(n=512, side=6, seed=0):
    """Dark images with one bright 2 × 2 square, always in the top-left quarter."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, side, side), np.float32)
    for i, (r, c) in enumerate(rng.integers(0, 2, size=(n, 2))):
        x[i, r : r + 2, c : c + 2] = 1.0
    return x


def test_gan_frozen_copy_is_refreshed_from_the_discriminator():
    x = _squares(64)
    generator, discriminator, frozen, combined = CH.gan_models(x.shape[1:], 3, (8, 4))
    start = discriminator.get_weights()
    adversarial.fit_gan(
        generator, discriminator, frozen, combined, x, epochs=1, batch_size=8, round_steps=2
    )
    trained = discriminator.get_weights()
    assert not _same(start, trained)  # the discriminator trained
    # after the last round the generator trained through the frozen copy, which must hold
    # the discriminator's weights of that round (refreshed, and not changed by that step)
    assert _same(trained, frozen.get_weights())


def test_gan_samples_move_towards_the_data():
    """The generator learns something measurable: its samples' mean image gets closer to the
    data's (where the bright squares are) than the untrained generator's."""
    x = _squares()
    keras.utils.set_random_seed(0)
    models = CH.gan_models(x.shape[1:], latent=4, widths=(32, 16), learning_rate=2e-3)
    z = np.random.default_rng(1).normal(size=(256, 4)).astype(np.float32)
    target = x.mean(axis=0)
    before = float(np.abs(adversarial.sample(models[0], z).mean(axis=0) - target).mean())
    adversarial.fit_gan(*models, x, epochs=8, batch_size=32, round_steps=4, seed=0)
    after = float(np.abs(adversarial.sample(models[0], z).mean(axis=0) - target).mean())
    assert after < 0.5 * before, (before, after)


def test_pca_mse_is_zero_with_every_component_and_falls_with_more():
    rng = np.random.default_rng(0)
    x = (rng.random((200, 3)) @ rng.random((3, 16))).reshape(200, 4, 4)  # rank 3
    errors = [CH.pca_mse(x[:150], x[150:], k) for k in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-10


def test_probe_reads_a_linear_code_and_fails_on_noise():
    """The probe scores near 1 on features that hold the label linearly and near chance
    (negative control) on features independent of it."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=600)
    code = np.eye(4)[y] + 0.1 * rng.normal(size=(600, 4))
    noise = rng.normal(size=(600, 8))
    assert CH.probe_accuracy(code[:400], y[:400], code[400:], y[400:]) > 0.95
    assert CH.probe_accuracy(noise[:400], y[:400], noise[400:], y[400:]) < 0.4
