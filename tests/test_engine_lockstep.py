"""Seeds in lockstep train the same models as seed after seed."""
import keras
import numpy as np
import pytest

from dnnbook import data, experiments, models
from dnnbook.engine import lockstep, stacked


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n_train=400, n_valid=100, n_test=100, seed=0)


def _factory(d, **kw):
    def make():
        if "bias_regularizer" in kw or "bias_constraint" in kw:  # every Dense layer gets kw
            m = keras.Sequential([keras.Input(d.input_shape), keras.layers.Flatten(),
                                  *[keras.layers.Dense(32, "relu", **kw) for _ in range(2)],
                                  keras.layers.Dense(d.n_classes, "softmax", **kw)], name="mlp")
        else:
            m = models.build_mlp(d.input_shape, d.n_classes, depth=2, width=32, **kw)
        return models.compile_classifier(m, keras.optimizers.SGD(learning_rate=0.05, momentum=0.9))
    return make


def _assert_same_runs(lock, solo, kept_l, kept_s, seeds, rtol):
    cols = [c for c in ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "penalty")
            if c in solo.columns]
    assert list(lock.columns) == list(solo.columns)
    np.testing.assert_allclose(lock[cols].to_numpy(), solo[cols].to_numpy(), rtol=rtol, atol=rtol / 10)
    for seed in seeds:
        for a, b in zip(kept_l[("m", seed)].get_weights(), kept_s[("m", seed)].get_weights()):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol / 10)
    # the replicas really differ from each other (independent seeds)
    assert not np.allclose(kept_l[("m", seeds[0])].get_weights()[0], kept_l[("m", seeds[1])].get_weights()[0])


@pytest.mark.parametrize("kw, layout", [
    (dict(batch_norm="after", dropout=0.2), "side by side"),
    (dict(batch_norm="before", activation="leaky_relu"), "stacked"),
    (dict(activation="prelu"), "stacked"),
    (dict(kernel_regularizer=keras.regularizers.L1L2(1e-3, 1e-2), dropout=0.2,
          kernel_constraint=keras.constraints.MaxNorm(1.0, axis=0)), "side by side"),
    (dict(kernel_regularizer=keras.regularizers.L1L2(1e-4, 1e-3), bias_regularizer=keras.regularizers.L2(1e-3),
          kernel_constraint=keras.constraints.MaxNorm(0.5, axis=0)), "stacked"),
    (dict(kernel_constraint=keras.constraints.UnitNorm(axis=-1)), "stacked"),
])
def test_lockstep_replicas_equal_solo_runs(digits, kw, layout):
    seeds = [3, 4, 5]
    make = _factory(digits, **kw)
    assert lockstep.layout(make()) == layout
    logs = {"penalty": lambda m: sum(float(keras.ops.convert_to_numpy(v)) for v in m.losses),
            "kernel_sum": lambda m: float(np.sum(m.layers[1].get_weights()[0]))}
    kept_l, kept_s = {}, {}
    run = dict(epochs=3, batch_size=32, epoch_logs=logs, fit_kwargs={"validation_batch_size": 64})
    lock = experiments.run({"m": make}, digits, seeds, models=kept_l, **run)
    solo = experiments.run({"m": make}, digits, seeds, models=kept_s, lockstep=False, **run)
    # on PyTorch dropout masks come from one shared random stream: that config runs seed after seed
    together = 1 if keras.backend.backend() == "torch" and "dropout" in kw else 3
    assert (lock["lockstep"] == together).all() and (solo["lockstep"] == 1).all()
    # side by side computes what solo runs compute; stacked adds in another order (float rounding)
    _assert_same_runs(lock, solo, kept_l, kept_s, seeds, rtol=1e-5 if layout == "side by side" else 1e-4)
    assert kept_l[("m", 3)].name == "mlp"
    if "kernel_regularizer" in kw:
        assert (lock["penalty"] > 0).all() and (lock["loss"] > lock["penalty"]).all()
    if "kernel_constraint" in kw:  # the bound holds, and binds in the stacked cases (so they test it)
        bound = kw["kernel_constraint"].get_config().get("max_value", 1.0)
        norms = np.linalg.norm(kept_l[("m", 3)].layers[1].get_weights()[0], axis=kw["kernel_constraint"].axis)
        assert norms.max() <= bound * (1 + 1e-4)
        assert layout != "stacked" or np.isclose(norms.max(), bound, rtol=1e-4)


