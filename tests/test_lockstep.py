"""Seeds in lockstep train the same models as seed after seed."""
import keras
import numpy as np
import pytest

from dnnbook import data, experiments, lockstep, models


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n_train=400, n_valid=100, n_test=100, seed=0)


def _factory(d, **kw):
    def make():
        m = models.build_mlp(d.input_shape, d.n_classes, depth=2, width=32, **kw)
        return models.compile_classifier(m, keras.optimizers.SGD(learning_rate=0.05, momentum=0.9))
    return make


def test_lockstep_replicas_equal_solo_runs(digits):
    seeds = [3, 4, 5]
    make = _factory(digits, batch_norm="after", dropout=0.2)
    kept_l, kept_s = {}, {}
    lock = experiments.run({"m": make}, digits, seeds, epochs=3, batch_size=32, models=kept_l)
    solo = experiments.run({"m": make}, digits, seeds, epochs=3, batch_size=32, models=kept_s, lockstep=False)
    # on PyTorch dropout masks come from one shared random stream: that config runs seed after seed
    together = 1 if keras.backend.backend() == "torch" else 3
    assert (lock["lockstep"] == together).all() and (solo["lockstep"] == 1).all()
    cols = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]
    np.testing.assert_allclose(lock[cols].to_numpy(), solo[cols].to_numpy(), rtol=1e-5, atol=1e-6)
    for seed in seeds:
        for a, b in zip(kept_l[("m", seed)].get_weights(), kept_s[("m", seed)].get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the replicas really differ from each other (independent seeds)
    assert not np.allclose(kept_l[("m", 3)].get_weights()[0], kept_l[("m", 4)].get_weights()[0])
    assert kept_l[("m", 3)].name == "mlp"


def test_coupled_configs_fall_back_to_seed_after_seed(digits, capsys):
    def clipped():
        m = models.build_mlp(digits.input_shape, digits.n_classes, depth=1, width=8)
        return models.compile_classifier(m, keras.optimizers.SGD(0.01, global_clipnorm=1.0))

    assert "global_clipnorm" in lockstep.why_not(clipped())
    regularized = _factory(digits, kernel_regularizer=keras.regularizers.L2(1e-3))()
    assert "regularization" in lockstep.why_not(regularized)
    assert lockstep.why_not(_factory(digits)()) is None
    assert lockstep.why_not(_factory(digits, batch_norm="before")()) is None
    df = experiments.run({"clipped": clipped}, digits, [1, 2], epochs=1)
    assert (df["lockstep"] == 1).all()
    assert "seed after seed (global_clipnorm" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot train in lockstep: global_clipnorm"):
        lockstep.fit([clipped(), clipped()], digits, epochs=1, batch_size=32, order_seed=0)
