"""Seeds in lockstep spread over several devices with keras.distribution (JAX)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from dnnbook.engine import devices

HERE = Path(__file__).resolve().parent


def test_mesh_size_divides_the_replicas():
    assert devices.mesh_size(8, 4) == 4
    assert devices.mesh_size(6, 4) == 3
    assert devices.mesh_size(5, 4) == 1
    assert devices.mesh_size(3, 8) == 3
    with pytest.raises(ValueError, match="at least one replica"):
        devices.mesh_size(0, 4)


def test_no_distribution_on_one_device_or_outside_jax():
    """Replicas that would all go to one device train without a distribution; outside JAX
    there is none to make."""
    jax = keras.backend.backend() == "jax"  # Keras lists devices under JAX (and TensorFlow)
    one = keras.distribution.list_devices()[:1] if jax else None
    dist = devices.replica_distribution(4, one)
    if jax:
        assert dist.device_mesh.shape == (1, 1)
    else:
        assert dist is None
    with devices.spread(4, one) as spread:
        assert spread is None
    with devices.spread(1) as spread:  # one replica: one device, however many there are
        assert spread is None


def _four_devices() -> dict[str, str]:
    """The environment for a JAX process with 4 virtual CPU devices.

    XLA's CPU client runs each device's share of a program on a pool of threads sized by the
    machine's cores (2 here), and a share that reaches a collective holds its thread until
    the other devices' shares arrive. With programs queued ahead of the host (JAX dispatches
    asynchronously) the pool can fill with shares that wait on shares still queued behind them:
    on a 2-core machine, queued all-reduce programs over 4 devices never ended, nor over 2
    devices, nor with a pool of 4 threads; with 8 to 64 they end in 0.3 s (`PJRT_NPROC` sets
    the pool's size; docs/results.md). 16 threads for 4 devices, whatever the cores."""
    return {
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "PJRT_NPROC": str(max(16, os.cpu_count() or 1)),
    }


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="runs its own JAX process once, in the JAX pass"
)
def test_sharded_fit_equals_one_device():
    """8 replicas on 4 virtual CPU devices: each device holds 2 of every stacked weight and
    optimizer slot, and the fit's metrics equal those on a mesh of one device (float
    tolerance), with Keras's train function and with the compiled loop of steps. The process
    first queues 50 all-reduce programs, which never end where XLA's CPU pool is too small."""
    env = {**os.environ, **_four_devices()}
    try:
        out = subprocess.run(
            [sys.executable, str(HERE / "sharded_fit.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as e:
        err = e.stderr or b""  # bytes even with text=True
        tail = (err.decode(errors="replace") if isinstance(err, bytes) else err)[-2000:]
        pytest.fail(f"sharded_fit.py did not end in 300 s (an XLA collective waiting?):\n{tail}")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 4
    assert set(result["largest_difference"]) == {"loop=False", "loop=True"}
    assert max(result["largest_difference"].values()) < 1e-5
    assert result["mesh_of_5"] == 1
    kernels = [p for p in result["shards"] if "kernel" in p]
    assert len(kernels) == 3 * 3  # 3 kernels and Adam's 2 slots of each
    for path, shards in result["shards"].items():
        assert len(shards) == 4, path
        assert all(s[0] in (2, 2 * 32, 2 * 10) for s in shards), (path, shards)
