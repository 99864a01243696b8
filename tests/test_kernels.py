"""Kernels on private IPC sockets: chapters and nbval started side by side cannot race for a port."""

import subprocess

import nbformat
import papermill as pm

from dnnbook.book import pipeline
from dnnbook.book.kernels import AsyncIPCKernelManager, IPCKernelManager

TRANSPORT = "from ipykernel.kernelapp import IPKernelApp\napp = IPKernelApp.instance()\nprint(app.transport, app.ip)"


def _notebook(path, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def test_every_manager_gets_its_own_socket_path():
    a, b = IPCKernelManager(), AsyncIPCKernelManager()
    assert a.transport == b.transport == "ipc" and a.ip != b.ip and a.ip != IPCKernelManager().ip


def test_papermill_kernel_listens_on_ipc(tmp_path):
    _notebook(tmp_path / "in.ipynb", TRANSPORT)
    out = pm.execute_notebook(
        str(tmp_path / "in.ipynb"),
        str(tmp_path / "out.ipynb"),
        kernel_name="python3",
        progress_bar=False,
        kernel_manager_class=AsyncIPCKernelManager,
    )
    transport, ip = out.cells[0].outputs[0]["text"].split()
    assert transport == "ipc" and "dnnbook-kernel-" in ip


def test_nbval_kernels_listen_on_ipc_with_the_plugin(tmp_path):
    _notebook(
        tmp_path / "check.ipynb", TRANSPORT + "\nassert app.transport == 'ipc', app.transport"
    )
    paths = [tmp_path / "check.ipynb"]
    with_plugin = pipeline.nbval_command(paths, tmp_path)
    assert subprocess.run(with_plugin, cwd=tmp_path, capture_output=True).returncode == 0
    cmd = pipeline.nbval_command(paths, tmp_path, plugin=False)
    without = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert without.returncode != 0 and "tcp" in without.stdout  # the check can fail: TCP by default
