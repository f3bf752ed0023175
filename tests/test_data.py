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
