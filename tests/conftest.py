import gzip
import os
import struct
from pathlib import Path

import nbformat
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


def chapter_notebook(path, code):
    """A chapter source: title, a parameters cell (PROFILE, SEED), one code cell."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('PROFILE = "quick"\nSEED = 42')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {path.stem}"),
        params,
        nbformat.v4.new_code_cell(code),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.fixture
def fake_book(tmp_path, tiny_fashion):
    """A small book: chapter 00_fine (one claim) and 01_boom (raises); its root and the
    environment that points the pipeline at it."""
    root = tmp_path / "book"
    (root / "chapters").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "intro.md", "_static", "nbval_sanitize.cfg"):
        src = ROOT / name
        dst = root / name
        if src.is_dir():
            import shutil

            shutil.copytree(src, dst)
        else:
            dst.write_text(src.read_text())
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: Chapters\n    chapters:\n"
        "      - file: chapters/00_fine\n      - file: chapters/01_boom\n"
        "  - caption: About\n    chapters:\n      - file: defaults\n      - file: article\n"
        "      - file: claims\n"
        "      - file: sweep\n      - file: status\n"
    )
    chapter_notebook(
        root / "chapters" / "00_fine.ipynb",
        "from dnnbook.claims import claim\nprint('backend fake | profile', PROFILE, '| seed', SEED)\n"
        "claim('one is one', 1 == 1, 'checked')",
    )
    chapter_notebook(
        root / "chapters" / "01_boom.ipynb", "x = 1\nraise ValueError('boom in the chapter')"
    )
    env = {"DNNBOOK_ROOT": str(root), "DNNBOOK_BUILD": str(root / "_build")}
    return root, env
