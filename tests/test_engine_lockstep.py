"""Seeds in lockstep (stacked) train the models seed after seed trains, and each replica is treated on its own."""

import keras
import numpy as np
import pandas as pd
import pytest

from dnnbook import data, experiments, models
from dnnbook.engine import backend, lockstep, replica_grads, stackable


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n_train=400, n_valid=100, n_test=100, seed=0)


def _factory(d, **kw):
    def make():
        if "bias_regularizer" in kw or "bias_constraint" in kw:  # every Dense layer gets kw
            m = keras.Sequential(
                [
                    keras.Input(d.input_shape),
                    keras.layers.Flatten(),
                    *[keras.layers.Dense(32, "relu", **kw) for _ in range(2)],
                    keras.layers.Dense(d.n_classes, "softmax", **kw),
                ],
                name="mlp",
            )
        else:
            m = models.build_mlp(d.input_shape, d.n_classes, depth=2, width=32, **kw)
        return models.compile_classifier(m, keras.optimizers.SGD(learning_rate=0.05, momentum=0.9))

    return make


def _assert_same_runs(lock, solo, kept_l, kept_s, seeds, rtol):
    cols = [
        c
        for c in (
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "test_loss",
            "test_accuracy",
            "penalty",
        )
        if c in solo.columns
    ]
    assert list(lock.columns) == list(solo.columns)
    np.testing.assert_allclose(
        lock[cols].to_numpy(), solo[cols].to_numpy(), rtol=rtol, atol=rtol / 10
    )
    for seed in seeds:
        for a, b in zip(kept_l[("m", seed)].get_weights(), kept_s[("m", seed)].get_weights()):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol / 10)
    # the replicas really differ from each other (independent seeds)
    assert not np.allclose(
        kept_l[("m", seeds[0])].get_weights()[0], kept_l[("m", seeds[1])].get_weights()[0]
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(batch_norm="before", activation="leaky_relu"),
        dict(batch_norm="after", activation="prelu", input_batch_norm=True),
        dict(
            kernel_regularizer=keras.regularizers.L1L2(1e-4, 1e-3),
            bias_regularizer=keras.regularizers.L2(1e-3),
            kernel_constraint=keras.constraints.MaxNorm(0.5, axis=0),
        ),
        dict(kernel_constraint=keras.constraints.UnitNorm(axis=-1)),
    ],
)
def test_stacked_replicas_equal_solo_runs(digits, kw):
    """Without dropout, each stacked replica of a shallow net trains as its solo run would, up
    to float rounding (a batched product adds in another order)."""
    seeds = [3, 4, 5]
    make = _factory(digits, **kw)
    assert stackable.why_not(make()) is None
    logs = {
        "penalty": lambda m: sum(float(keras.ops.convert_to_numpy(v)) for v in m.losses),
        "kernel_sum": lambda m: float(np.sum(m.layers[1].get_weights()[0])),
    }
    kept_l, kept_s = {}, {}
    run = dict(epochs=3, batch_size=32, epoch_logs=logs)
    lock = experiments.run({"m": make}, digits, seeds, models=kept_l, **run)
    with experiments.seed_after_seed():
        solo = experiments.run({"m": make}, digits, seeds, models=kept_s, **run)
    assert (lock["lockstep"] == 3).all() and (solo["lockstep"] == 1).all()
    _assert_same_runs(lock, solo, kept_l, kept_s, seeds, rtol=1e-4)
    assert kept_l[("m", 3)].name == "mlp"
    if "kernel_regularizer" in kw:
        assert (lock["penalty"] > 0).all() and (lock["loss"] > lock["penalty"]).all()
    if "kernel_constraint" in kw:  # the bound holds, and binds (so the test tests it)
        bound = kw["kernel_constraint"].get_config().get("max_value", 1.0)
        norms = np.linalg.norm(
            kept_l[("m", 3)].layers[1].get_weights()[0], axis=kw["kernel_constraint"].axis
        )
        assert norms.max() <= bound * (1 + 1e-4) and np.isclose(norms.max(), bound, rtol=1e-4)


