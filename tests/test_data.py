"""mlcourse.data: IDX reading, the resolution order, every error a learner can meet, the embedded subset."""
import gzip
import urllib.error

import numpy as np
import pytest

from mlcourse import data


def _write_set(folder, n_train=20, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28)),
              "train_labels": np.arange(n_train) % 10,
              "test_images": rng.integers(0, 256, (n_test, 28, 28)),
              "test_labels": np.arange(n_test) % 10}
    for key, arr in arrays.items():
        data.write_idx(folder / data.FILES[key][0], arr)
    return arrays


def test_idx_round_trip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "b.idx.gz"):
        assert np.array_equal(data.read_idx(data.write_idx(tmp_path / name, arr)), arr)


def test_explicit_data_dir_is_read_without_checksums(tmp_path):
    arrays = _write_set(tmp_path / "fm")
    ds = data.load_fashion_mnist(data_dir=tmp_path / "fm", verify=False)
    assert ds.x_train.shape == (20, 28, 28) and ds.x_test.shape == (10, 28, 28)
    assert np.array_equal(ds.y_train, arrays["train_labels"]) and ds.source == str(tmp_path / "fm")
    assert not ds.is_full


def test_env_var_is_honoured(tmp_path, monkeypatch):
    _write_set(tmp_path / "env")
    monkeypatch.setenv("MLCOURSE_DATA_DIR", str(tmp_path / "env"))
    assert data.find_fashion_mnist() == tmp_path / "env"


def test_checksum_mismatch_is_reported(tmp_path):
    _write_set(tmp_path / "fm")  # random pixels: not the real files
    with pytest.raises(data.DataError, match="checksum mismatch"):
        data.load_fashion_mnist(data_dir=tmp_path / "fm", verify=True)


def test_missing_files_say_how_to_get_them(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist(data_dir=tmp_path / "empty")


def test_full_source_without_files_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", tmp_path / "none2")
    monkeypatch.delenv("MLCOURSE_DATA_DIR", raising=False)
    with pytest.raises(data.DataError, match="not found"):
        data.load_fashion_mnist(source="full", download=False)
    with pytest.warns(UserWarning, match="embedded"):
        ds = data.load_fashion_mnist(source="auto", download=False)
    assert ds.source == "embedded"


def test_truncated_file(tmp_path):
    path = data.write_idx(tmp_path / "x.idx", np.zeros((5, 28, 28)))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(path)


def test_trailing_bytes(tmp_path):
    path = data.write_idx(tmp_path / "x.idx", np.zeros((5, 28, 28)))
    path.write_bytes(path.read_bytes() + b"xx")
    with pytest.raises(data.DataError, match="longer than its header"):
        data.read_idx(path)


def test_corrupt_gzip(tmp_path):
    path = data.write_idx(tmp_path / "x.idx.gz", np.zeros((5, 28, 28)))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataError, match="corrupt or truncated"):
        data.read_idx(path)


def test_not_an_idx_file(tmp_path):
    path = tmp_path / "x.idx.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"<html>404 not found</html>")
    with pytest.raises(data.DataError, match="not an IDX file"):
        data.read_idx(path)


def test_unknown_names():
    with pytest.raises(data.DataError, match="Unknown source"):
        data.load_fashion_mnist(source="imagenet")
    with pytest.raises(data.DataError, match="Available: breast_cancer"):
        data.load_tabular("titanic")