def test_stacked_refuses_what_would_couple_or_differ(digits):
    assert stacked.why_not(_factory(digits)()) is None
    assert "Dropout" in stacked.why_not(_factory(digits, dropout=0.1)())
    assert stacked.why_not(_factory(digits, kernel_regularizer="l2")()) is None
    assert "OrthogonalRegularizer" in stacked.why_not(
        _factory(digits, kernel_regularizer=keras.regularizers.OrthogonalRegularizer())())
    bn = _factory(digits, batch_norm="after")()
    bn.layers[3].gamma_regularizer = keras.regularizers.L2(1e-3)
    assert "gamma_regularizer" in stacked.why_not(bn)
    assert "bias constraint" in stacked.why_not(_factory(digits, bias_constraint=keras.constraints.MaxNorm(1.0))())
    clipped = _factory(digits)()
    clipped.compile(optimizer=keras.optimizers.SGD(0.1, clipnorm=1.0), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    assert "clipnorm" in stacked.why_not(clipped)
    assert lockstep.layout(clipped) == "side by side" and lockstep.layout(_factory(digits)(), stacking=False) == "side by side"


def _sgd_factory(d, optimizer, **kw):
    def make():
        m = models.build_mlp(d.input_shape, d.n_classes, depth=2, width=32, **kw)
        return models.compile_classifier(m, optimizer())
    return make


@pytest.mark.parametrize("stacking", [True, False])
def test_global_clipnorm_clips_each_replica_by_its_own_norm(digits, stacking):
    """Each replica is clipped by the global norm of its own gradients: the runs equal solo runs
    with global_clipnorm, and the clipping binds (they differ from unclipped runs)."""
    seeds, kept = [3, 4], {"lock": {}, "solo": {}, "plain": {}}
    clipped = _sgd_factory(digits, lambda: keras.optimizers.SGD(0.2, momentum=0.9, global_clipnorm=0.5),
                           batch_norm="before")
    assert lockstep.why_not(clipped()) is None and lockstep.layout(clipped(), stacking) == (
        "stacked" if stacking else "side by side")
    run = dict(epochs=1, batch_size=32, stacking=stacking)
    lock = experiments.run({"m": clipped}, digits, seeds, models=kept["lock"], **run)
    solo = experiments.run({"m": clipped}, digits, seeds, models=kept["solo"], lockstep=False, **run)
    plain = experiments.run({"m": _sgd_factory(digits, lambda: keras.optimizers.SGD(0.2, momentum=0.9),
                                               batch_norm="before")}, digits, seeds, models=kept["plain"], **run)
    assert (lock["lockstep"] == 2).all()
    _assert_same_runs(lock, solo, kept["lock"], kept["solo"], seeds, rtol=1e-4)
    assert not np.allclose(lock["loss"], plain["loss"], rtol=1e-2)


@pytest.mark.parametrize("stacking", [True, False])
def test_plateau_lowers_each_replicas_rate_on_its_own_loss(digits, stacking):
    """ReduceLROnPlateau runs once per replica in lockstep: each seed's rates and results equal
    its solo run's, and the seeds' rates part ways (so a shared rate could not pass)."""
    from dnnbook.optimizers import RateRecorder

    seeds, kept_l, kept_s, recorders = [3, 4, 5], {}, {}, []
    make = _sgd_factory(digits, lambda: keras.optimizers.SGD(0.2, momentum=0.9))

    def plateau():
        recorders.append(RateRecorder())  # reads the rate inside every update
        return [keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=1, min_delta=0.02), recorders[-1]]

    run = dict(epochs=6, batch_size=32, stacking=stacking, callbacks=plateau)
    lock = experiments.run({"m": make}, digits, seeds, models=kept_l, **run)
    solo = experiments.run({"m": make}, digits, seeds, models=kept_s, lockstep=False, **run)
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
        np.testing.assert_allclose(applied, rates[seed].to_numpy()[np.asarray(recorders[0].epochs) - 1], rtol=1e-6)