def test_stacked_dropout_draws_each_replica_its_own_masks(digits):
    """Dropout acts on the K replicas' features side by side: two replicas with the same weights
    get different masks in training and equal outputs in inference. With dropout, penalties and
    max-norm, the seeds train stacked, reproducibly, each reporting its own penalty."""
    make = _factory(digits, dropout=0.3)
    keras.utils.set_random_seed(3)
    one = make()
    twin = make()
    twin.set_weights(one.get_weights())
    model = lockstep.stack([one, twin])
    x = digits.x_valid[:16]
    train_out = keras.ops.convert_to_numpy(model(x, training=True))
    infer_out = keras.ops.convert_to_numpy(model(x, training=False))
    assert not np.allclose(train_out[:, 0], train_out[:, 1])
    np.testing.assert_allclose(infer_out[:, 0], infer_out[:, 1], rtol=1e-6)
    np.testing.assert_allclose(
        infer_out[:, 0], keras.ops.convert_to_numpy(one(x, training=False)), rtol=1e-5, atol=1e-6
    )

    reg = _factory(
        digits,
        kernel_regularizer=keras.regularizers.L1L2(1e-3, 1e-2),
        dropout=0.2,
        kernel_constraint=keras.constraints.MaxNorm(1.0, axis=0),
    )
    logs = {"penalty": lambda m: sum(float(keras.ops.convert_to_numpy(v)) for v in m.losses)}
    kept: dict = {}
    runs = [
        experiments.run({"m": reg}, digits, [3, 4, 5], epochs=2, epoch_logs=logs, models=kept)
        for _ in range(2)
    ]
    cols = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "penalty"]
    assert (runs[0]["lockstep"] == 3).all()
    np.testing.assert_array_equal(runs[0][cols].to_numpy(), runs[1][cols].to_numpy())
    assert (runs[0]["penalty"] > 0).all() and (runs[0]["loss"] > runs[0]["penalty"]).all()
    assert runs[0].groupby("seed")["val_loss"].last().nunique() == 3
    norms = np.linalg.norm(kept[("m", 3)].layers[1].get_weights()[0], axis=0)
    assert norms.max() <= 1.0 + 1e-4


