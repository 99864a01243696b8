"""benchmarks/textbook_optimizers.py: the table beside the textbook's published runs."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
textbook = pytest.importorskip("textbook_optimizers")


def _summary(mean, lo, hi):
    return dict(mean=mean, std=0.01, low=mean - 0.01, high=mean + 0.01, min=lo, max=hi)


def test_table_says_whether_the_published_run_lies_in_the_seeds_range():
    rows = textbook.table(
        {
            "SGD": _summary(0.80, 0.79, 0.81),
            "Adam": _summary(0.87, 0.86, 0.875),
            "Nadam": _summary(0.87, 0.86, 0.872),
        },
        {"Adam": 0.8696, "Nadam": 0.8740},
    )
    assert rows[2].startswith("| SGD | — |") and rows[2].endswith("| — |")
    assert rows[3].startswith("| Adam | 0.8696 | 0.8700 ± 0.0100 |") and rows[3].endswith("| yes |")
    assert rows[4].endswith("| no |")  # 0.874 lies above every seed


def test_every_published_optimizer_is_run_and_sgd_has_no_published_number():
    assert set(textbook.PUBLISHED) < set(textbook.OPTIMIZERS)
    assert "SGD" not in textbook.PUBLISHED  # the notebook's SGD cell ran momentum


def test_the_network_is_the_notebooks():
    import keras

    model = textbook.build_model(keras.optimizers.SGD(learning_rate=0.001))
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [100, 100, 100, 10]
    assert model.count_params() == 784 * 100 + 100 + 2 * (100 * 100 + 100) + 100 * 10 + 10
