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
        "With sigmoid + Glorot the gradient shrinks by more than half per layer; with ReLU + "
        "He and the other matched pairings it stays within 10× across the layers: the "
        "activation and the initialization decide it.",
        (
            "With sigmoid + Glorot the gradient vanishes",
            "With ReLU + He and every other matched initialization",
        ),
    ),
    A(
        "In other cases gradients get larger and larger (exploding gradients)",
        "01",
        "holds",
        "With tanh and N(0, 1) weights the gradient grows with depth at initialization, with "
        "no high learning rate needed.",
        ("The gradient explodes with depth under tanh + N(0, 1)",),
    ),
    A(
        "The logistic function saturates at 0 or 1 for large inputs, with a derivative close "
        "to 0, so little gradient is left for the lower layers",
        "01",
        "holds",
        "N(0, 1) weights leave many more sigmoid units saturated than Glorot weights, and the "
        "deep sigmoid + Glorot network does not learn.",
        (
            "N(0, 1) weights leave a share of the sigmoid units saturated",
            "sigmoid + Glorot does not learn",
        ),
    ),
    A(
        "Leaky ReLUs never die: they can go into a long coma but may wake up",
        "01",
        "holds with a caveat",
        "Fewer LeakyReLU units than ReLU units end up never positive on held-out images, and "
        "more of those idle after the first epoch are active at the end; 'never die' is too "
        "strong: some leaky units stay idle too. Accuracy is not compared.",
        ("the share of ReLU units never positive", "Leaky units wake up"),
    ),
    A(
        "With Batch Normalization (unlike initializers) we can guarantee solving the "
        "gradient problem",
        "01",
        "holds with a caveat",
        "BN after each sigmoid keeps the gradient's factor per layer between 0.5 and 2 at "
        "initialization; that is a statement about the gradient, not about how well the "
        "network then learns.",
        ("With BN after each sigmoid the gradient no longer vanishes",),
    ),
    A(
        "Add the BN layer just before or just after the activation function",
        "01",
        "not settled here",
        "Chapter 1 trains both placements and prints the paired difference; at the quick size "
        "its interval is too wide to claim either an order or an equivalence within 5 points.",
    ),
    A(
        "BN as the very first layer removes the need to standardize the training set",
        "01",
        "holds with a caveat",
        "BN first makes raw 0-255 pixels trainable where the same network without it stays at "
        "chance; whether it matches standardized inputs is printed, not settled.",
        ("BN as the first layer makes raw 0–255 pixels trainable",),
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
        "Training may be a bit slower with BN, but performance is good",
        "01",
        "not measured here",
        "Time per epoch is shared among seeds trained together in one stacked model, so it is "
        "not a fair per-model timing; the chapter says so and does not claim it.",
    ),
    A(
        "BN has four parameters per input: two trainable, two moving averages",
        "01",
        "holds",
        "Counted on every BN layer of the network.",
        ("Every BN layer over n inputs has 4n parameters",),
    ),
    A(
        "BN has its own offset per input, so the Dense layer before it needs no bias "
        "(use_bias=False)",
        "01",
        "holds",
        "Dense + BN computes the same outputs with and without the bias, with 100 fewer "
        "parameters.",
        ("Before BN the Dense bias is redundant",),
    ),
    A(
        "Gradient clipping is the most prominent technique against exploding gradients, "
        "mostly used in RNNs",
        "01",
        "holds with a caveat",
        "global_clipnorm=1.0 lets an MLP that diverges without it learn; RNNs are not "
        "measured here (the book trains MLPs only), so 'mostly in RNNs' is not checked.",
        ("with global_clipnorm=1.0 the network learns",),
    ),
    A(
        "clipvalue=1.0 turns [0.9, 100.0] into [0.9, 1.0]; clipnorm=1.0 into "
        "[0.00899964, 0.999595]",
        "01",
        "holds with a caveat",
        "Keras gives exactly these, except that the second component of the clipnorm result "
        "is 0.9999595: the article's 0.999595 drops a 9.",
        (
            "clipvalue=1.0 turns [0.9, 100.0] into [0.9, 1.0]",
            "clipnorm caps each variable's gradient at norm 1 separately",
        ),
    ),
    # --- pretrained layers (chapter 02) --------------------------------------------------
    A(
        "Reuse the hidden layers of a pretrained model with a new output layer",
        "02",
        "holds with a caveat",
        "Reusing A's layers runs as advertised (A's weights untouched), but on the book's "
        "related task no arrangement of reused layers halves the error of training from "
        "scratch, under either profile; the sign of the gain moves with model A.",
        (
            "Training every model B left model A's weights exactly unchanged",
            "On task B, no arrangement of A's reused layers",
        ),
    ),
    A(
        "Matching the input shape is the problem; transfer works best when the inputs have "
        "similar low-level features",
        "02",
        "holds",
        "Model A refuses smaller images; resized to its input size it keeps most of its "
        "accuracy, zero-padded it does not.",
        ("Model A refuses 14 × 14 input",),
    ),
    A(
        "Freeze the reused layers for a few epochs (trainable=False) so that the new output "
        "layer's large errors do not wreck them",
        "02",
        "does not hold",
        "Freezing first, then unfreezing, gained less than 1 point over fine-tuning everything "
        "from the first epoch on the book's task.",
        ("Reused layers trained frozen first",),
    ),
    A(
        "With plenty of training data you can reuse (and unfreeze) more layers",
        "02",
        "not measured here",
        "The book's task B has one training-set size; the chapter says why it does not vary it.",
    ),
    A(
        "Unsupervised pretraining is also known as self-supervised learning",
        "02",
        "does not hold",
        "A matter of words: self-supervised learning makes labels from the data (the rotation "
        "task); unsupervised pretraining uses no labels at all (the autoencoder, the GAN). "
        "Chapter 2 shows both.",
        ("Pretraining on the rotation task buys features",),
    ),
    A(
        "Unsupervised pretraining with autoencoders or GANs helps when labeled data is scarce "
        "and unlabeled data plentiful",
        "02",
        "holds with a caveat",
        "With 500 labels the autoencoder's features carry a lead that fine-tuning keeps only "
        "in part; as a compressor the autoencoder is no more than 10% better than PCA with "
        "the same code size. See the chapter for each profile.",
        (
            (
                " labels, fine-tuning keeps less of the autoencoder's lead",  # quick
                " labels, autoencoder pretraining ends above training from",  # full
            ),
            "the autoencoder rebuilds validation images no more than 10% better than PCA",
        ),
    ),
    A(
        "Pretraining on an auxiliary task: its lower layers learn features that are reusable",
        "02",
        "holds",
        "A linear probe on the rotation task's features beats one on random weights of the "
        "same layers by more than a point.",
        ("Pretraining on the rotation task buys features",),
    ),
    # --- optimizers (chapter 03) ---------------------------------------------------------
    A(
        "With momentum the optimizer overshoots, comes back and oscillates before it settles",
        "03",
        "holds",
        "On an ill-conditioned 2-D bowl momentum crosses the valley floor again and again "
        "where plain SGD never does.",
        ("Momentum overshoots the valley floor again and again",),
    ),
    A(
        "Nesterov accelerated gradient is generally faster than momentum optimization",
        "03",
        "holds with a caveat",
        "On the bowl Nesterov oscillates less than momentum; on the network both learn "
        "faster than plain SGD and end above it in short runs (at full size, no more than a "
        "point below it), but Nesterov is not shown faster than momentum there.",
        (
            "Nesterov oscillates less than momentum",
            "Momentum, Nesterov and Adam each learn faster than plain SGD",
            (
                "Momentum and Nesterov end above plain SGD",  # quick
                "Momentum and Nesterov end no more than 1 point below plain SGD",  # full
            ),
        ),
    ),
    A(
        "AdaGrad often stops too early when training neural networks",
        "03",
        "holds with a caveat",
        "In Rosenbrock's valley AdaGrad's steps shrink and it stalls far from the minimum; "
        "on the book's network it has not stopped learning by the last epoch.",
        (
            "AdaGrad's steps shrink",
            "AdaGrad has not stopped learning",
        ),
    ),
    A(
        "Adam requires less tuning of the learning rate",
        "03",
        "holds with a caveat",
        "On the 2-D bowl Adam and Nadam reach the minimum over a wider range of rates than "
        "momentum; on the network the finder still picks each optimizer its own rate.",
        (
            "Adam and Nadam each reach the minimum over a wider range of learning rates",
            "The finder picks rates over 3× lower for RMSProp, Adam and Nadam",
        ),
    ),
    A(
        "Find a good learning rate by increasing it exponentially over a few hundred "
        "iterations and picking one a little lower than where the loss shoots up",
        "03",
        "holds",
        "Neither a rate ten times smaller nor one ten times larger beats the finder's rate by "
        "more than a point.",
        ("Neither a rate 10× smaller nor one 10× larger beats the finder's rate",),
    ),
    A(
        "Schedules: power, exponential, piecewise constant, performance and 1cycle",
        "03",
        "holds with a caveat",
        "Every schedule applies the rate its formula gives, measured on the optimizer's own "
        "steps; started too high, the performance schedule lowers the rate and ends above "
        "that rate held constant. 1cycle is claimed above the constant rate at the full size "
        "only: in the quick profile's three epochs its sign follows the finder's pick.",
        (
            "Every schedule applies the rate its formula gives",
            "the performance schedule lowers the rate",
        ),
    ),
    # --- regularization (chapter 04) -----------------------------------------------------
    A(
        "l2 constrains the connection weights; l1 makes the model sparse",
        "04",
        "holds",
        "Measured on the trained weights.",
        ("l2 shrinks the weights", "l1 makes the network sparse"),
    ),
    A(
        "The regularizer's loss is added to the final loss",
        "04",
        "holds",
        "The loss Keras reports is the cross-entropy plus the penalty.",
        ("The loss Keras reports is the cross-entropy plus the regularization penalty",),
    ),
    A(
        "Dropout is one of the finest and most popular regularization techniques",
        "04",
        "holds with a caveat",
        "Each dropout rate from 0.2 to 0.5 narrows the generalization gap at a cost of at "
        "most 2 points of test accuracy, and dropout narrows the gap by more than it raises "
        "the test accuracy: judge it by validation accuracy, not by the gap.",
        (
            "Each dropout rate from 0.2 to 0.5",
            "narrows the gap by more than it raises the test accuracy",
        ),
    ),
    A(
        "Since dropout is only active during training, compare the training loss without dropout",
        "04",
        "holds",
        "The training loss Keras reports with dropout on overstates the loss of the trained "
        "network with dropout off.",
        ("the loss fit reports exceeds the training loss with dropout off",),
    ),
    A(
        "Dropout is not only for overfitting: it is also used for underfitting problems",
        "04",
        "does not hold",
        "In a network that underfits, dropout lowers the validation accuracy.",
        ("In a network that underfits, dropout",),
    ),
    A(
        "Max-norm adds no regularization loss term to the loss",
        "04",
        "holds",
        "The max-norm model's losses are empty and its reported loss is its cross-entropy.",
        ("Max-norm adds no term to the loss",),
    ),
    A(
        "Reducing r increases the amount of regularization",
        "04",
        "holds",
        "Over three active bounds, each tighter bound narrows the gap.",
        ("A tighter bound regularizes more",),
    ),
    A(
        "Max-norm can help alleviate unstable gradients when not using Batch Normalization",
        "04",
        "holds with a caveat",
        "At a far-too-high learning rate the bounded network learns where the unconstrained "
        "one mostly diverges; the bound does not make that rate a good one.",
        ("The max-norm network learns more",),
    ),
)
