"""The closing page: recommended defaults, each row backed by a claim measured in this build.

A row names the chapter and a phrase of the claim that supports it; the page quotes that
claim's evidence from the executed chapter. A row whose claim is missing fails the build, so
the page cannot drift from the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dnnbook.book import citations
from dnnbook.book.citations import MissingEvidence

__all__ = ["DEFAULTS", "Default", "MissingEvidence", "defaults_page", "write"]


@dataclass(frozen=True)
class Default:
    topic: str
    recommendation: str
    chapter: str  # chapter number, e.g. "01"
    claim_phrase: str  # a phrase of the supporting claim's statement


DEFAULTS = (
    Default(
        "Activation and initialization",
        "SELU with LeCun normal initialization for a plain deep MLP on standardized inputs: "
        "trained here (20 layers quick, 50 full) it ended within 5 points of the best pairing "
        "of its seed. ReLU-family activations with He initialization keep every layer's "
        "gradient within one order of magnitude at initialization; their accuracy is not claimed",
        "01",
        "SELU + LeCun ends within 5 points of the best pairing",
    ),
    Default(
        "What to avoid",
        "Sigmoid hidden layers in deep nets, even with Glorot initialization",
        "01",
        "sigmoid + Glorot does not learn",
    ),
    Default(
        "Dying units",
        "LeakyReLU (as a layer after Dense) when training at high learning rates: at most half "
        "as many of its units end never positive on held-out images as ReLU's (accuracy not "
        "compared)",
        "01",
        "the share of ReLU units",
    ),
    Default(
        "Batch Normalization",
        "After each activation of a deep network whose gradient vanishes: after each of 20 "
        "(quick) or 50 (full) sigmoid layers it keeps the gradient's factor per layer between "
        "0.5 and 2 at initialization (how fast that network then learns is not measured); "
        "a Dense layer before BN needs no bias",
        "01",
        "With BN after each sigmoid the gradient no longer vanishes",
    ),
    Default(
        "Gradient clipping",
        "global_clipnorm=1.0 (one norm over all variables) against exploding gradients; "
        "it does not make a too-high rate a good one, so lower that too",
        "01",
        "with global_clipnorm=1.0 the network learns",
    ),
    Default(
        "Optimizer",
        "Adam, at its own finder rate: on the network it learns faster than plain SGD in the "
        "first epoch (so do momentum and Nesterov); on an ill-conditioned 2-D bowl Adam and "
        "Nadam reach the minimum over a wider range of rates than momentum SGD",
        "03",
        "Momentum, Nesterov and Adam each learn faster than plain SGD",
    ),
    Default(
        "Learning rate",
        "Pick it with the learning-rate finder: the rate where the smoothed loss is lowest "
        "(just before it shoots up), divided by ten; its pick varies, so try ten times "
        "larger too",
        "03",
        "the finder's rate",
    ),
    Default(
        "Schedule",
        "A keras.optimizers.schedules object as the learning rate (1cycle: a short class of "
        "your own); measure the rate it applies rather than reading back the one you set",
        "03",
        "Every schedule applies the rate its formula gives",
    ),
    Default(
        "Pretrained layers",
        "Reuse the lower layers when tasks share low-level features: a default from how "
        "features are layered, not from these runs, where no choice of reused layers cut the "
        "error of training from scratch by half",
        "02",
        "On task B, no arrangement of A's reused layers",
    ),
    Default(
        "Regularization",
        "Dropout (rate 0.2-0.5) on small, noisy data sets: each rate narrowed the gap at a "
        "cost of under 2 points of test accuracy; evaluate the training loss with dropout off",
        "04",
        "Each dropout rate from 0.2 to 0.5",
    ),
    Default(
        "Unstable training without BN",
        "Lower the learning rate first; max-norm (r = 1-2) keeps the first steps from blowing up, "
        "but does not make a far-too-high rate safe in long runs",
        "04",
        "The max-norm network learns more",
    ),
    Default(
        "Uncertainty",
        "Do not assume MC dropout calibrates a model: measure ECE and NLL",
        "04",
        "MC dropout's test NLL, compared with the single pass's",
    ),
)


def defaults_page(claims_by_chapter: dict[str, list[dict]], results: Path | None = None) -> str:
    """Markdown of the defaults page; ``claims_by_chapter`` maps a chapter stem to its claims,
    ``results`` holds the committed sweep tables (each row says how its claim fared there)."""
    swept = citations.sweeps(results)
    lines = [
        "# Recommended defaults",
        "",
        "What this book's own measurements support, as a starting point for a new network.",
        "Each row quotes the claim, checked in this build, that backs it (the link opens its",
        "box in the chapter) and how that claim fared over the base seeds of the committed",
        "sweeps. Where a measurement did not support the usual advice, the row says so.",
        "",
        "| topic | default | measured in this build | over seeds |",
        "|---|---|---|---|",
    ]
    for d in DEFAULTS:
        hit = citations.find(
            claims_by_chapter, d.chapter, d.claim_phrase, f"the default {d.topic!r}"
        )
        if hit is None:
            lines.append(f"| {d.topic} | {d.recommendation} | (chapter {d.chapter} not built) | |")
            continue
        stem, c = hit
        mark = "✓" if c["holds"] else "✗"
        quote = citations.link(stem, c, f"{mark} {citations.cell(c['statement'])}")
        lines.append(
            f"| {d.topic} | {citations.cell(d.recommendation)} | {quote} — "
            f"{citations.cell(c['evidence'])} | "
            f"{citations.cell(citations.over_seeds(swept, c['statement']))} |"
        )
    return "\n".join(lines) + "\n"


def write(
    site: Path, claims_by_chapter: dict[str, list[dict]], results: Path | None = None
) -> None:
    """Write ``defaults.md`` into the staged book folder."""
    (site / "defaults.md").write_text(defaults_page(claims_by_chapter, results), encoding="utf-8")
