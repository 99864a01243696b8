"""dnnbook: the helper package behind the executable book on training deep networks.

Importing it quiets backend log noise before any backend is imported and, for JAX, asks XLA
for deterministic GPU ops (``$DNNBOOK_JAX_DETERMINISTIC=0`` or ``$DNNBOOK_DETERMINISTIC=0``
leaves XLA alone) and keeps JAX's compiled programs on disk (below). Submodules are
imported lazily (``dnnbook.profiles``, ``dnnbook.data``...), so ``import dnnbook`` is cheap.

Layers: plumbing only, since the tricks themselves are Keras code in the chapters: the core
(``data``, ``experiments``, ``checks``, ``claims``, ``stats``, ``plots``, ``profiles``,
``runtime``, ``models``); small modules named for what they do (``probes``, ``subsets``,
``finetune``, ``surfaces``, ``calibration``, ...); the training engine (``dnnbook.engine``:
seeds in lockstep); the book pipeline (``dnnbook.book``: execute, validate, build).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
JAX_DETERMINISM_FLAG = "--xla_gpu_deterministic_ops=true"
if (
    os.environ["KERAS_BACKEND"] == "jax"
    and os.environ.get("DNNBOOK_JAX_DETERMINISTIC", os.environ.get("DNNBOOK_DETERMINISTIC", "1"))
    != "0"
    and "xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", "")
):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + JAX_DETERMINISM_FLAG).strip()

# JAX keeps its compiled programs on disk: a model compiled again (the next configuration of the
# same shape, the chapter that nbval executes a second time) loads the same program instead of
# compiling it. $JAX_COMPILATION_CACHE_DIR moves the cache; $DNNBOOK_JAX_CACHE=0 turns it off.
if os.environ["KERAS_BACKEND"] == "jax" and os.environ.get("DNNBOOK_JAX_CACHE", "1") != "0":
    os.environ.setdefault(
        "JAX_COMPILATION_CACHE_DIR",
        os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dnnbook", "jax"
        ),
    )
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
    if "jax" in sys.modules:  # imported first (``import keras`` does): JAX read its settings
        import jax  # already, so pass them on; the cache itself opens at the first compile

        jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
        jax.config.update(
            "jax_persistent_cache_min_compile_time_secs",
            float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
        )

__version__ = "0.1.0"


def __getattr__(name: str):
    """``dnnbook.NAME`` imports the submodule ``dnnbook/NAME.py`` (or a package) on first use."""
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"dnnbook.{name}") is not None:
        return importlib.import_module(f"dnnbook.{name}")
    raise AttributeError(f"module 'dnnbook' has no attribute {name!r}")
