"""The training engine: seeds in lockstep (several runs trained as one Keras model).

``callbacks`` (what every training loop shares), ``lockstep`` (fit K replicas together),
``stacked`` (K replicas fused into K-wide layers), ``replica_grads`` (per-replica gradient
treatments inside the one optimizer) and ``backend`` (the code that branches on the backend).
:func:`dnnbook.experiments.run` is the entry point the chapters use.
"""
