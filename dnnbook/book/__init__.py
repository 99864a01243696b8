"""The book pipeline: execute chapters (papermill), validate them (nbval), build the HTML book.

``cli`` (``python -m dnnbook``), ``pipeline`` (the steps), ``kernels`` (Jupyter kernels on IPC
sockets), ``pages`` (the claims index and status pages), ``defaults`` (the defaults page).
"""
