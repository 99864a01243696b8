"""The training engine: seeds in lockstep (the seeds of one configuration trained as one model).

``lockstep`` (stack K replicas into K-wide layers and fit them together), ``stackable`` (which
models, callbacks and configurations can), ``devices`` (the replicas over several devices),
``replica_grads`` (per-replica gradient clipping and plateau rates inside the one optimizer),
``callbacks`` (what every training loop shares) and ``backend`` (what the engine does per
backend: JAX's state sync and its compiled loop of steps).
:func:`dnnbook.experiments.run` is the entry point the chapters use.
"""
