"""Pretraining without labels: an autoencoder, a small GAN and a rotation task.

Each builder returns a model whose lower layers are the same *body* (Flatten and two Dense
ReLU layers) as the few-label classifier, so :func:`dnnbook.transfer.reuse_layers` can move
them under a new softmax output.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from dnnbook.data import Splits
from dnnbook.runtime import seed_everything


def body_layers(widths: Sequence[int] = (256, 128)) -> list[keras.layers.Layer]:
    """Flatten and one Dense(ReLU, He) layer per width: the body every model here shares."""
    return [keras.layers.Flatten()] + [keras.layers.Dense(w, activation="relu",
                                                          kernel_initializer="he_normal")
                                       for w in widths]


def classifier(input_shape: Sequence[int], n_classes: int, widths: Sequence[int] = (256, 128)) -> keras.Model:
    """The few-label classifier from scratch: the body and a softmax output (uncompiled)."""
    return keras.Sequential([keras.Input(shape=tuple(input_shape)), *body_layers(widths),
                             keras.layers.Dense(n_classes, activation="softmax")], name="classifier")


def autoencoder(input_shape: Sequence[int], widths: Sequence[int] = (256, 128)) -> keras.Model:
    """An MLP autoencoder: the body as encoder, its mirror as decoder, sigmoid pixels out.

    The encoder's last layer is the body's last Dense layer; the model is compiled with
    Adam and binary cross-entropy per pixel.
    """
    n_pixels = int(np.prod(input_shape))
    decoder = [keras.layers.Dense(w, activation="relu", kernel_initializer="he_normal")
               for w in list(widths)[-2::-1]]
    model = keras.Sequential([keras.Input(shape=tuple(input_shape)), *body_layers(widths), *decoder,
                              keras.layers.Dense(n_pixels, activation="sigmoid"),
                              keras.layers.Reshape(tuple(input_shape))], name="autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def rotate(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each image rotated by a random multiple of 90°; returns the images and k in 0..3.

    The labels cost nothing: they are made by the rotation itself.
    """
    k = np.random.default_rng(seed).integers(0, 4, size=len(x))
    out = np.empty_like(x)
    for r in range(4):
        out[k == r] = np.rot90(x[k == r], r, axes=(1, 2))
    return out, k.astype(np.int64)


def rotation_model(input_shape: Sequence[int], widths: Sequence[int] = (256, 128)) -> keras.Model:
    """The body and a 4-way softmax that predicts the rotation (compiled, Adam)."""
    model = classifier(input_shape, 4, widths)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class GAN:
    """A small MLP GAN whose discriminator has the body as its lower layers.

    Trained with ``train_on_batch`` only (no backend code): the discriminator is compiled on
    its own; the generator trains through a FROZEN copy of the discriminator inside
    ``combined``, whose weights are refreshed from the discriminator after every step.
    """

    def __init__(self, input_shape: Sequence[int], widths: Sequence[int] = (256, 128),
                 latent: int = 32, learning_rate: float = 2e-4) -> None:
        self.latent, self.shape = latent, tuple(input_shape)
        n_pixels = int(np.prod(input_shape))
        self.generator = keras.Sequential([
            keras.Input(shape=(latent,)),
            keras.layers.Dense(128, activation="relu"), keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(n_pixels, activation="sigmoid"), keras.layers.Reshape(self.shape)],
            name="generator")
        self.discriminator = self._critic(widths, "discriminator")
        self.discriminator.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
                                   loss="binary_crossentropy")
        self._frozen = self._critic(widths, "frozen_discriminator")
        self._frozen.trainable = False
        self.combined = keras.Sequential([keras.Input(shape=(latent,)), self.generator, self._frozen])
        self.combined.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
                              loss="binary_crossentropy")

    def _critic(self, widths: Sequence[int], name: str) -> keras.Model:
        return keras.Sequential([keras.Input(shape=self.shape), *body_layers(widths),
                                 keras.layers.Dense(1, activation="sigmoid")], name=name)

    def sample(self, z: np.ndarray) -> np.ndarray:
        """Images generated from the noise ``z`` (a direct call: no ``predict`` overhead)."""
        return np.asarray(keras.ops.convert_to_numpy(self.generator(z, training=False)))

    def fit(self, x: np.ndarray, *, epochs: int, batch_size: int = 64, round_steps: int = 10,
            seed: int = 0, n_samples: int = 8) -> tuple[np.ndarray, list[dict[str, float]]]:
        """Train in rounds of ``round_steps`` discriminator steps then as many generator steps.

        Returns samples of one fixed noise batch after each epoch ``(epochs, n, h, w)`` and the
        mean losses per epoch.
        """
        seed_everything(seed)
        rng = np.random.default_rng(seed)
        z_fixed = rng.normal(size=(n_samples, self.latent)).astype(np.float32)
        chunk = batch_size * round_steps
        if chunk > len(x):
            raise ValueError(f"a round needs {chunk} images, only {len(x)} given")
        y_d = np.concatenate([np.full((chunk, 1), 0.9, np.float32), np.zeros((chunk, 1), np.float32)])
        samples, log = [], []
        for _ in range(epochs):
            order = rng.permutation(len(x))
            d_losses, g_losses = [], []
            for start in range(0, len(x) - chunk + 1, chunk):
                fake = self.sample(rng.normal(size=(chunk, self.latent)).astype(np.float32))
                x_d = np.concatenate([x[order[start:start + chunk]], fake])
                d_losses += self.discriminator.fit(x_d, y_d, batch_size=2 * batch_size, epochs=1,
                                                   verbose=0).history["loss"]
                self._frozen.set_weights(self.discriminator.get_weights())
                z = rng.normal(size=(chunk, self.latent)).astype(np.float32)
                g_losses += self.combined.fit(z, np.ones((chunk, 1), np.float32), batch_size=batch_size,
                                              epochs=1, verbose=0).history["loss"]
            samples.append(self.sample(z_fixed))
            log.append({"d_loss": float(np.mean(d_losses)), "g_loss": float(np.mean(g_losses))})
        return np.stack(samples), log


