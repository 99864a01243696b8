"""The rows of "The article, checked" (:mod:`dnnbook.book.article`): the source article's
assertions in its order, the book's verdict on each, and phrases of the claims that decide it."""

from __future__ import annotations

from dnnbook.book.article import Assertion

A = Assertion
ASSERTIONS: tuple[Assertion, ...] = (
    # --- vanishing and exploding gradients (chapter 01) ---------------------------------
    A(
        "Gradients get smaller and smaller as backpropagation moves to the lower layers "
        "(vanishing gradients)",
        "01",
        "holds with a caveat",
        "With sigmoid + Glorot the gradient shrinks layer by layer; with ReLU + He it does not: "
        "the activation and initialization decide it.",
        ("With sigmoid + Glorot the gradient vanishes", "With ReLU + He"),
    ),
    A(
        "In other cases gradients get larger and larger (exploding gradients)",
        "01",
        "holds",
        "With tanh and N(0, 1) weights the gradient grows with depth, with no high learning "
        "rate needed.",
        ("The gradient explodes with depth",),
    ),
    A(
        "The logistic function saturates at 0 or 1 for large inputs, with a derivative close "
        "to 0, so little gradient is left for the lower layers",
        "01",
        "holds",
        "N(0, 1) weights leave many more sigmoid units saturated than Glorot weights.",
        ("saturated",),
    ),
    A(
        "Leaky ReLUs never die: they can go into a long coma but may wake up",
        "01",
        "holds with a caveat",
        "Fewer LeakyReLU units than ReLU units end up never positive on held-out images, and "
        "more of those idle after the first epoch are active at the end; 'never die' is too "
        "strong: some leaky units stay idle too.",
        ("share of ReLU units", "wake up"),
    ),
    A(
        "With Batch Normalization we can guarantee solving the gradient problem",
        "01",
        "holds with a caveat",
        "BN after each sigmoid keeps the gradient from vanishing at initialization; that alone "
        "does not make the deep sigmoid network learn well.",
        ("BN after each sigmoid",),
    ),
    A(
        "BN at the very first layer removes the need to standardize the training set",
        "01",
        "does not hold",
        "See chapter 1's BN-first experiment against standardized inputs.",
        ("BN first",),
    ),
    A(
        "At prediction time BN uses the moving averages of the means and standard deviations",
        "01",
        "holds",
        "In inference mode an image's prediction does not depend on the rest of its batch; in "
        "training mode it does.",
        ("In inference mode",),
    ),
    A(
        "BN has four parameters per input: two trainable, two moving averages",
        "01",
        "holds",
        "Counted on every BN layer of the network.",
        ("4n parameters",),
    ),
    A(
        "Gradient clipping is the most prominent technique against exploding gradients, "
        "mostly used in RNNs",
        "01",
        "holds with a caveat",
        "Clipping lets an exploding MLP learn; RNNs are not measured here (the book trains "
        "MLPs only), so 'mostly in RNNs' is not checked.",
        ("global_clipnorm=1.0",),
    ),
    A(
        "clipvalue=1.0 turns [0.9, 100.0] into [0.9, 1.0]; clipnorm=1.0 into "
        "[0.00899964, 0.999595]",
        "01",
        "holds",
        "Checked on Keras's own clipping, to float rounding.",
        ("clipvalue=1.0 turns",),
    ),
    # --- pretrained layers (chapter 02) --------------------------------------------------
    A(
        "Reuse the hidden layers of a pretrained model with a new output layer",
        "02",
        "holds with a caveat",
        "On the book's related task, with few labels, reusing layers changes the accuracy by "
        "little; see the chapter's per-profile claims.",
        ("transfer",),
    ),
    A(
        "Freeze the reused layers for a few epochs (trainable=False) so that the new output "
        "layer's large errors do not wreck them",
        "02",
        "holds with a caveat",
        "See the chapter's freeze-first claim.",
        ("freez",),
    ),
    A(
        "Unsupervised pretraining is also known as self-supervised learning",
        "02",
        "not measured here",
        "A matter of words, not of measurement: self-supervised learning makes labels from "
        "the data (the rotation task); unsupervised pretraining uses no labels at all (the "
        "autoencoder, the GAN). Chapter 2 shows both.",
    ),
    A(
        "Unsupervised pretraining with autoencoders or GANs helps when labeled data is scarce "
        "and unlabeled data plentiful",
        "02",
        "holds with a caveat",
        "See the chapter's few-label comparison.",
        ("labels",),
    ),
    # --- optimizers (chapter 03) ---------------------------------------------------------
    A(
        "With momentum the optimizer overshoots, comes back and oscillates before it settles",
        "03",
        "holds",
        "On the 2-D bowl momentum crosses the valley floor many times.",
        ("momentum",),
    ),
    A(
        "Nesterov accelerated gradient is generally faster than momentum optimization",
        "03",
        "holds with a caveat",
        "See the chapter's Nesterov claims.",
        ("Nesterov",),
    ),
    A(
        "AdaGrad often stops too early when training neural networks",
        "03",
        "holds with a caveat",
        "See the chapter's AdaGrad claims.",
        ("AdaGrad",),
    ),
    A(
        "Adam requires less tuning of the learning rate",
        "03",
        "holds with a caveat",
        "See the chapter's tuning-window claim.",
        ("range of learning rates",),
    ),
    A(
        "Find a good learning rate by increasing it exponentially over a few hundred "
        "iterations and picking one a little lower than where the loss shoots up",
        "03",
        "holds with a caveat",
        "See the chapter's learning-rate finder claim.",
        ("finder",),
    ),
    A(
        "Schedules: power, exponential, piecewise constant, performance and 1cycle",
        "03",
        "holds with a caveat",
        "Every schedule runs and applies the rates it promises; see the chapter for what each "
        "buys.",
        ("1cycle",),
    ),
    # --- regularization (chapter 04) -----------------------------------------------------
    A(
        "l2 constrains the connection weights; l1 makes the model sparse",
        "04",
        "holds",
        "Measured on the trained weights.",
        ("l2", "l1"),
    ),
    A(
        "Since dropout is only active during training, compare the training loss without dropout",
        "04",
        "holds",
        "The training loss Keras reports with dropout on overstates the loss of the trained "
        "network.",
        ("dropout",),
    ),
    A(
        "Dropout is not only for overfitting: it is also used for underfitting problems",
        "04",
        "does not hold",
        "In a network that underfits, dropout lowers the validation accuracy.",
        ("underfit",),
    ),
    A(
        "Max-norm adds no regularization loss term, and reducing r increases the regularization",
        "04",
        "holds",
        "See the chapter's max-norm claims.",
        ("max-norm",),
    ),
    A(
        "Max-norm can help alleviate unstable gradients when not using Batch Normalization",
        "04",
        "holds with a caveat",
        "At a far-too-high learning rate the bounded network learns where the unconstrained "
        "one mostly diverges; in long runs it can still collapse.",
        ("max-norm network learns more",),
    ),
)
