"""Data sets as train/valid/test splits: Fashion-MNIST (real IDX files) and scikit-learn's
digits (a small set for tests).

Validation is always split from the training set, never from the test set.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAMES = ("fashion_mnist", "digits")
X_SPLITS = ("x_train", "x_valid", "x_test")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
# the files as published (Zalando's release, mirrored by Keras): size in bytes and SHA-256.
# Debian's package recompresses them (a few bytes shorter), so only downloads are held to these.
FASHION_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FASHION_PUBLISHED = {
    "train-images-idx3-ubyte.gz": (
        26421880,
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    ),
    "train-labels-idx1-ubyte.gz": (
        29515,
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    ),
    "t10k-images-idx3-ubyte.gz": (
        4422102,
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        5148,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ),
}
KERAS_SUBDIR = "datasets/fashion-mnist"  # where keras.datasets.fashion_mnist caches it
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_DIR: Path | None = None  # None: Keras's own cache folders (see keras_dirs)
HOW_TO_GET = (
    "get it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
    "or `python -m dnnbook data` where there is internet, or point $DNNBOOK_DATA "
    "at a folder holding the four IDX .gz files"
)
HOW_TO_FIX = (
    "delete it and fetch it again: `make data`, or `DNNBOOK_DOWNLOAD=1 python -m dnnbook data` "
    "(a Keras download is checked against the published SHA-256)"
)


class DataError(RuntimeError):
    """A data set is unknown, missing or unreadable."""


@dataclass(frozen=True)
class Splits:
    """Arrays of one data set; ``x`` float32 scaled to [0, 1] unless ``raw`` was asked."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.x_train), "valid": len(self.x_valid), "test": len(self.x_test)}


class DamagedFile(DataError):
    """A data file is truncated or corrupt (e.g. an interrupted download)."""


def damaged(path: str | os.PathLike, why: str) -> DamagedFile:
    """The error for a damaged data file: which file, what is wrong, how to fix it."""
    return DamagedFile(f"{path} is damaged ({why}), e.g. by an interrupted download; " + HOW_TO_FIX)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or not) into a NumPy array of its stored shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) != 4 or head[0] != 0 or head[1] != 0:
                raise DataError(f"{path} is not an IDX file (bad magic number)")
            dtype = {
                0x08: np.uint8,
                0x09: np.int8,
                0x0B: ">i2",
                0x0C: ">i4",
                0x0D: ">f4",
                0x0E: ">f8",
            }.get(head[2])
            if dtype is None:
                raise DataError(f"{path}: unknown IDX type code 0x{head[2]:02x}")
            ndim = head[3]
            shape = struct.unpack(f">{ndim}I", fh.read(4 * ndim))
            data = np.frombuffer(fh.read(), dtype=dtype)
    except (EOFError, zlib.error, gzip.BadGzipFile, struct.error) as exc:
        raise damaged(path, f"{type(exc).__name__}: {exc}") from None
    if data.size != int(np.prod(shape)):
        raise damaged(path, f"expected {int(np.prod(shape))} values, found {data.size}: truncated")
    return data.reshape(shape)


def keras_dirs() -> list[Path]:
    """Where Keras caches Fashion-MNIST: ``$KERAS_HOME`` (default ``~/.keras``), or
    ``/tmp/.keras`` where that is not writable (as ``keras.utils.get_file`` does)."""
    if KERAS_DIR is not None:
        return [Path(KERAS_DIR)]
    return list(dict.fromkeys([keras_home() / KERAS_SUBDIR, Path("/tmp/.keras") / KERAS_SUBDIR]))


