"""Gradient clipping through a real Keras optimizer: what ``clipvalue``, ``clipnorm`` and
``global_clipnorm`` do to a given gradient."""
from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np


def clipped_update(gradients: Sequence[Any], **clip: Any) -> list[np.ndarray]:
    """The step plain SGD (learning rate 1) takes for ``gradients`` with the given clipping.

    ``gradients`` holds one array per variable; ``clip`` is passed to the optimizer
    (``clipvalue=``, ``clipnorm=`` or ``global_clipnorm=``). Variables start at zero, one
    ``apply_gradients`` call is made and ``-(new value)`` is read back: the clipped gradient.
    """
    grads = [np.asarray(g, dtype="float32") for g in gradients]
    variables = [keras.Variable(np.zeros_like(g), name=f"w{i}") for i, g in enumerate(grads)]
    optimizer = keras.optimizers.SGD(learning_rate=1.0, **clip)
    optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], variables))
    return [-np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]


def clipping_table(gradients: Sequence[Any], settings: dict[str, dict[str, Any]]) -> "Any":
    """One row per clipping setting: the clipped gradient of each variable, and the global norm."""
    import pandas as pd

    rows = {}
    for name, clip in settings.items():
        out = clipped_update(gradients, **clip)
        row = {f"variable {i + 1}": np.round(g, 8).tolist() for i, g in enumerate(out)}
        row["global norm"] = float(np.sqrt(sum(float((g.astype("float64") ** 2).sum()) for g in out)))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
