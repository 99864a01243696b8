import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from dnnbook import autodiff, runtime
from tests.conftest import ROOT


def test_setup_prints_one_environment_line(capsys):
    runtime.setup(7, "quick")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    line = out[0]
    assert (
        line.startswith(f"backend {keras.backend.backend()} ")
        and f"keras {keras.__version__}" in line
    )
    assert "profile quick" in line and "seed 7" in line and ("CPU" in line or "GPU" in line)


def test_seed_everything_repeats_draws():
    runtime.seed_everything(3)
    a = np.random.rand(3)
    runtime.seed_everything(3)
    np.testing.assert_array_equal(a, np.random.rand(3))


def test_gradients_of_a_linear_softmax_match_hand_computation():
    # one Dense layer, softmax cross-entropy: dL/dW = x^T (p - onehot) / n
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    w = np.array([[0.1, -0.2], [0.3, 0.0], [-0.5, 0.4]], "float32")
    b = np.array([0.05, -0.05], "float32")
    model.set_weights([w, b])
    x = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 2.0]], "float32")
    y = np.array([0, 1])
    logits = x @ w + b
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    onehot = np.eye(2)[y]
    g = autodiff.gradients(model, x, y)
    kernel, bias = [g[k] for k in g]
    np.testing.assert_allclose(kernel, x.T @ (p - onehot) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, (p - onehot).mean(0), rtol=1e-5, atol=1e-6)


AGREEMENT_SCRIPT = r"""
import json, sys
import numpy as np
import dnnbook
from dnnbook import models
from dnnbook import autodiff
import keras
rng = np.random.default_rng(0)
model = models.build_mlp((6,), 3, depth=4, width=5, activation="tanh", batch_norm="after")
model.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 for w in model.get_weights()])
x = rng.normal(size=(16, 6)).astype("float32"); y = rng.integers(0, 3, 16)
g = autodiff.gradients(model, x, y, training=True)
print(json.dumps([float(np.linalg.norm(v)) for v in g.values()]))
"""


def _available(name):
    mod = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[name]
    return subprocess.call([sys.executable, "-c", f"import {mod}"], stderr=subprocess.DEVNULL) == 0


