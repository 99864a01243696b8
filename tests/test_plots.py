"""The book's figure helpers."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dnnbook import plots  # noqa: E402


def test_finish_titles_the_axes_or_the_figure_and_returns_it():
    fig, ax = plt.subplots()
    assert plots.finish(fig, "one panel", ax) is fig
    assert ax.get_title() == "one panel" and fig.get_suptitle() == ""
    fig2, axes = plt.subplots(1, 2)
    assert plots.finish(fig2, "two panels") is fig2
    assert fig2.get_suptitle() == "two panels" and axes[0].get_title() == ""
    fig3, ax3 = plt.subplots()
    plots.finish(fig3, None, ax3)
    assert ax3.get_title() == "" and fig3.get_suptitle() == ""
    plt.close("all")