def few_labels(data: Splits, n_labels: int, seed: int) -> Splits:
    """``data`` with only ``n_labels`` training images (random, by ``seed``) kept labelled."""
    if n_labels > len(data.x_train):
        raise ValueError(f"n_labels={n_labels} exceeds the {len(data.x_train)} training images")
    pick = np.sort(np.random.default_rng(seed).choice(len(data.x_train), n_labels, replace=False))
    return Splits(data.x_train[pick], data.y_train[pick], data.x_valid, data.y_valid,
                  data.x_test, data.y_test, data.class_names)


def sample_rows(samples: np.ndarray, *, title: str | None = None, every: int = 1):
    """Generated images, one row per epoch (every ``every``-th); returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import style

    style()
    rows = list(range(every - 1, len(samples), every))
    if rows[-1] != len(samples) - 1:
        rows.append(len(samples) - 1)
    n = samples.shape[1]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.8, len(rows) * 0.85), squeeze=False)
    for r, epoch in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(samples[epoch, c], cmap="binary", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False), [sp.set_visible(False) for sp in ax.spines.values()]
            if c == 0:
                ax.set_ylabel(f"epoch {epoch + 1}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def reconstructions(model: keras.Model, x: np.ndarray, n: int = 8, *, title: str | None = None):
    """Originals (top row) and the autoencoder's reconstructions (bottom row); returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import style

    style()
    recon = np.asarray(model.predict(x[:n], verbose=0))
    fig, axes = plt.subplots(2, n, figsize=(n * 0.8, 2.0))
    for c in range(n):
        for r, img in enumerate((x[c], recon[c])):
            axes[r][c].imshow(img, cmap="binary", vmin=0, vmax=1)
            axes[r][c].set_xticks([]), axes[r][c].set_yticks([])
            axes[r][c].grid(False), [sp.set_visible(False) for sp in axes[r][c].spines.values()]
    axes[0][0].set_ylabel("original", fontsize=8)
    axes[1][0].set_ylabel("rebuilt", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def reconstruction_mse(model: keras.Model, x: np.ndarray, x_reference: np.ndarray) -> tuple[float, float]:
    """Mean squared pixel error of the autoencoder on ``x``, and of the mean image of
    ``x_reference`` (the best constant guess) on ``x``."""
    recon = np.asarray(model.predict(x, verbose=0, batch_size=512))
    mean_image = x_reference.mean(axis=0, keepdims=True)
    return float(((recon - x) ** 2).mean()), float(((mean_image - x) ** 2).mean())


def strategy_configs(pretrained: dict[str, keras.Model], input_shape: Sequence[int], n_classes: int):
    """Few-label classifiers: from scratch, and one per pretrained model (its body reused,
    a new softmax output on top). Same architecture everywhere; only the start differs."""
    from dnnbook.transfer import reuse_layers

    def on(model: keras.Model):
        return lambda s: lambda: reuse_layers(model, 2, [keras.layers.Dense(n_classes, activation="softmax")])

    configs = {"from scratch": lambda s: lambda: (classifier(input_shape, n_classes), [])}
    configs.update({name: on(model) for name, model in pretrained.items()})
    return configs
