"""Paired gains over a reference config (by seed): a table and a figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dnnbook.experiments import compare, per_seed, summarize


def gain_table(df: pd.DataFrame, reference: str, metric: str = "test_accuracy") -> pd.DataFrame:
    """Per config: ``metric`` mean ± std, its paired gain over ``reference`` in points with
    the 95% CI, and the number of seeds."""
    rows = []
    for name, s in summarize(df, metric).iterrows():
        row = {"config": name, f"{metric} (mean ± std)": f"{s['mean']:.4f} ± {s['std']:.4f}"}
        row["gain (points)"], row["gain 95% CI"] = "—", "—"
        if name != reference:
            d = compare(df, str(name), reference, metric)
            row["gain (points)"] = f"{d.mean * 100:+.2f}"
            row["gain 95% CI"] = f"[{d.low * 100:+.2f}, {d.high * 100:+.2f}]"
        rows.append(row | {"seeds": int(s["n"])})
    return pd.DataFrame(rows).set_index("config")


def paired_plot(
    df: pd.DataFrame, reference: str, metric: str = "test_accuracy", *, title: str | None = None
):
    """Left: ``metric`` per seed and config, a seed's runs joined by a line. Right: each
    config's per-seed gain over ``reference`` (points), its mean and 95% CI."""
    import matplotlib.pyplot as plt

    from dnnbook.plots import finish, label, style

    style()
    table = per_seed(df, metric)
    names = [str(c) for c in table.columns]
    others = [n for n in names if n != reference]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(9.0, 3.6), gridspec_kw={"width_ratios": [1.3, 1]}
    )
    for _, row in table.iterrows():
        left.plot(range(len(names)), row.to_numpy(), color="grey", alpha=0.4, lw=0.8)
    for i, n in enumerate(names):
        left.plot(np.full(len(table), i), table[n], "o", ms=4)
    left.set_xticks(range(len(names)), names, rotation=15, ha="right")
    left.set_ylabel(f"{label(metric)} (one dot per seed)")
    for i, n in enumerate(others):
        d = compare(df, n, reference, metric)
        diffs = (table[n] - table[reference]).to_numpy() * 100
        right.plot(np.full(len(diffs), i), diffs, "o", ms=4, alpha=0.6, color=f"C{i + 1}")
        right.errorbar(
            i + 0.2,
            d.mean * 100,
            yerr=[[max(d.mean - d.low, 0) * 100], [max(d.high - d.mean, 0) * 100]],
            fmt="s",
            color="black",
            capsize=4,
            label="mean and 95% CI" if i == 0 else None,
        )
    right.axhline(0, color="grey", ls="--", lw=1)
    right.set_xticks(range(len(others)), others, rotation=15, ha="right")
    right.set_xlim(-0.5, len(others) - 0.3)
    right.set_ylabel(f"gain over {reference} (points)")
    right.legend(loc="best")
    return finish(fig, title)