def test_download_is_off_in_tests(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", tmp_path / "none2")
    monkeypatch.delenv("MLCOURSE_DATA_DIR", raising=False)

    def no_network(*a, **k):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(data.urllib.request, "urlopen", no_network)
    with pytest.warns(UserWarning):
        data.load_fashion_mnist()


def test_failed_download_leaves_no_partial_file(monkeypatch, tmp_path):
    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(data.DataError, match="Downloading"):
        data.download_fashion_mnist(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_embedded_subset_is_real_and_stratified():
    ds = data.load_fashion_mnist(source="embedded")
    assert ds.x_train.shape == (6000, 28, 28) and ds.x_test.shape == (1000, 28, 28)
    assert ds.x_train.dtype == np.uint8
    assert np.bincount(ds.y_train).tolist() == [600] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert 60 < ds.x_train.mean() < 90  # real Fashion-MNIST's mean pixel is about 73


@pytest.mark.skipif(not data.DEBIAN_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_debian_files_verify():
    ds = data.load_fashion_mnist(source="full")
    assert ds.is_full and ds.source == str(data.DEBIAN_DIR)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10


def test_stratified_subset_keeps_proportions():
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    x = np.arange(100)
    xs, ys = data.stratified_subset(x, y, 50, seed=1)
    assert np.bincount(ys).tolist() == [5, 10, 15, 20]
    assert np.array_equal(y[xs], ys)
    with pytest.raises(ValueError):
        data.stratified_subset(x, y, 0)


def test_synthetic_sets():
    X, y = data.make_imbalanced(n_samples=5000, positive_rate=0.02, seed=0)
    assert abs(y.mean() - 0.02) < 0.005
    with pytest.raises(ValueError, match="positive_rate"):
        data.make_imbalanced(positive_rate=1.5)
    X, y, t = data.make_drifting_time_series(n_samples=500)
    assert X.shape == (500, 5) and np.all(np.diff(t) >= 0)
    x = np.zeros((4, 28, 28), np.uint8)
    xg, yg, g = data.make_grouped_images(x, np.arange(4), per_group=3)
    assert xg.shape == (12, 28, 28) and np.bincount(g).tolist() == [3] * 4


def _nowhere(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", tmp_path / "none2")
    monkeypatch.delenv("MLCOURSE_DATA_DIR", raising=False)


@pytest.mark.parametrize("error", [urllib.error.URLError("no route to host"), OSError("network unreachable"),
                                   TimeoutError("timed out")])
def test_auto_falls_back_to_the_subset_when_the_download_fails(monkeypatch, tmp_path, error):
    _nowhere(monkeypatch, tmp_path)
    monkeypatch.setenv("MLCOURSE_ALLOW_DOWNLOAD", "1")

    def offline(*a, **k):
        raise error

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.warns(UserWarning, match="download failed.*embedded"):
        ds = data.load_fashion_mnist()
    assert ds.source == "embedded"
    with pytest.raises(data.DataError, match="Downloading"):
        data.load_fashion_mnist(source="full")                 # the full set was asked for: an error


@pytest.mark.parametrize("value,allowed", [("1", True), ("true", True), ("TRUE", True), ("Yes", True), (" yes ", True),
                                           ("0", False), ("false", False), ("No", False), ("", False)])
def test_allow_download_accepts_the_usual_spellings(monkeypatch, value, allowed):
    monkeypatch.setenv("MLCOURSE_ALLOW_DOWNLOAD", value)
    assert data._download_allowed(None) is allowed


def test_allow_download_refuses_a_value_it_cannot_read(monkeypatch):
    monkeypatch.setenv("MLCOURSE_ALLOW_DOWNLOAD", "sometimes")
    with pytest.raises(data.DataError, match="MLCOURSE_ALLOW_DOWNLOAD.*1, true or yes"):
        data._download_allowed(None)


@pytest.mark.parametrize("sums", [None, "", "not a checksum line\n", "abc  train-images-idx3-ubyte.gz\n",
                                  "first-line-only"])
def test_a_missing_or_malformed_checksum_file_is_a_clear_error(monkeypatch, tmp_path, sums):
    import shutil

    subset = tmp_path / "subset"
    shutil.copytree(data.EMBEDDED_DIR, subset)
    if sums is None:
        (subset / "SHA256SUMS").unlink()
    else:
        (subset / "SHA256SUMS").write_text(sums)
    monkeypatch.setattr(data, "EMBEDDED_DIR", subset)
    with pytest.raises(data.DataError, match="SHA256SUMS"):
        data.load_fashion_mnist(source="embedded")


def test_a_checksum_file_missing_one_file_is_an_error(monkeypatch, tmp_path):
    import shutil

    subset = tmp_path / "subset"
    shutil.copytree(data.EMBEDDED_DIR, subset)
    lines = (subset / "SHA256SUMS").read_text().splitlines()
    (subset / "SHA256SUMS").write_text("\n".join(lines[1:]) + "\n")
    monkeypatch.setattr(data, "EMBEDDED_DIR", subset)
    with pytest.raises(data.DataError, match="SHA256SUMS.*train-images"):
        data.load_fashion_mnist(source="embedded")


def test_stratified_subset_refuses_mismatched_input_and_says_when_it_gives_all():
    x, y = np.zeros((400, 2)), np.arange(400) % 10
    with pytest.raises(ValueError, match="400 examples but y has 10 labels"):
        data.stratified_subset(x, y[:10], 50)
    with pytest.raises(ValueError, match="positive whole number"):
        data.stratified_subset(x, y, 0)
    with pytest.raises(ValueError, match="positive whole number"):
        data.stratified_subset(x, y, 12.5)
    with pytest.warns(UserWarning, match="asked for 1000 examples but there are only 400"):
        xs, ys = data.stratified_subset(x, y, 1000)
    assert len(xs) == len(ys) == 400


def test_a_data_dir_that_is_not_a_path_is_a_clear_error():
    with pytest.raises(TypeError, match="data_dir must be a folder path"):
        data.find_fashion_mnist(data_dir=123)