def test_stacking_refuses_what_would_couple_the_replicas(digits):
    assert stackable.why_not(_factory(digits)()) is None
    assert stackable.why_not(_factory(digits, dropout=0.1, kernel_regularizer="l2")()) is None
    assert "OrthogonalRegularizer" in stackable.why_not(
        _factory(digits, kernel_regularizer=keras.regularizers.OrthogonalRegularizer())()
    )
    bn = _factory(digits, batch_norm="after")()
    bn.layers[3].gamma_regularizer = keras.regularizers.L2(1e-3)
    assert "gamma_regularizer" in stackable.why_not(bn)
    active = _factory(digits)()
    active.layers[1].activity_regularizer = keras.regularizers.L2(1e-3)
    assert "activity" in stackable.why_not(active)
    assert "bias constraint" in stackable.why_not(
        _factory(digits, bias_constraint=keras.constraints.MaxNorm(1.0))()
    )
    clipped = _factory(digits)()
    clipped.compile(
        optimizer=keras.optimizers.SGD(0.1, clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    assert "clipnorm" in stackable.why_not(clipped)
    masked = keras.Sequential(
        [
            keras.Input(digits.input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(8),
            keras.layers.Dropout(0.5, noise_shape=(None, 1)),
            keras.layers.Dense(10, "softmax"),
        ]
    )
    models.compile_classifier(masked)
    assert "does not act on each feature alone" in stackable.why_not(masked)
    assert "not compiled" in stackable.why_not(
        models.build_mlp(digits.input_shape, digits.n_classes)
    )


def _sgd_factory(d, optimizer, **kw):
    def make():
        m = models.build_mlp(d.input_shape, d.n_classes, depth=2, width=32, **kw)
        return models.compile_classifier(m, optimizer())

    return make


def test_global_clipnorm_clips_each_replica_by_its_own_norm(digits):
    """Each replica is clipped by the global norm of its own gradients: the runs equal solo runs
    with global_clipnorm, and the clipping binds (they differ from unclipped runs)."""
    seeds, kept = [3, 4], {"lock": {}, "solo": {}, "plain": {}}
    clipped = _sgd_factory(
        digits,
        lambda: keras.optimizers.SGD(0.2, momentum=0.9, global_clipnorm=0.5),
        batch_norm="before",
    )
    assert stackable.why_not(clipped()) is None
    run = dict(epochs=1, batch_size=32)
    lock = experiments.run({"m": clipped}, digits, seeds, models=kept["lock"], **run)
    with experiments.seed_after_seed():
        solo = experiments.run({"m": clipped}, digits, seeds, models=kept["solo"], **run)
    plain = experiments.run(
        {
            "m": _sgd_factory(
                digits, lambda: keras.optimizers.SGD(0.2, momentum=0.9), batch_norm="before"
            )
        },
        digits,
        seeds,
        models=kept["plain"],
        **run,
    )
    assert (lock["lockstep"] == 2).all()
    _assert_same_runs(lock, solo, kept["lock"], kept["solo"], seeds, rtol=1e-4)
    assert not np.allclose(lock["loss"], plain["loss"], rtol=1e-2)


def test_plateau_lowers_each_replicas_rate_on_its_own_loss(digits):
    """ReduceLROnPlateau runs once per replica in lockstep: each seed's rates and results equal
    its solo run's, and the seeds' rates part ways (so a shared rate could not pass)."""
    from tests.rate_recorder import RateRecorder

    seeds, kept_l, kept_s, recorders = [3, 4, 5], {}, {}, []
    make = _sgd_factory(digits, lambda: keras.optimizers.SGD(0.2, momentum=0.9))

    def plateau():
        recorders.append(RateRecorder())  # reads the rate inside every update
        return [
            keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=1, min_delta=0.02),
            recorders[-1],
        ]

    run = dict(epochs=6, batch_size=32, callbacks=plateau)
    lock = experiments.run({"m": make}, digits, seeds, models=kept_l, **run)
    with experiments.seed_after_seed():
        solo = experiments.run({"m": make}, digits, seeds, models=kept_s, **run)
    assert (lock["lockstep"] == 3).all() and "learning_rate" in lock.columns
    _assert_same_runs(lock, solo, kept_l, kept_s, seeds, rtol=1e-4)
    np.testing.assert_array_equal(lock["learning_rate"], solo["learning_rate"])
    rates = lock.pivot(index="epoch", columns="seed", values="learning_rate")
    assert rates.iloc[-1].min() < 0.2 and rates.nunique(axis=1).max() > 1, rates
    # the rate every update applied: one recording for the lockstep seeds, one per solo run
    assert len(recorders) == 4
    for i, seed in enumerate(seeds):
        applied = recorders[0].rates_of(i)
        np.testing.assert_allclose(applied, recorders[1 + i].rates_of(0), rtol=1e-6)
        np.testing.assert_allclose(
            applied, rates[seed].to_numpy()[np.asarray(recorders[0].epochs) - 1], rtol=1e-6
        )


def test_plateau_needs_plain_sgd_in_lockstep(digits, capsys):
    adam = _sgd_factory(digits, lambda: keras.optimizers.Adam(1e-3))
    plateau = lambda: [keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=1)]  # noqa: E731
    df = experiments.run({"adam": adam}, digits, [1, 2], epochs=1, callbacks=plateau)
    assert (df["lockstep"] == 1).all()
    assert (
        "seed after seed (per-replica rates need an update linear in the rate (plain SGD), not Adam"
        in capsys.readouterr().err
    )
    accuracy = keras.callbacks.ReduceLROnPlateau("val_accuracy")
    assert "explicit mode" in stackable.problem(
        _sgd_factory(digits, keras.optimizers.SGD)(), [accuracy]
    )
    with pytest.raises(ValueError, match="cannot train in lockstep: per-replica rates"):
        lockstep.fit(
            [adam(), adam()], digits, epochs=1, batch_size=32, order_seed=0, callbacks=plateau()
        )


def test_coupled_configs_fall_back_to_seed_after_seed(digits, capsys):
    stop = lambda: [keras.callbacks.EarlyStopping(patience=1)]  # noqa: E731
    stopped = experiments.run({"m": _factory(digits)}, digits, [1, 2], epochs=1, callbacks=stop)
    assert (stopped["lockstep"] == 1).all()
    assert (
        "seed after seed (the EarlyStopping callback acts on the shared training loop)"
        in capsys.readouterr().err
    )
    active = _factory(digits)()
    active.layers[1].activity_regularizer = keras.regularizers.L2(1e-3)
    with pytest.raises(ValueError, match="cannot train in lockstep: an activity"):
        lockstep.fit([active, active], digits, epochs=1, batch_size=32, order_seed=0)


def _runs_per_call(monkeypatch, digits, make, seeds, steps_per_call) -> dict:
    """Lockstep runs of ``make`` at each number of steps per call, trained models in ``attrs``."""
    from dnnbook.engine import backend

    runs = {}
    for spe in steps_per_call:
        kept: dict = {}
        monkeypatch.setattr(backend, "default_steps_per_execution", lambda spe=spe: spe)
        runs[spe] = experiments.run(
            {"m": make}, digits, seeds, epochs=2, batch_size=32, models=kept
        )
        runs[spe].attrs["kept"] = kept
    return runs


@pytest.mark.parametrize("kw", [dict(batch_norm="before"), dict(dropout=0.2)])
def test_steps_run_as_one_loop_train_as_step_by_step(digits, kw, monkeypatch):
    """With LoopedSteps on (JAX; by default only on a GPU) a call's steps run as one compiled
    loop; 13 batches per epoch in calls of 4: three loops of 4 and the short last batch alone.
    Same runs as 1 step per call."""
    from dnnbook.engine import backend

    assert not backend.loops_steps()  # off by default on a CPU, on every backend
    monkeypatch.setattr(backend, "LOOP_STEPS", True)
    seeds, make = [3, 4], _factory(digits, **kw)
    runs = _runs_per_call(monkeypatch, digits, make, seeds, (1, 4))
    assert (runs[4]["lockstep"] == 2).all()
    _assert_same_runs(
        runs[4], runs[1], runs[4].attrs["kept"], runs[1].attrs["kept"], seeds, rtol=1e-5
    )
    combined = lockstep.stack([make() for _ in seeds])
    combined.make_train_function()
    looped = combined.train_function.__qualname__.startswith("_looped_train_function")
    assert looped == (keras.backend.backend() == "jax")


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the compiled loop is JAX's")
def test_steps_loop_on_a_gpu_by_default_with_batches_already_on_the_device(digits, monkeypatch):
    """As on a GPU: Keras's iterator puts each batch on the device one batch ahead, and the loop
    is on by default (16 steps per call), stacking device arrays; same runs as step by step."""
    import jax

    from dnnbook.engine import backend

    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert backend.loops_steps() and backend.default_steps_per_execution() == 16
    seeds, make = [3, 4], _factory(digits)
    stacked_calls, real_stack = [], jax.numpy.stack

    def counted_stack(arrays, *args, **kwargs):
        stacked_calls.append(len(arrays))
        return real_stack(arrays, *args, **kwargs)

    monkeypatch.setattr(jax.numpy, "stack", counted_stack)
    runs = _runs_per_call(monkeypatch, digits, make, seeds, (1, 8))
    assert 8 in stacked_calls  # a call's 8 batches were stacked on the device, not as numpy arrays
    _assert_same_runs(
        runs[8], runs[1], runs[8].attrs["kept"], runs[1].attrs["kept"], seeds, rtol=1e-5
    )


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the compiled loop is JAX's")
def test_solo_fits_and_transfer_phases_loop_where_lockstep_does(digits, monkeypatch):
    """With the loop on (as on a GPU), plain fits (seed after seed, and the phases of a transfer
    schedule) run several steps per call as one compiled loop and train what step by step trains;
    a per-batch callback keeps a fit step by step."""
    from dnnbook import finetune
    from dnnbook.engine import backend

    def runs(loop: bool):
        monkeypatch.setattr(backend, "LOOP_STEPS", loop)
        kept: dict = {}
        with experiments.seed_after_seed():  # 50 batches an epoch: 3 loops of 16, 2 steps alone
            solo = experiments.run(
                {"m": _factory(digits)}, digits, [3, 4], epochs=2, batch_size=8, models=kept
            )

        def make():
            return models.build_mlp(digits.input_shape, digits.n_classes, depth=1, width=16), []

        def phases(model, reused):
            return [(models.compile_classifier(model, keras.optimizers.Adam()), 2)]

        cache: dict = {}
        moved = finetune.train(make, phases, digits, seed=3, batch_size=8, compiled=cache)
        return solo, kept, moved, cache["phases"][0][0]

    solo_on, kept_on, moved_on, phase_on = runs(True)
    solo_off, kept_off, moved_off, phase_off = runs(False)
    assert (
        type(kept_on[("m", 3)]).__name__ == "LoopedSequential"
        and kept_on[("m", 3)].steps_per_execution == 16
    )
    assert type(phase_on).__name__ == "LoopedSequential" and type(phase_off) is keras.Sequential
    assert kept_on[("m", 3)].train_function.__qualname__.startswith("_looped_train_function")
    assert phase_on.train_function.__qualname__.startswith("_looped_train_function")
    _assert_same_runs(solo_on, solo_off, kept_on, kept_off, [3, 4], rtol=1e-5)
    cols = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]
    np.testing.assert_allclose(moved_on[cols].to_numpy(), moved_off[cols].to_numpy(), rtol=1e-5)
    monkeypatch.setattr(backend, "LOOP_STEPS", True)
    from tests.chapter_code import load

    LRFinder = load("03").LRFinder  # sets the rate between steps

    _, model = experiments.train(
        _factory(digits), digits, seed=3, epochs=1, callbacks=[LRFinder(steps=5)]
    )
    assert type(model) is keras.Sequential  # the finder sets the rate between steps