def keras_home() -> Path:
    """``$KERAS_HOME``, else ``~/.keras`` (read when called, not when Keras was imported)."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()


def published_mismatch(path: Path) -> str | None:
    """Why ``path`` is not the published Fashion-MNIST file of its name (its size, then its
    SHA-256), or None when it is."""
    size, sha256 = FASHION_PUBLISHED[path.name]
    actual = path.stat().st_size
    if actual != size:
        return f"{actual} bytes instead of {size}"
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return None if h.hexdigest() == sha256 else "its SHA-256 differs from the published one"


def fashion_mnist_dirs() -> list[Path]:
    """Where Fashion-MNIST is looked up, in order."""
    dirs = []
    if os.environ.get("DNNBOOK_DATA"):
        env = Path(os.environ["DNNBOOK_DATA"]).expanduser()
        dirs += [env / "fashion-mnist", env]
    return dirs + [DEBIAN_DIR, *keras_dirs()]


def _cache_damage(folder: Path) -> list[str]:
    """The damaged files of a Keras cache folder: there every file is a download, so one of
    the wrong size is an interrupted one (the cheap check; the SHA-256 is checked on download)."""
    found = []
    for name, (size, _) in FASHION_PUBLISHED.items():
        actual = (folder / name).stat().st_size
        if actual != size:
            found.append(str(damaged(folder / name, f"{actual} bytes instead of {size}")))
    return found


def find_fashion_mnist() -> Path | None:
    """The first folder holding all four Fashion-MNIST files, or None; a Keras cache folder
    with a damaged (wrong-sized) file does not count."""
    caches = keras_dirs()
    for d in fashion_mnist_dirs():
        if all((d / f).is_file() for f in FASHION_FILES.values()):
            if d in caches and _cache_damage(d):
                continue
            return d
    return None


def _fetch(name: str) -> Path:
    """Download one published file into Keras's cache; the path Keras returns (it honours
    ``$KERAS_HOME`` and falls back to ``/tmp/.keras``). Keras checks the SHA-256 and
    downloads again a cached copy that does not match it."""
    import keras

    home = keras_home()
    try:
        home.mkdir(parents=True, exist_ok=True)  # Keras uses /tmp/.keras if it is missing
    except OSError:
        pass  # not writable: Keras falls back to /tmp/.keras, and says so in the path it returns
    return Path(
        keras.utils.get_file(
            name,
            origin=FASHION_ORIGIN + name,
            cache_dir=str(home),
            cache_subdir=KERAS_SUBDIR,
            file_hash=FASHION_PUBLISHED[name][1],
        )
    )


def download_fashion_mnist() -> Path:
    """Download Fashion-MNIST into the Keras cache (needs internet); return its folder."""
    try:
        paths = [_fetch(name) for name in FASHION_FILES.values()]
    except Exception as exc:
        raise DataError(
            f"downloading Fashion-MNIST failed ({type(exc).__name__}: {exc}); " + HOW_TO_GET
        ) from None
    folders = {p.parent for p in paths}
    bad = [f"{p}: {why}" for p in paths if (why := published_mismatch(p))]
    if len(folders) != 1 or bad:
        raise DataError(
            "the downloaded Fashion-MNIST files are not the published ones ("
            + "; ".join(bad or map(str, paths))
            + "); "
            + HOW_TO_FIX
        )
    return folders.pop()


def _read_fashion(folder: Path) -> tuple[np.ndarray, ...]:
    return tuple(
        read_idx(folder / FASHION_FILES[k]) for k in ("x_train", "y_train", "x_test", "y_test")
    )


def _fashion(download: bool) -> tuple[Path, tuple[np.ndarray, ...]]:
    folder = find_fashion_mnist()
    if folder is None and download:
        folder = download_fashion_mnist()
    if folder is None:
        looked = ", ".join(str(d) for d in fashion_mnist_dirs())
        seen = [
            msg
            for d in keras_dirs()
            if all((d / f).is_file() for f in FASHION_FILES.values())
            for msg in _cache_damage(d)
        ]
        if seen:
            raise DataError(seen[0] + f" (Fashion-MNIST was looked up in: {looked})")
        raise DataError(f"Fashion-MNIST not found (looked in: {looked}); " + HOW_TO_GET)
    try:
        return folder, _read_fashion(folder)
    except DamagedFile:
        if not download:
            raise
    folder = download_fashion_mnist()  # a damaged copy: fetch the published one
    return folder, _read_fashion(folder)


def ensure_fashion_mnist(download: bool = True) -> Path:
    """The folder of a Fashion-MNIST copy whose four files read cleanly, downloaded (or
    downloaded again, when the copy found is damaged) if ``download``; else a clear error."""
    return _fashion(download)[0]


def _digits() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images * (255.0 / 16.0)).astype(np.uint8)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, d.target.astype(np.uint8), test_size=0.25, random_state=0, stratify=d.target
    )
    return x_tr, y_tr, x_te, y_te


def load(
    name: str,
    *,
    n_train: int | None = None,
    n_valid: int = 5000,
    n_test: int | None = None,
    seed: int = 0,
    raw: bool = False,
    download: bool | None = None,
) -> Splits:
    """Load ``name`` (``fashion_mnist`` or ``digits``) as :class:`Splits`.

    ``n_valid`` examples are split off the training set (shuffled with ``seed``), then
    ``n_train`` (default: all the rest) are kept; ``n_test`` caps the test set. Pixel images
    are scaled to [0, 1] float32 unless ``raw=True`` (uint8 0-255). ``download`` lets Keras
    fetch Fashion-MNIST when no local copy is found (default: only in Colab or when
    ``$DNNBOOK_DOWNLOAD=1``).
    """
    if download is None:
        from dnnbook.runtime import in_colab

        download = in_colab() or os.environ.get("DNNBOOK_DOWNLOAD") == "1"
    if name not in NAMES:
        raise DataError(f"unknown data set {name!r}; choose one of: {', '.join(NAMES)}")
    for label, value in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 0):
            raise DataError(f"{label} must be a non-negative int, got {value!r}")
    if name == "fashion_mnist":
        x_tr, y_tr, x_te, y_te = _fashion(download)[1]
        classes = FASHION_CLASSES
    else:
        x_tr, y_tr, x_te, y_te = _digits()
        classes = tuple(str(i) for i in range(10))
    if n_valid >= len(x_tr):
        raise DataError(
            f"n_valid={n_valid} leaves no training data ({len(x_tr)} training examples)"
        )
    order = np.random.default_rng(seed).permutation(len(x_tr))
    valid_idx, train_idx = order[:n_valid], order[n_valid:]
    if n_train is not None:
        if n_train > len(train_idx):
            raise DataError(
                f"n_train={n_train} but only {len(train_idx)} training examples "
                f"remain after the {n_valid}-example validation split"
            )
        train_idx = train_idx[:n_train]
    if n_test is not None:
        if n_test > len(x_te):
            raise DataError(f"n_test={n_test} but the test set has {len(x_te)} examples")
        x_te, y_te = x_te[:n_test], y_te[:n_test]

    def prep(x: np.ndarray) -> np.ndarray:
        return x if raw else x.astype(np.float32) / 255.0

    return Splits(
        prep(x_tr[train_idx]),
        y_tr[train_idx].astype(np.int64),
        prep(x_tr[valid_idx]),
        y_tr[valid_idx].astype(np.int64),
        prep(x_te),
        y_te.astype(np.int64),
        classes,
    )


def standardize(splits: Splits) -> Splits:
    """Scale every split with the training set's per-feature mean and std."""
    mean = splits.x_train.mean(axis=0, keepdims=True)
    std = splits.x_train.std(axis=0, keepdims=True) + 1e-7
    scaled = {k: ((getattr(splits, k) - mean) / std).astype(np.float32) for k in X_SPLITS}
    return dataclasses.replace(splits, **scaled)