def test_plateau_needs_plain_sgd_in_lockstep(digits, capsys):
    adam = _sgd_factory(digits, lambda: keras.optimizers.Adam(1e-3))
    plateau = lambda: [keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=1)]  # noqa: E731
    df = experiments.run({"adam": adam}, digits, [1, 2], epochs=1, callbacks=plateau)
    assert (df["lockstep"] == 1).all()
    assert "seed after seed (per-replica rates need an update linear in the rate (plain SGD), not Adam" in capsys.readouterr().err
    accuracy = keras.callbacks.ReduceLROnPlateau("val_accuracy")
    assert "explicit mode" in lockstep.callbacks_problem([accuracy], _sgd_factory(digits, keras.optimizers.SGD)())
    with pytest.raises(ValueError, match="cannot train in lockstep: per-replica rates"):
        lockstep.fit([adam(), adam()], digits, epochs=1, batch_size=32, order_seed=0, callbacks=plateau())


def test_coupled_configs_fall_back_to_seed_after_seed(digits, capsys):
    regularized = _factory(digits, kernel_regularizer=keras.regularizers.L2(1e-3))()
    assert lockstep.why_not(regularized) is None
    active = _factory(digits)()
    active.layers[1].activity_regularizer = keras.regularizers.L2(1e-3)
    assert "activity" in lockstep.why_not(active)
    assert lockstep.why_not(_factory(digits)()) is None
    assert lockstep.why_not(_factory(digits, batch_norm="before")()) is None
    other = experiments.run({"m": _factory(digits)}, digits, [1, 2], epochs=1, fit_kwargs={"shuffle": False})
    assert (other["lockstep"] == 1).all()
    assert "seed after seed (fit options shuffle" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot train in lockstep: activity"):
        lockstep.fit([active, active], digits, epochs=1, batch_size=32, order_seed=0)


@pytest.mark.parametrize("kw, stacking", [(dict(batch_norm="before"), True), (dict(dropout=0.2), False)])
def test_steps_run_as_one_loop_train_as_step_by_step(digits, kw, stacking, monkeypatch):
    """With LoopedSteps on (JAX; by default only on a GPU) a call's steps run as one compiled
    loop; 13 batches per epoch in calls of 4: three loops of 4 and the short last batch alone.
    Same runs as 1 step per call."""
    from dnnbook.engine import backend

    assert not backend.loops_steps()  # off by default on a CPU, on every backend
    monkeypatch.setattr(backend, "LOOP_STEPS", True)
    seeds, make = [3, 4], _factory(digits, **kw)
    runs = {}
    for spe in (1, 4):
        kept = {}
        runs[spe] = experiments.run({"m": make}, digits, seeds, epochs=2, batch_size=32, models=kept,
                                    stacking=stacking, steps_per_execution=spe)
        runs[spe].attrs["kept"] = kept
    together = 1 if keras.backend.backend() == "torch" and "dropout" in kw else 2  # as above
    assert (runs[4]["lockstep"] == together).all()
    _assert_same_runs(runs[4], runs[1], runs[4].attrs["kept"], runs[1].attrs["kept"], seeds, rtol=1e-5)
    replicas = [make() for _ in seeds]
    combined = stacked.stack(replicas, 4) if stacking else lockstep.combine(replicas, 4)
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
    runs = {}
    for spe in (1, 8):
        kept = {}
        runs[spe] = experiments.run({"m": make}, digits, seeds, epochs=2, batch_size=32, models=kept,
                                    steps_per_execution=spe)
        runs[spe].attrs["kept"] = kept
    assert 8 in stacked_calls  # a call's 8 batches were stacked on the device, not as numpy arrays
    _assert_same_runs(runs[8], runs[1], runs[8].attrs["kept"], runs[1].attrs["kept"], seeds, rtol=1e-5)


