import numpy as np
import pytest

from dltm.data import book_split, load_mr_raw, load_prepared_text, prepare_mr, read_lines, stratified_folds
from dltm.params import ParamError
from dltm.text import Tokenizer

from .conftest import MIRROR, needs_mirror, synthetic_mr

PREP = {"encoding": "cp1252", "split_seed": 10, "dev_size": 40, "cv_folds": 5, "cv_seed": 10}


def test_book_split_is_numpy_seed_10_permutation():
    np.random.seed(10)
    perm = np.random.permutation(np.arange(10662))
    train, dev = book_split(10662, 10, 1000)
    np.testing.assert_array_equal(train, perm[:-1000])
    np.testing.assert_array_equal(dev, perm[-1000:])
    assert len(train) == 9662 and len(set(train) | set(dev)) == 10662


def test_stratified_folds_balance_labels_and_are_seeded():
    y = np.array([0] * 60 + [1] * 40)
    folds = stratified_folds(y, 10, 3)
    assert sorted(set(folds)) == list(range(10))
    for k in range(10):
        assert (y[folds == k] == 0).sum() == 6 and (y[folds == k] == 1).sum() == 4
    np.testing.assert_array_equal(folds, stratified_folds(y, 10, 3))
    assert not np.array_equal(folds, stratified_folds(y, 10, 4))


def test_prepare_mr_writes_everything_consistently(tmp_path):
    synthetic_mr(tmp_path / "raw")
    info = prepare_mr(tmp_path / "raw", tmp_path / "prep", PREP)
    assert info["examples"] == 300 and info["positives"] == 150 and info["dev"] == 40
    texts = (tmp_path / "prep" / "texts.txt").read_text(encoding="utf-8").splitlines()
    x = np.load(tmp_path / "prep" / "x.npy")
    y = np.load(tmp_path / "prep" / "labels.npy")
    assert len(texts) == len(x) == len(y) == 300 and y[:150].all() and not y[150:].any()
    t = Tokenizer()
    t.fit_on_texts(texts)
    first = t.texts_to_sequences(texts[:1])[0]
    assert x[0, : len(first)].tolist() == first and not x[0, len(first):].any()
    # 'café' decoded from cp1252 and cleaned the Kim way; 'isn't' split
    assert any("caf " in s and "is n't" in s for s in texts)
    data = load_prepared_text(tmp_path / "prep", num_words=5)
    assert data.x.max() < 5 and data.tokenizer.num_words == 5
    assert sorted(set(data.folds)) == list(range(5))


def test_prepare_errors_name_the_param_and_the_file(tmp_path):
    synthetic_mr(tmp_path / "raw")
    with pytest.raises(ParamError, match=r"prepare\.mr\.cv_seed is missing"):
        prepare_mr(tmp_path / "raw", tmp_path / "prep", {k: v for k, v in PREP.items() if k != "cv_seed"})
    with pytest.raises(FileNotFoundError, match=r"rt-polarity\.pos: missing"):
        load_mr_raw(tmp_path / "nowhere")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\ncaf\xc3\xa9\nbad \xff byte\n")
    with pytest.raises(ValueError, match=r"bad\.txt:3: cannot decode as utf-8"):
        read_lines(bad, "utf-8")
    assert not (tmp_path / "prep").exists()


@needs_mirror
def test_real_mr_has_the_books_shapes():
    texts, y = load_mr_raw(MIRROR / "mr")
    assert len(texts) == 10662 and y.sum() == 5331
    assert texts[0].startswith("the rock is destined to be the 21st century 's new conan")


# ---- raw-format loaders of chapters 3-5 ----


def test_idx_roundtrip_and_corrupt_files(tmp_path):
    import gzip

    from dltm.data import load_mnist, read_idx

    from .conftest import synthetic_mnist, write_idx

    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.gz", a)), a)
    raw = tmp_path / "raw.idx"
    raw.write_bytes(gzip.decompress((tmp_path / "a.gz").read_bytes()))
    np.testing.assert_array_equal(read_idx(raw), a)  # not gzipped is fine too
    raw.write_bytes(raw.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"raw.idx: header says shape \(2, 3, 4\)"):
        read_idx(raw)
    raw.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="raw.idx: not an idx file"):
        read_idx(raw)
    files = synthetic_mnist(tmp_path / "mnist", n_train=30, n_test=20)
    x, y = load_mnist(tmp_path / "mnist", "test")
    assert x.shape == (20, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and y.shape == (20,)
    write_idx(files["t10k-labels-idx1-ubyte.gz"], np.zeros(19))
    with pytest.raises(ValueError, match="has shape"):
        load_mnist(tmp_path / "mnist", "test")


def test_har_loader_stacks_the_nine_signals_in_the_book_order(tmp_path):
    from dltm.data import HAR_SIGNALS, load_har

    from .conftest import synthetic_har

    base = synthetic_har(tmp_path, n_train=12, n_test=6)
    x, y = load_har(tmp_path, "train")
    assert x.shape == (12, 128, 9) and x.dtype == np.float32 and y.min() >= 0 and y.max() <= 5
    body_gyro_z = np.loadtxt(base / "train" / "Inertial Signals" / "body_gyro_z_train.txt")
    np.testing.assert_allclose(x[:, :, HAR_SIGNALS.index("body_gyro_z")], body_gyro_z, rtol=1e-6)
    assert HAR_SIGNALS.index("body_gyro_z") == 8 and HAR_SIGNALS[0] == "total_acc_x"
    (base / "test" / "y_test.txt").write_text("1\n2\n7\n1\n1\n1\n")
    with pytest.raises(ValueError, match="y_test.txt: labels must be 1-6"):
        load_har(tmp_path, "test")
    (base / "test" / "y_test.txt").write_text("1\n")
    with pytest.raises(ValueError, match="disagree on the number of windows"):
        load_har(tmp_path, "test")
    (base / "test" / "Inertial Signals" / "body_acc_y_test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="body_acc_y_test.txt: missing"):
        load_har(tmp_path, "test")


@needs_mirror
@pytest.mark.realdata
def test_real_mnist_test_split_and_train_labels_from_the_mirror():
    """The evaluation-only check the offline mirror allows: the 10k test images and both label files."""
    from dltm.data import load_mnist, read_idx

    x, y = load_mnist(MIRROR / "mnist", "test")
    assert x.shape == (10000, 28, 28) and x.max() == 1.0 and x.min() == 0.0
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    train_labels = read_idx(MIRROR / "mnist" / "train-labels-idx1-ubyte.gz")
    assert np.bincount(train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
