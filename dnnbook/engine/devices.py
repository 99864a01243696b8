"""Seeds in lockstep over every visible device, through ``keras.distribution`` (JAX).

A stacked model holds its K replicas along the first axis of every weight (kernels ``(K, in,
out)``, biases and batch-norm statistics ``(K·units,)``). :func:`replica_distribution` shards
that axis over a one-dimensional device mesh with Keras's ``ModelParallel`` and a ``LayoutMap``:
each device holds and trains its share of the replicas, the optimizer's slots follow their
weights, and the batches are copied to every device. XLA places the computation by the
weights' layout; nothing here moves data by hand. The mesh takes the most visible devices that
divide K evenly (5 seeds on 4 GPUs: 1 device; 40 runs: 4). Where that is one device, no
distribution is set: Keras's JAX trainer under a distribution over a mesh of one device took
about 40% longer per fit on a 2-core CPU (3 seeds of the baseline, 5 epochs: 6.2–6.6 s against
4.5–4.6 s), for nothing to share. Under TensorFlow and PyTorch the stacked model runs on one
device, as Keras places it.

Several hosts: start every host's process with ``keras.distribution.initialize(...)`` (see its
docstring: the coordinator address, the number of processes and this one's id, or the
environment variables it reads) before dnnbook trains anything; the mesh then spans the
devices of all hosts.

Virtual CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``, for trying this
without GPUs): give XLA's CPU thread pool more threads than the cores, e.g. ``PJRT_NPROC=16``.
With its default pool (one thread per core) programs queued over several devices can wait on
each other forever in their collectives (``tests/test_engine_devices.py``).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import keras
from keras.distribution import DeviceMesh, LayoutMap, ModelParallel

# axes of the mesh: the batch (not split: each device sees every example) and the replicas
AXES = ("batch", "replica")
# the stacked weights by path (every stacked layer's name starts with ``stacked_``), and the
# layout of each: the replica axis first, split over the mesh's ``replica`` axis
LAYOUTS = {
    r"stacked_[^/]*/kernel": ("replica", None, None),
    r"stacked_[^/]*/(bias|gamma|beta|moving_mean|moving_variance|alpha)": ("replica",),
}


def mesh_size(k: int, devices: int) -> int:
    """The most devices, of ``devices``, that share ``k`` replicas evenly."""
    if k < 1 or devices < 1:
        raise ValueError(f"need at least one replica and one device, got {k} and {devices}")
    return max(n for n in range(1, min(k, devices) + 1) if k % n == 0)


def replica_distribution(k: int, devices: list[str] | None = None) -> ModelParallel | None:
    """A ``ModelParallel`` distribution of a K-replica stacked model over ``devices`` (default:
    every device JAX sees), or None where the backend is not JAX."""
    if keras.backend.backend() != "jax":
        return None
    devices = list(devices or keras.distribution.list_devices())
    n = mesh_size(k, len(devices))
    mesh = DeviceMesh(shape=(1, n), axis_names=AXES, devices=devices[:n])
    layout = LayoutMap(mesh)
    for path, axes in LAYOUTS.items():
        layout[path] = axes
    return ModelParallel(layout_map=layout, batch_dim_name=AXES[0])


@contextlib.contextmanager
def spread(k: int, devices: list[str] | None = None) -> Iterator[ModelParallel | None]:
    """Build, fit and evaluate a K-replica stacked model inside this context to spread its
    replicas over the devices (:func:`replica_distribution`); a plain context where they would
    all go to one device, where the backend is not JAX, or where a distribution is already set
    (the caller's own)."""
    dist = None if keras.distribution.distribution() else replica_distribution(k, devices)
    if dist is None or dist.device_mesh.shape[-1] == 1:
        yield None
        return
    with dist.scope():
        yield dist
