import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as a gzipped IDX file, the format of MNIST and Fashion-MNIST."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


@pytest.fixture
def tiny_fashion(tmp_path, monkeypatch):
    """A fake Fashion-MNIST folder (IDX .gz files) with 60 train and 20 test images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "fmnist"
    folder.mkdir()
    y_train = np.arange(60) % 10
    y_test = np.arange(20) % 10
    x_train = rng.integers(0, 256, size=(60, 28, 28))
    x_train[:, 0, 0] = y_train  # a pixel that identifies each image's label
    write_idx(folder / "train-images-idx3-ubyte.gz", x_train)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y_train)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, size=(20, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y_test)
    monkeypatch.setenv("DNNBOOK_DATA", str(folder))
    return folder
