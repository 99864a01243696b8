"""Jupyter kernels on private IPC sockets instead of TCP ports.

A kernel manager picks its kernel's TCP ports by binding free ones and releasing them for the
kernel to take. Kernels started at the same moment by separate processes (chapters executed with
``--jobs``, nbval under pytest-xdist) can pick the same port; the second kernel then dies
("Address already in use") and its chapter fails after a 60-second start-up timeout. Unix sockets
at a path unique to each kernel cannot collide. papermill gets :class:`AsyncIPCKernelManager`;
loaded as a pytest plugin (``-p dnnbook.book.kernels``), this module gives nbval's kernels the same.
"""

from __future__ import annotations

import os
import tempfile
import uuid

from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import CaselessStrEnum, HasTraits, default


class _OwnSockets(HasTraits):
    """Unix sockets (``transport="ipc"``) at a path unique to this kernel manager."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _ip_default(self) -> str:
        return os.path.join(tempfile.gettempdir(), f"dnnbook-kernel-{uuid.uuid4().hex[:12]}")


class IPCKernelManager(_OwnSockets, KernelManager):
    """A kernel manager whose kernel listens on Unix sockets at a path of its own."""


class AsyncIPCKernelManager(_OwnSockets, AsyncKernelManager):
    """The asynchronous twin of :class:`IPCKernelManager` (what papermill's client uses)."""


def pytest_configure(config) -> None:  # noqa: ANN001 (pytest's Config)
    """As a pytest plugin: nbval starts its kernels with :class:`IPCKernelManager`."""
    import nbval.kernel

    nbval.kernel.KernelManager = IPCKernelManager
