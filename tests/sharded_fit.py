"""Run by test_engine_devices in a JAX process with 4 virtual CPU devices: a lockstep fit with
its replicas spread over the 4 devices and the same fit on a mesh of one device, with
Keras's train function and with the compiled loop of steps; prints JSON."""

import json

import keras
import numpy as np

from dnnbook import data, models
from dnnbook.engine import backend, devices, lockstep
from dnnbook.runtime import seed_everything

d = data.load("digits", n_train=400, n_valid=100, n_test=100, seed=0)
SEEDS = [1, 2, 3, 4, 5, 6, 7, 8]


def replicas() -> list[keras.Model]:
    out = []
    for seed in SEEDS:
        seed_everything(seed)
        m = models.build_mlp(d.input_shape, d.n_classes, depth=2, width=32, batch_norm="before")
        out.append(models.compile_classifier(m, keras.optimizers.Adam(1e-2)))
    return out


def fit() -> np.ndarray:
    frames = lockstep.fit(replicas(), d, epochs=2, batch_size=32, order_seed=1, evaluate_test=True)
    return np.stack([f.drop(columns="epoch_time").to_numpy() for f in frames])


every = keras.distribution.list_devices()


def queued_all_reduces(n: int = 50) -> None:
    """A chain of n all-reduce programs over every device, dispatched without waiting: where
    XLA's CPU thread pool is too small for the shares queued (see test_engine_devices), this
    never ends, at once rather than now and then."""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    sharding = NamedSharding(Mesh(jax.devices(), ("x",)), PartitionSpec("x"))
    step = jax.jit(lambda a: jax.numpy.tanh(a).sum() * a, out_shardings=sharding)
    x = jax.device_put(np.ones((len(every), 20000), "float32"), sharding)
    for _ in range(n):
        x = step(x)
    jax.block_until_ready(x)


queued_all_reduces()
differences = {}
for loop in (False, True):  # Keras's train function, then the compiled loop of steps
    backend.LOOP_STEPS = loop
    spread = fit()
    with devices.replica_distribution(len(SEEDS), every[:1]).scope():
        one = fit()
    differences[f"loop={loop}"] = float(np.abs(spread - one).max())
with devices.spread(len(SEEDS)):  # where the stacked weights and optimizer slots live
    model = lockstep.stack(replicas())
    model.optimizer.build(model.trainable_variables)
    shards = {
        v.path: [list(s.data.shape) for s in v.value.addressable_shards]
        for v in [*model.weights, *model.optimizer.variables]
        if "stacked_" in v.path
    }
print(
    json.dumps(
        {
            "devices": len(every),
            "largest_difference": differences,
            "shards": shards,
            "mesh_of_5": devices.mesh_size(5, len(every)),
        }
    )
)