def test_gradient_norms_agree_across_backends():
    """Per-layer gradient norms of one model on one batch agree on TensorFlow, JAX and PyTorch."""
    if keras.backend.backend() != "tensorflow":  # it starts all three itself: once is enough
        pytest.skip("runs in the TensorFlow session (it starts all three backends itself)")
    missing = [b for b in runtime.BACKENDS if not _available(b)]
    if missing and os.environ.get("DNNBOOK_REQUIRE_ALL_BACKENDS") == "1":
        pytest.fail(f"backends not installed: {missing}")
    if missing:
        pytest.skip(f"backends not installed: {missing} (make test installs all three)")
    norms = {}
    for name in runtime.BACKENDS:
        env = {**os.environ, "KERAS_BACKEND": name, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run(
            [sys.executable, "-c", AGREEMENT_SCRIPT],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        norms[name] = np.array(json.loads(out.strip().splitlines()[-1]))
    assert (
        len(norms["tensorflow"]) == 4 * 4 + 2
    )  # 4 × (kernel, bias, gamma, beta) + output kernel, bias
    for name in ("jax", "torch"):
        np.testing.assert_allclose(
            norms[name],
            norms["tensorflow"],
            rtol=1e-4,
            atol=1e-6,
            err_msg=f"{name} disagrees with tensorflow",
        )


def test_layer_pass_equals_the_model_in_inference_mode():
    # layer_pass calls each built layer's ``call`` directly (training=False where it takes one):
    # dropout must be off and batch norm must use its moving statistics, as in model(x)
    runtime.seed_everything(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(6, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(8),
            keras.layers.LeakyReLU(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).normal(size=(16, 6, 2)).astype("float32")
    model.layers[2].moving_mean.assign(np.full(8, 0.3, "float32"))  # BN: not the batch's statistics
    out, seen = autodiff.layer_pass(
        model, keras.ops.convert_to_tensor(x), (keras.layers.Activation, keras.layers.LeakyReLU)
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out),
        keras.ops.convert_to_numpy(model(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert len(seen) == 2
    inner = keras.Model(
        model.inputs, model.layers[2].output
    )  # BN's output, fed to the first activation
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(seen[0][0]),
        keras.ops.convert_to_numpy(inner(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_loop_steps_switch_takes_1_0_or_nothing():
    from dnnbook.engine import backend

    assert backend.loop_steps_setting("1") is True
    assert backend.loop_steps_setting("0") is False
    assert backend.loop_steps_setting("") is None
    with pytest.raises(ValueError, match=r"must be 1 \(on\), 0 \(off\) or unset.*'yes'"):
        backend.loop_steps_setting("yes")


def test_determinism_switch_off_is_said_on_the_environment_line(monkeypatch, capsys):
    monkeypatch.setenv(runtime.DETERMINISM_ENV, "0")
    assert not runtime.determinism_requested()
    runtime.setup(3)
    assert "| nondeterministic ops (DNNBOOK_DETERMINISTIC=0) | seed 3" in capsys.readouterr().out
    monkeypatch.setenv(runtime.DETERMINISM_ENV, "1")
    assert runtime.determinism_requested()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's op determinism")
def test_an_op_without_a_deterministic_gpu_kernel_turns_determinism_off_with_a_note(monkeypatch):
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    def probe():
        raise tf.errors.UnimplementedError(
            None,
            None,
            "A deterministic GPU implementation of ResizeNearestNeighborGrad is not currently available.",
        )

    monkeypatch.setattr(runtime, "gpu_names", lambda: ["Fake GPU"])
    try:
        note = runtime._tf_determinism(probe)
        assert note.startswith("deterministic ops OFF") and "ResizeNearestNeighborGrad" in note
        assert not tf_config.is_op_determinism_enabled()
        assert runtime._tf_determinism(lambda: None) == "deterministic ops"
        assert tf_config.is_op_determinism_enabled()
    finally:
        tf.config.experimental.enable_op_determinism()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's op determinism")
def test_the_probe_runs_under_determinism_and_leaves_no_trace():
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    keras.backend.clear_session()

    def weights():
        runtime.seed_everything(5)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        return model.layers[0].name, model.get_weights()

    name, before = weights()
    runtime._tf_probe()
    name_after, after = weights()
    assert name_after == name == "dense"
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def _last_words(code: str, n: int = 1, **env: str) -> list[str]:
    """The last ``n`` words ``code`` prints in a fresh Python, without this process's JAX
    settings and DNNBOOK_JAX_CACHE, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    base.pop("DNNBOOK_JAX_CACHE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env}
    )
    return out.stdout.split()[-n:]


def test_jax_keeps_compiled_programs_on_disk_unless_told_not_to(tmp_path):
    """Under JAX, importing dnnbook points JAX's persistent compilation cache at a folder (one
    set beforehand is kept); DNNBOOK_JAX_CACHE=0 leaves JAX alone; other backends too."""
    code = "import os, dnnbook; print(os.environ.get('JAX_COMPILATION_CACHE_DIR'))"

    def run(**env):
        return _last_words(code, **env)[0]

    home = str(tmp_path)
    assert run(KERAS_BACKEND="jax", XDG_CACHE_HOME=home) == str(tmp_path / "dnnbook" / "jax")
    assert run(KERAS_BACKEND="jax", JAX_COMPILATION_CACHE_DIR="/x") == "/x"
    assert run(KERAS_BACKEND="jax", DNNBOOK_JAX_CACHE="0") == "None"
    assert run(KERAS_BACKEND="torch") == "None"


def test_jax_cache_settings_hold_when_keras_is_imported_first(tmp_path):
    """JAX reads its settings when imported; ``import keras`` before ``import dnnbook`` imports
    it first, and dnnbook still passes on its cache folder and its 0.1 s threshold."""
    if keras.backend.backend() != "jax":
        pytest.skip("runs in the JAX session")
    script = (
        "import keras, dnnbook, jax; c = jax.config; "
        "print(c.jax_persistent_cache_min_compile_time_secs, c.jax_compilation_cache_dir)"
    )
    out = _last_words(script, 2, KERAS_BACKEND="jax", JAX_COMPILATION_CACHE_DIR=str(tmp_path))
    assert out == ["0.1", str(tmp_path)]