def test_configs_that_differ_in_activation_and_init_train_as_one_stacked_model(digits, capsys):
    """Stacked configs with equal signatures (here: three activation/initializer pairings) train
    as one model, each replica as it trains in its own config's lockstep (which equals its solo
    run, see above); configs that differ otherwise train apart."""
    from dnnbook import gradients

    names = ["tanh + Glorot", "LeakyReLU + He", "SELU + LeCun"]
    configs = gradients.pairing_configs(names, digits.input_shape, digits.n_classes, depth=3, width=16,
                                     optimizer=lambda: keras.optimizers.SGD(0.05, momentum=0.9))
    seeds, kept_g, kept_a = [3, 4], {}, {}
    grouped = experiments.run(configs, digits, seeds, epochs=2, models=kept_g)
    assert (grouped["lockstep"] == 6).all() and "3 configs together" in capsys.readouterr().err
    apart = experiments.run(configs, digits, seeds, epochs=2, models=kept_a, group=False)
    assert (apart["lockstep"] == 2).all()
    cols = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]
    assert list(grouped["config"]) == list(apart["config"]) and list(grouped["seed"]) == list(apart["seed"])
    np.testing.assert_allclose(grouped[cols].to_numpy(), apart[cols].to_numpy(), rtol=1e-4, atol=1e-5)
    for key in kept_a:
        for a, b in zip(kept_g[key].get_weights(), kept_a[key].get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the pairings really differ (else one activation for all would pass)
    assert grouped.groupby("config", observed=True)["val_loss"].last().nunique() == len(names)


def test_signature_tells_stackable_configs_apart(digits):
    make = lambda lr=0.05, **kw: _factory(digits, **kw)() if lr == 0.05 else models.compile_classifier(  # noqa: E731
        models.build_mlp(digits.input_shape, digits.n_classes, depth=2, width=32, **kw), keras.optimizers.SGD(lr, momentum=0.9))
    base = stacked.signature(make())
    assert stacked.signature(make(activation="elu", initializer="glorot_uniform")) == base
    assert stacked.signature(make(lr=0.1)) != base
    assert stacked.signature(make(lr=0.1), own_rates=True) == stacked.signature(make(), own_rates=True)
    assert stacked.signature(make(batch_norm="before")) != base
    assert stacked.signature(make(kernel_regularizer=keras.regularizers.L2(1e-3))) != base


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the compiled loop is JAX's")
def test_solo_fits_and_transfer_phases_loop_where_lockstep_does(digits, monkeypatch):
    """With the loop on (as on a GPU), plain fits (seed after seed, and the phases of a transfer
    schedule) run several steps per call as one compiled loop and train what step by step trains;
    a per-batch callback keeps a fit step by step."""
    from dnnbook import pretraining
    from dnnbook.engine import backend

    def runs(loop: bool):
        monkeypatch.setattr(backend, "LOOP_STEPS", loop)
        kept: dict = {}
        solo = experiments.run({"m": _factory(digits)}, digits, [3, 4], epochs=2, batch_size=8, models=kept,
                               lockstep=False)  # 50 batches an epoch: three loops of 16 and 2 step by step
        make = lambda: (models.build_mlp(digits.input_shape, digits.n_classes, depth=1, width=16), [])  # noqa: E731
        cache: dict = {}
        moved = pretraining.train_schedule(make, digits, pretraining.Schedule(frozen_epochs=0, tuned_epochs=2, batch_size=8), seed=3,
                                        compiled=cache)
        return solo, kept, moved, cache["phases"][0][0]

    solo_on, kept_on, moved_on, phase_on = runs(True)
    solo_off, kept_off, moved_off, phase_off = runs(False)
    assert type(kept_on[("m", 3)]).__name__ == "LoopedSequential" and kept_on[("m", 3)].steps_per_execution == 16
    assert type(phase_on).__name__ == "LoopedSequential" and type(phase_off) is keras.Sequential
    assert kept_on[("m", 3)].train_function.__qualname__.startswith("_looped_train_function")
    assert phase_on.train_function.__qualname__.startswith("_looped_train_function")
    _assert_same_runs(solo_on, solo_off, kept_on, kept_off, [3, 4], rtol=1e-5)
    cols = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]
    np.testing.assert_allclose(moved_on[cols].to_numpy(), moved_off[cols].to_numpy(), rtol=1e-5)
    monkeypatch.setattr(backend, "LOOP_STEPS", True)
    from dnnbook.optimizers import LRFinder
    _, model = experiments.train(_factory(digits), digits, seed=3, epochs=1, callbacks=[LRFinder(steps=5)])
    assert type(model) is keras.Sequential  # the finder sets the rate between steps


