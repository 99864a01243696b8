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
    with pytest.raises(data.DataError, match="unknown data set 'cifar'.*fashion_mnist, digits, mnist1d"):
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