def test_update_hooks_run_inside_every_update_and_need_an_unbuilt_optimizer(digits):
    """``with_hooks`` mixes ReplicaUpdates into an optimizer's class: its public ``apply`` runs
    each hook once per update, inside the compiled step (on JAX, inside ``stateless_apply``)."""
    model = _factory(digits)()
    optimizer = replica_grads.with_hooks(model.optimizer)
    assert optimizer is model.optimizer and isinstance(optimizer, keras.optimizers.SGD)
    seen = optimizer.add_variable((), initializer="zeros", name="hook_calls")
    optimizer.hooks = (lambda opt: seen.assign(seen + 1.0),)
    model.fit(digits.x_train, digits.y_train, epochs=2, batch_size=100, verbose=0)
    backend.sync(model)
    assert (
        float(keras.ops.convert_to_numpy(seen))
        == 8
        == int(keras.ops.convert_to_numpy(optimizer.iterations))
    )
    with pytest.raises(ValueError, match="before it is built"):
        replica_grads.with_hooks(model.optimizer)


def test_configs_that_differ_in_activation_and_init_train_as_one_stacked_model(digits, capsys):
    """Configs without callbacks whose models differ only in initializers and activation layers
    (here three pairings) train as one stacked model, each replica as in its own config's
    lockstep; configs that differ otherwise train apart."""
    pairings = {
        "tanh + Glorot": ("tanh", "glorot_uniform"),
        "LeakyReLU + He": ("leaky_relu", "he_normal"),
        "SELU + LeCun": ("selu", "lecun_normal"),
    }
    names = list(pairings)

    def pairing(activation, initializer):
        def make():
            m = models.build_mlp(
                digits.input_shape,
                digits.n_classes,
                depth=3,
                width=16,
                activation=activation,
                initializer=initializer,
            )
            return models.compile_classifier(m, keras.optimizers.SGD(0.05, momentum=0.9))

        return make

    configs = {name: pairing(*pairings[name]) for name in names}
    grouped = experiments.run(configs, digits, [3, 4], epochs=2)
    assert (grouped["lockstep"] == 6).all() and "3 configs together" in capsys.readouterr().err
    apart = pd.concat(
        [experiments.run({name: configs[name]}, digits, [3, 4], epochs=2) for name in names]
    )
    cols = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]
    np.testing.assert_allclose(
        grouped[cols].to_numpy(), apart[cols].to_numpy(), rtol=1e-4, atol=1e-5
    )
    assert grouped.groupby("config", observed=True)["val_loss"].last().nunique() == len(names)
    base = stackable.signature(_factory(digits)())
    assert (
        stackable.signature(_factory(digits, activation="elu", initializer="glorot_uniform")())
        == base
    )
    assert (
        stackable.signature(_sgd_factory(digits, lambda: keras.optimizers.SGD(0.1, momentum=0.9))())
        != base
    )
    assert stackable.signature(_factory(digits, batch_norm="before")()) != base