def test_configs_that_differ_in_rate_or_schedule_train_as_one_model_at_their_own_rates(digits, capsys):
    """Plain-SGD configs that differ only in their learning rate or schedule train as one model,
    each replica at its own rate (a factor on its gradients): each run and the rate recorded at
    every update equal what the config's own lockstep gives; a plateau schedule, which acts on
    the training, trains apart."""
    from dnnbook import optimizers

    make = lambda rate: _sgd_factory(digits, lambda: keras.optimizers.SGD(rate, momentum=0.9))()  # noqa: E731
    suite, promises = optimizers.schedule_suite(make, 0.05, 13, 3)
    seeds, kept_g, kept_a = [3, 4], {}, {}
    suite["fast"] = (lambda: make(0.2), lambda: [])
    grouped, rates_g = optimizers.run_schedules(suite, digits, seeds, epochs=3)
    err = capsys.readouterr().err
    assert "6 configs together" in err and "performance, 2 seeds in lockstep (stacked): " in err
    assert (grouped[grouped["config"] != "performance"]["lockstep"] == 12).all()
    apart, rates_a = optimizers.run_schedules(suite, digits, seeds, epochs=3, group=False)
    assert (apart["lockstep"] == 2).all()
    cols = ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert list(grouped["config"]) == list(apart["config"]) and list(grouped["seed"]) == list(apart["seed"])
    np.testing.assert_allclose(grouped[cols].to_numpy(), apart[cols].to_numpy(), rtol=1e-4, atol=1e-5)
    assert list(rates_g["config"]) == list(rates_a["config"]) and list(rates_g["seed"]) == list(rates_a["seed"])
    np.testing.assert_allclose(rates_g["rate"], rates_a["rate"], rtol=1e-6)
    assert optimizers.rate_errors(rates_g, grouped, promises).max() < 1e-5
    # the rates really differ (else one rate for all would pass); the plateau may not act this soon
    together = grouped[grouped["config"] != "performance"]
    assert together.groupby("config", observed=True)["val_loss"].last().nunique() == len(suite) - 1


def test_own_rates_side_by_side_and_where_they_are_refused(digits):
    """Side by side too, replicas of different rates each train as a solo run at their rate;
    an optimizer whose update is not linear in the rate keeps configs of different rates apart."""
    rates, seeds = [0.02, 0.1, 0.3], [3, 4, 5]
    sgd = lambda rate: _sgd_factory(digits, lambda: keras.optimizers.SGD(rate, momentum=0.9, nesterov=True))  # noqa: E731
    replicas = []
    for seed, rate in zip(seeds, rates):
        keras.utils.set_random_seed(seed)
        replicas.append(sgd(rate)())
    lock = lockstep.fit(replicas, digits, epochs=2, batch_size=32, order_seed=seeds[0], stacking=False)
    for seed, rate, replica, frame in zip(seeds, rates, replicas, lock):
        solo, model = experiments.train(sgd(rate), digits, seed=seed, epochs=2, order_seed=seeds[0], evaluate_test=False)
        np.testing.assert_allclose(frame["val_loss"], solo["val_loss"], rtol=1e-4)
        for a, b in zip(replica.get_weights(), model.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    adam = {f"adam {r}": _sgd_factory(digits, lambda r=r: keras.optimizers.Adam(r)) for r in (1e-3, 1e-2)}
    df = experiments.run(adam, digits, seeds[:2], epochs=1)
    assert (df["lockstep"] == 2).all()
    with pytest.raises(ValueError, match="different learning rates in lockstep: per-replica rates need .* not Adam"):
        lockstep.fit([adam["adam 0.001"](), adam["adam 0.01"]()], digits, epochs=1, batch_size=32, order_seed=0)
