import numpy as np
import pytest

from dnnbook import data
from tests.conftest import write_idx


def test_read_idx_round_trip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", arr)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), arr)


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    import gzip

    with gzip.open(tmp_path / "bad.gz", "wb") as fh:
        fh.write(b"\x01\x02\x08\x01\x00\x00\x00\x05abcde")
    with pytest.raises(data.DataError, match="not an IDX"):
        data.read_idx(tmp_path / "bad.gz")
    with gzip.open(tmp_path / "short.gz", "wb") as fh:
        fh.write(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(tmp_path / "short.gz")


def test_load_fashion_mnist_splits_validation_off_training(tiny_fashion):
    s = data.load("fashion_mnist", n_train=30, n_valid=20, n_test=10, seed=3)
    assert s.sizes() == {"train": 30, "valid": 20, "test": 10}
    assert s.x_train.dtype == np.float32 and 0.0 <= s.x_train.min() and s.x_train.max() <= 1.0
    assert s.class_names == data.FASHION_CLASSES and s.input_shape == (28, 28)
    # the label pixel proves train and valid images come from the training file, disjoint
    train_ids = {tuple(x.ravel()[:50]) for x in (s.x_train * 255).round().astype(int)}
    valid_ids = {tuple(x.ravel()[:50]) for x in (s.x_valid * 255).round().astype(int)}
    assert not train_ids & valid_ids
    np.testing.assert_array_equal((s.x_train[:, 0, 0] * 255).round(), s.y_train)
    np.testing.assert_array_equal((s.x_valid[:, 0, 0] * 255).round(), s.y_valid)


def test_load_is_reproducible_and_raw_keeps_pixels(tiny_fashion):
    a = data.load("fashion_mnist", n_valid=10, seed=1)
    b = data.load("fashion_mnist", n_valid=10, seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    raw = data.load("fashion_mnist", n_valid=10, seed=1, raw=True)
    assert raw.x_train.dtype == np.uint8 and raw.x_train.max() > 1


def test_unknown_name_lists_choices():
    with pytest.raises(data.DataError, match="unknown data set 'cifar'.*fashion_mnist, digits"):
        data.load("cifar")


def test_missing_data_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DNNBOOK_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setattr(data, "KERAS_DIR", tmp_path / "keras")
    with pytest.raises(data.DataError) as err:
        data.load("fashion_mnist", download=False)
    msg = str(err.value)
    assert "nowhere" in msg and "debian" in msg and "apt-get install dataset-fashion-mnist" in msg


def test_bad_sizes_are_rejected(tiny_fashion):
    with pytest.raises(data.DataError, match="n_train=1000"):
        data.load("fashion_mnist", n_train=1000, n_valid=10)
    with pytest.raises(data.DataError, match="leaves no training data"):
        data.load("fashion_mnist", n_valid=60)
    with pytest.raises(data.DataError, match="non-negative int"):
        data.load("fashion_mnist", n_valid=-1)


def test_digits_and_standardize():
    s = data.load("digits", n_valid=200, seed=0)
    assert s.n_classes == 10 and s.sizes()["valid"] == 200
    z = data.standardize(s)
    assert abs(float(z.x_train.mean())) < 1e-4
    # constant pixels (always 0) stay finite
    assert np.isfinite(z.x_test).all()


def _truncate(folder, name, keep=0.5):
    path = folder / name
    raw = path.read_bytes()
    path.write_bytes(raw[: max(20, int(len(raw) * keep))])
    return path


def test_a_truncated_file_gives_one_clear_error_naming_it_and_the_fix(tiny_fashion):
    """An interrupted download leaves a short gzip file: not a bare EOFError from gzip."""
    path = _truncate(tiny_fashion, "train-images-idx3-ubyte.gz")
    with pytest.raises(data.DataError) as err:
        data.load("fashion_mnist", n_valid=10, download=False)
    msg = str(err.value)
    assert str(path) in msg and "damaged" in msg and "delete it" in msg and "make data" in msg
    assert isinstance(err.value, data.DamagedFile) and err.value.__cause__ is None


def test_a_corrupt_file_gives_the_same_clear_error(tiny_fashion):
    path = tiny_fashion / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[-8:-4] = bytes(b ^ 0xFF for b in raw[-8:-4])  # a CRC that does not match the contents
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DamagedFile, match="t10k-labels-idx1-ubyte.gz is damaged.*CRC"):
        data.load("fashion_mnist", n_valid=10, download=False)


@pytest.fixture
def fake_network(tmp_path, monkeypatch):
    """Keras's download function replaced by copies of a tiny Fashion-MNIST (whose sizes and
    SHA-256 stand in for the published ones); records the URLs fetched."""
    import hashlib
    import shutil

    from keras.src.utils import file_utils

    source = tmp_path / "published"
    source.mkdir()
    rng = np.random.default_rng(1)
    write_idx(source / "train-images-idx3-ubyte.gz", rng.integers(0, 256, size=(40, 28, 28)))
    write_idx(source / "train-labels-idx1-ubyte.gz", np.arange(40) % 10)
    write_idx(source / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, size=(10, 28, 28)))
    write_idx(source / "t10k-labels-idx1-ubyte.gz", np.arange(10) % 10)
    published = {
        p.name: (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in source.iterdir()
    }
    monkeypatch.setattr(data, "FASHION_PUBLISHED", published)
    fetched = []

    def urlretrieve(url, target, progress=None):
        fetched.append(url)
        shutil.copyfile(source / url.rsplit("/", 1)[-1], target)

    monkeypatch.setattr(file_utils, "urlretrieve", urlretrieve)
    monkeypatch.setenv("DNNBOOK_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return fetched


def test_downloads_land_where_keras_puts_them_and_are_found_there(tmp_path, fake_network):
    s = data.load("fashion_mnist", n_valid=10, download=True)
    assert s.sizes() == {"train": 30, "valid": 10, "test": 10}
    cache = tmp_path / "keras-home" / "datasets" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(data.FASHION_FILES.values())
    assert len(fake_network) == 4 and all(u.startswith(data.FASHION_ORIGIN) for u in fake_network)
    assert data.find_fashion_mnist() == cache  # found without the network from now on
    data.load("fashion_mnist", n_valid=10, download=True)
    assert len(fake_network) == 4


def test_an_interrupted_download_in_the_cache_is_named_or_fetched_again(tmp_path, fake_network):
    cache = data.ensure_fashion_mnist(download=True)
    path = _truncate(cache, "train-images-idx3-ubyte.gz")
    assert data.find_fashion_mnist() is None  # a short file in the cache is not a copy
    with pytest.raises(data.DataError) as err:
        data.load("fashion_mnist", n_valid=10, download=False)
    assert (
        str(path) in str(err.value)
        and "bytes instead of" in str(err.value)
        and "make data" in str(err.value)
    )
    s = data.load("fashion_mnist", n_valid=10, download=True)  # DNNBOOK_DOWNLOAD=1: fetched again
    assert s.sizes()["train"] == 30 and fake_network[-1].endswith("train-images-idx3-ubyte.gz")
    assert path.stat().st_size == data.FASHION_PUBLISHED[path.name][0]


def test_a_damaged_local_copy_is_replaced_by_a_download_where_allowed(
    tiny_fashion, fake_network, monkeypatch
):
    monkeypatch.setenv("DNNBOOK_DATA", str(tiny_fashion))
    _truncate(tiny_fashion, "t10k-images-idx3-ubyte.gz")
    assert data.ensure_fashion_mnist(download=True).name == "fashion-mnist"
    assert len(fake_network) == 4
