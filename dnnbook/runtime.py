"""Seeding, determinism, log silencing and the one-line environment report."""

from __future__ import annotations

import os
import platform
import random
import sys
import time

import numpy as np

_STARTED: list[float] = []

# the Keras backends the book runs on, and how the book names them
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
BACKENDS = tuple(BACKEND_NAMES)


def backend_name() -> str:
    """The Keras backend in use (``KERAS_BACKEND``, default ``tensorflow``)."""
    import keras

    return keras.backend.backend()


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def gpu_names() -> list[str]:
    """Names of the GPUs the current backend can see (empty on a CPU-only machine).

    Asks the backend already selected, and does not import a second framework.
    """
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            devices = tf.config.list_physical_devices("GPU")
            names = []
            for d in devices:
                details = tf.config.experimental.get_device_details(d)
                names.append(details.get("device_name", d.name))
            return names
        if backend == "jax":
            import jax

            return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a broken GPU driver means: no usable GPU
        return []
    return []


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend from one Python int."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    import keras

    keras.utils.set_random_seed(seed)


# ``DNNBOOK_DETERMINISTIC=0`` runs without deterministic ops (see docs/determinism.md)
DETERMINISM_ENV = "DNNBOOK_DETERMINISTIC"


def determinism_requested() -> bool:
    """Whether deterministic ops are wanted: yes unless ``$DNNBOOK_DETERMINISTIC`` is 0/false/off."""
    return os.environ.get(DETERMINISM_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _tf_probe() -> None:
    """Train and evaluate a tiny model made of the ops the chapters train with (resizing,
    Dense, BatchNormalization, dropout, softmax, sparse cross-entropy, Adam with clipping)."""
    import keras

    x = np.linspace(0, 1, 8 * 4 * 4, dtype="float32").reshape(8, 4, 4)
    y = np.arange(8) % 3
    model = keras.Sequential(
        [
            keras.Input((4, 4)),
            keras.layers.Reshape((4, 4, 1)),
            keras.layers.Resizing(8, 8, interpolation="bilinear"),
            keras.layers.Flatten(),
            keras.layers.Dense(8, kernel_regularizer=keras.regularizers.l1_l2(1e-4, 1e-4)),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    try:
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=(x, y))
        model.evaluate(x, y, verbose=0)
    finally:
        keras.backend.clear_session()  # layer names and the seed state as if it never ran


def _tf_determinism(probe=_tf_probe) -> str:
    """Enable TensorFlow's op determinism. On a GPU, try the ops the chapters use first: where
    this TensorFlow has no deterministic GPU kernel for one of them (it raises
    ``UnimplementedError`` when it runs), turn determinism off again and say so instead of
    letting the chapter crash."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    if not gpu_names():
        return "deterministic ops"
    try:
        probe()
    except tf.errors.UnimplementedError as exc:
        from tensorflow.python.framework import config as tf_config  # no public "off" switch

        tf_config.disable_op_determinism()
        reason = " ".join(str(exc.message if hasattr(exc, "message") else exc).split())[:160]
        return (
            f"deterministic ops OFF: TensorFlow {tf.__version__} has no deterministic GPU kernel "
            f"for an op the book uses ({reason}); results may differ slightly between runs"
        )
    return "deterministic ops"


def enable_determinism() -> str:
    """Turn on deterministic ops where the backend has them (unless ``$DNNBOOK_DETERMINISTIC``
    is 0); return a short note for the environment line."""
    if not determinism_requested():
        return f"nondeterministic ops ({DETERMINISM_ENV}=0)"
    backend = backend_name()
    if backend == "tensorflow":
        return _tf_determinism()
    if backend == "torch":
        import torch

        # an op without a deterministic kernel warns instead of raising
        torch.use_deterministic_algorithms(True, warn_only=True)
        return "deterministic algorithms"
    if backend == "jax":
        if "xla_gpu_deterministic_ops=true" in os.environ.get("XLA_FLAGS", ""):
            return "deterministic ops"
        return "deterministic on CPU; GPU reductions may vary"
    return "no determinism switch"


def quiet() -> None:
    """Silence backend log noise and Keras progress bars."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import logging
    import warnings

    import keras

    keras.utils.disable_interactive_logging()
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*input_shape.*input_dim.*")
    warnings.filterwarnings("ignore", message=".*Do not pass an `input_shape`.*")
    warnings.filterwarnings(
        "ignore", message=".*Explicitly requested dtype int64.*"
    )  # JAX ≥ 0.11, 32-bit mode
    if backend_name() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")


def environment_line(profile: str | None = None) -> str:
    """One line: backend and versions, device (GPU name or CPU cores), profile."""
    import keras

    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as fw
    elif backend == "jax":
        import jax as fw
    else:
        import torch as fw
    gpus = gpu_names()
    device = (
        f"GPU {gpus[0]}" + (f" ×{len(gpus)}" if len(gpus) > 1 else "")
        if gpus
        else f"CPU {os.cpu_count()} cores"
    )
    parts = [
        f"backend {backend} {fw.__version__}",
        f"keras {keras.__version__}",
        f"python {platform.python_version()}",
        device,
    ]
    if profile:
        parts.append(f"profile {profile}")
    from dnnbook.engine.backend import default_steps_per_execution, loops_steps

    if loops_steps():
        parts.append(f"lockstep steps looped ({default_steps_per_execution()} per call)")
    if in_colab():
        parts.append("colab")
    return " | ".join(parts)


def setup(seed: int, profile: str | None = None) -> None:
    """Seed everything, enable determinism, quiet logs and print the environment line
    (backend, versions, device, determinism, profile, seed)."""
    _STARTED[:] = [time.perf_counter()]
    quiet()
    note = enable_determinism()  # before seeding: on a GPU it may train a tiny probe model
    seed_everything(seed)
    print(environment_line(profile) + f" | {note} | seed {int(seed)}", flush=True)


def elapsed() -> float:
    """Seconds since :func:`setup` was called (0 if it was not)."""
    return time.perf_counter() - _STARTED[0] if _STARTED else 0.0


def report_time(budget_s: float | None = None) -> None:
    """Print how long the chapter took, against its budget if given."""
    secs = elapsed()
    line = f"chapter executed in {secs:.0f} s"
    if budget_s is not None:
        verdict = "within" if secs <= budget_s else "OVER"
        line += f" ({verdict} its {budget_s:.0f} s budget for this profile on this machine)"
    print(line, flush=True)
