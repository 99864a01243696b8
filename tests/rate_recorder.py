"""A callback for engine tests: it records the learning rate every update applies, from
inside the update itself, through the optimizer hooks of :mod:`dnnbook.engine.replica_grads`."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from dnnbook.engine.backend import sync


class RateRecorder(keras.callbacks.Callback):
    """Records the learning rate every update applies, from inside the update itself.

    :meth:`prepare` hooks the (unbuilt) optimizer before ``fit`` (:func:`dnnbook.experiments.run`
    calls it): each update writes the rate it is applying into an optimizer variable, at the row
    of its iteration, and the recording is read back once, at the end of training. It acts at no
    step boundary, so steps can run several per call, and one recorder may serve all the seeds
    of a lockstep fit (``lockstep_safe``): it records each replica's rate, which differ where a
    ``ReduceLROnPlateau`` runs per replica (:mod:`dnnbook.engine.replica_grads`).
    :func:`dnnbook.experiments.run` tells it which ``(config, seed)`` runs it served, in :attr:`runs`."""

    lockstep_safe = True
    runs: list = []  # the (config, seed) of each replica it recorded, in order

    def prepare(self, optimizer: keras.optimizers.Optimizer, updates: int) -> None:
        """Hook ``optimizer`` (not yet built) to record the rates of up to ``updates`` updates."""
        from dnnbook.engine.replica_grads import with_hooks

        if optimizer.built:
            raise ValueError("prepare the rate recorder before the optimizer is built (before fit)")
        optimizer = with_hooks(optimizer)  # its public update method runs hooks first
        width = optimizer.replicas
        self._log = optimizer.add_variable(
            (int(updates) + 1, width), dtype="float32", name="applied_rates"
        )
        self._optimizer = optimizer

        def record(opt) -> None:
            row = ops.minimum(
                ops.cast(opt.iterations, "int32"), int(updates)
            )  # the last row: overflow
            rates = ops.reshape(opt.applied_rates(), (1, width))
            self._log.assign(ops.slice_update(ops.convert_to_tensor(self._log), (row, 0), rates))

        optimizer.hooks = (*optimizer.hooks, record)

    def on_train_begin(self, logs: dict | None = None) -> None:
        if getattr(self, "_log", None) is None:
            raise ValueError("RateRecorder.prepare(optimizer, updates) must be called before fit")
        self.rates: list = []
        self.epochs: list[int] = []

    def on_train_end(self, logs: dict | None = None) -> None:
        sync(self.model)
        n = int(ops.convert_to_numpy(self._optimizer.iterations))
        log = ops.convert_to_numpy(self._log).astype(float)
        if n >= len(log):
            raise ValueError(
                f"the rate recorder was prepared for {len(log) - 1} updates, but {n} ran"
            )
        per_epoch = self.params["steps"]
        self.rates = [row[0] if len(row) == 1 else row for row in log[:n]]
        self.epochs = [t // per_epoch + 1 for t in range(n)]

    def rates_of(self, replica: int) -> list[float]:
        """The rates replica ``replica`` used."""
        return [float(r[replica]) if np.ndim(r) else float(r) for r in self.rates]
