"""Grids of small grey images: one row per label (originals and reconstructions, generated
samples epoch by epoch)."""

from __future__ import annotations

from typing import Mapping

import numpy as np


def image_rows(rows: Mapping[str, np.ndarray], *, title: str | None = None):
    """One row of images per entry of ``rows`` (label -> ``(n, h, w)`` in [0, 1]), the label
    at the row's left; returns the figure."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, style

    style()
    n = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.8, len(rows) * 0.9), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            if c < len(images):
                ax.imshow(images[c], cmap="binary", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[r][0].set_ylabel(label, fontsize=8)
    return finish(fig, title)
