"""The training loop of a GAN built from plain Keras models, with ``fit`` calls only (no
backend code): the discriminator trains on real and generated images; the generator trains
through ``combined`` (generator, then a frozen copy of the discriminator), whose copy takes
the discriminator's weights before every generator round."""

from __future__ import annotations

import keras
import numpy as np

from dnnbook.runtime import seed_everything


def sample(generator: keras.Model, z: np.ndarray) -> np.ndarray:
    """Images generated from the noise ``z`` (a direct call: no ``predict`` overhead)."""
    return np.asarray(keras.ops.convert_to_numpy(generator(z, training=False)))


def fit_gan(
    generator: keras.Model,
    discriminator: keras.Model,
    frozen: keras.Model,
    combined: keras.Model,
    x: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 64,
    round_steps: int = 10,
    seed: int = 0,
    n_samples: int = 8,
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Train in rounds: ``round_steps`` discriminator steps (real images labelled 0.9, fakes
    0), then as many generator steps (fakes labelled 1). Returns the images generated from
    one fixed noise batch after each epoch, ``(epochs, n_samples, ...)``, and the mean losses
    per epoch."""
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    latent = int(generator.input_shape[-1])
    z_fixed = rng.normal(size=(n_samples, latent)).astype(np.float32)
    chunk = batch_size * round_steps
    if chunk > len(x):
        raise ValueError(f"a round needs {chunk} images, only {len(x)} given")
    y_d = np.concatenate([np.full((chunk, 1), 0.9, np.float32), np.zeros((chunk, 1), np.float32)])
    y_g = np.ones((chunk, 1), np.float32)
    samples, log = [], []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        d_losses, g_losses = [], []
        for start in range(0, len(x) - chunk + 1, chunk):
            fake = sample(generator, rng.normal(size=(chunk, latent)).astype(np.float32))
            x_d = np.concatenate([x[order[start : start + chunk]], fake])
            d_losses += discriminator.fit(
                x_d, y_d, batch_size=2 * batch_size, epochs=1, verbose=0
            ).history["loss"]
            frozen.set_weights(discriminator.get_weights())
            z = rng.normal(size=(chunk, latent)).astype(np.float32)
            g_losses += combined.fit(z, y_g, batch_size=batch_size, epochs=1, verbose=0).history[
                "loss"
            ]
        samples.append(sample(generator, z_fixed))
        log.append({"d_loss": float(np.mean(d_losses)), "g_loss": float(np.mean(g_losses))})
    return np.stack(samples), log
