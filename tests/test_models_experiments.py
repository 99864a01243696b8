import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import data, experiments, models


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n_train=300, n_valid=100, n_test=100, seed=0)


def _layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_build_mlp_batch_norm_placements():
    before = models.build_mlp((8,), 3, depth=2, width=4, batch_norm="before")
    assert _layer_types(before) == [
        "Flatten",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dense",
    ]
    assert before.layers[1].use_bias is False
    after = models.build_mlp((8,), 3, depth=1, width=4, batch_norm="after", dropout=0.2)
    assert _layer_types(after) == [
        "Flatten",
        "Dense",
        "Activation",
        "BatchNormalization",
        "Dropout",
        "Dense",
    ]
    assert after.layers[1].use_bias is True
    with pytest.raises(ValueError, match="unknown batch_norm 'middle'"):
        models.build_mlp((8,), 3, batch_norm="middle")


def test_build_mlp_leaky_relu_is_a_layer_after_dense_and_param_count():
    m = models.build_mlp((28, 28), 10, depth=3, width=100, activation="leaky_relu")
    assert _layer_types(m)[1:3] == ["Dense", "LeakyReLU"]
    assert m.count_params() == 784 * 100 + 100 + 2 * (100 * 100 + 100) + 100 * 10 + 10
    assert models.baseline((28, 28), 10).count_params() == m.count_params()


def test_regularizer_and_constraint_reach_every_dense_layer():
    reg = keras.regularizers.L2(0.01)
    con = keras.constraints.MaxNorm(1.0)
    m = models.build_mlp((4,), 2, depth=2, width=3, kernel_regularizer=reg, kernel_constraint=con)
    dense = [d for d in m.layers if isinstance(d, keras.layers.Dense)]
    assert len(dense) == 3 and all(
        d.kernel_regularizer is reg and d.kernel_constraint is con for d in dense
    )
    assert len([x for x in m.layers if isinstance(x, keras.layers.Dense)]) == 3


def test_run_is_tidy_and_reproducible(digits):
    factory = lambda: models.baseline(digits.input_shape, digits.n_classes, learning_rate=0.05)  # noqa: E731
    stored = {}
    df = experiments.run(
        {"a": factory, "b": factory}, digits, [1, 2], epochs=3, batch_size=64, models=stored
    )
    assert list(df.columns[:3]) == ["config", "seed", "epoch"]
    assert len(df) == 2 * 2 * 3 and set(stored) == {("a", 1), ("a", 2), ("b", 1), ("b", 2)}
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_time", "test_accuracy"} <= set(
        df.columns
    )
    # same factory, same seed: identical numbers (deterministic ops and seeding)
    a = df[df["config"] == "a"].drop(columns=["config", "epoch_time"]).reset_index(drop=True)
    b = df[df["config"] == "b"].drop(columns=["config", "epoch_time"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(df[df.seed == 1]["loss"].to_numpy(), df[df.seed == 2]["loss"].to_numpy())


def test_summaries(digits):
    df = pd.DataFrame(
        {
            "config": ["x"] * 4 + ["y"] * 4,
            "seed": [1, 1, 2, 2] * 2,
            "epoch": [1, 2] * 4,
            "val_accuracy": [0.5, 0.9, 0.6, 0.7, 0.4, 0.8, 0.5, 0.6],
            "val_loss": [1.0, 0.5, 0.9, 0.8, 1.1, 0.6, 1.0, 0.9],
            "epoch_time": [1.0] * 8,
        }
    )
    s = experiments.summarize(df, "val_accuracy")
    assert s.loc["x", "mean"] == pytest.approx(0.8) and s.loc["y", "n"] == 2
    assert experiments.summarize(df, "val_loss", best=True).loc["x", "mean"] == pytest.approx(0.65)
    d = experiments.compare(df, "x", "y")
    assert d.mean == pytest.approx(0.1)
    reach = experiments.epochs_to_reach(df, 0.75)
    assert reach.set_index(["config", "seed"]).loc[("x", 1), "epoch"] == 2
    assert np.isnan(reach.set_index(["config", "seed"]).loc[("x", 2), "epoch"])
    assert "±" in experiments.format_table(s).iloc[0, 0]
    with pytest.raises(KeyError, match="no config 'z'"):
        experiments.compare(df, "x", "z")
    with pytest.raises(KeyError, match="no column 'f1'"):
        experiments.summarize(df, "f1")
    runs = experiments.per_run(df.sample(frac=1, random_state=0))  # rows in any order
    assert runs.loc[("x", 2)].to_dict() == {"best": 0.7, "best epoch": 2, "last": 0.7}
    assert runs.loc[("y", 1)].to_dict() == {"best": 0.8, "best epoch": 2, "last": 0.8}
    assert experiments.per_run(df, "val_loss").loc[("x", 2)].to_dict() == {
        "best": 0.8,
        "best epoch": 2,
        "last": 0.8,
    }
    falls = df.assign(
        val_accuracy=[0.9, np.nan, 0.6, 0.3, np.nan, np.nan, 0.5, 0.6]
    )  # best first, then NaN or lower
    runs = experiments.per_run(falls)
    assert (
        runs.loc[("x", 1), "best"] == 0.9
        and runs.loc[("x", 1), "best epoch"] == 1
        and np.isnan(runs.loc[("x", 1), "last"])
    )
    assert runs.loc[("x", 2)].to_dict() == {"best": 0.6, "best epoch": 1, "last": 0.3}
    assert np.isnan(runs.loc[("y", 1), "best"]) and np.isnan(runs.loc[("y", 1), "best epoch"])
    ordered = df.assign(config=pd.Categorical(df["config"], categories=["y", "x"], ordered=True))
    assert list(experiments.per_run(ordered)["best"].unstack("seed").index) == ["y", "x"]
    with pytest.raises(KeyError, match="no column 'f1'"):
        experiments.per_run(df, "f1")


def test_concat_keeps_the_config_order():
    import pandas as pd

    a = pd.DataFrame({"config": ["b", "b"], "seed": [1, 2]})
    b = pd.DataFrame({"config": ["a"], "seed": [1]})
    df = experiments.concat([a, b])
    assert list(df["config"].cat.categories) == ["b", "a"] and df["config"].cat.ordered
    df = experiments.concat([a, b], order=["a", "b"])
    assert list(df.sort_values("config")["config"]) == ["a", "b", "b"]
