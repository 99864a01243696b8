"""The conditions behind chapter 0's claims (``experiments.ci_above`` and ``paired_above``), and
negative controls: with the effect removed (identical arms, a model at chance) each fails."""

import numpy as np
import pandas as pd

from dnnbook import experiments


def _history(losses: dict[str, list[float]], accuracy: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {
            "config": name,
            "seed": seed,
            "epoch": 1,
            "loss": loss,
            "test_accuracy": accuracy[name][seed],
        }
        for name, values in losses.items()
        for seed, loss in enumerate(values)
    ]
    df = pd.DataFrame(rows)
    df["config"] = pd.Categorical(df["config"], categories=list(losses), ordered=True)
    return df


def _fits_better(history: pd.DataFrame) -> bool:
    """Chapter 0's condition: softmax regression − baseline training loss, paired CI above 0."""
    return experiments.paired_above(history, "softmax regression", "baseline", "loss").holds


def _beats_chance(history: pd.DataFrame) -> bool:
    """Chapter 0's condition: the baseline's test-accuracy 95% CI lies above 10%."""
    return experiments.ci_above(history, "baseline", 0.10, "test_accuracy").holds


def test_conditions_hold_when_the_effects_are_there():
    history = _history(
        {"baseline": [0.30, 0.32, 0.31], "softmax regression": [0.48, 0.49, 0.47]},
        {"baseline": [0.81, 0.80, 0.82], "softmax regression": [0.79, 0.80, 0.79]},
    )
    assert _fits_better(history) and _beats_chance(history)


def test_identical_arms_fail_the_fit_condition():
    """Negative control: the same model as both arms has no paired gap."""
    history = _history(
        {"baseline": [0.30, 0.32, 0.31], "softmax regression": [0.30, 0.32, 0.31]},
        {"baseline": [0.81] * 3, "softmax regression": [0.81] * 3},
    )
    assert not _fits_better(history)


def test_a_model_at_chance_fails_the_chance_condition():
    """Negative control: test accuracies around 10% (guessing) do not beat chance."""
    rng = np.random.default_rng(0)
    acc = list(0.10 + rng.normal(0, 0.01, size=3))
    history = _history(
        {"baseline": [2.3] * 3, "softmax regression": [2.3] * 3},
        {"baseline": acc, "softmax regression": acc},
    )
    assert not _beats_chance(history)
