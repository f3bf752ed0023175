"""Chapter 7 beyond MR: IMDB in the aclImdb layout, and the prediction command."""

import numpy as np
import pytest

from dltm.data import load_imdb, prepare_imdb, read_imdb_split
from dltm.text import Tokenizer
from stages import predict

from .conftest import run_task, synthetic_imdb

SMALL_CNN = {"ch07_cnn1d_imdb.maxlen": 40, "ch07_cnn1d_imdb.filters": 8, "ch07_cnn1d_imdb.hidden_dims": 8,
             "ch07_cnn1d_imdb.epochs": 10, "ch07_cnn1d_imdb.vocab_size": 60}


@pytest.fixture
def imdb(tmp_path):
    raw = synthetic_imdb(tmp_path / "data" / "raw" / "imdb", n_per_class=100)
    prepare_imdb(raw, tmp_path / "data" / "prepared" / "imdb", {"shuffle_seed": 10})
    return tmp_path


def test_imdb_reader_and_prepared_splits(imdb):
    texts, labels = read_imdb_split(imdb / "data" / "raw" / "imdb", "test")
    assert len(texts) == 200 and labels.tolist() == [0] * 100 + [1] * 100 and "<br />" not in "".join(texts)
    x, y = load_imdb(imdb / "data" / "prepared" / "imdb", num_words=20, maxlen=25, split="test")
    assert x.shape == (200, 25) and x.max() < 20 and sorted(y.tolist()) == [0] * 100 + [1] * 100
    assert 0 < y[:100].mean() < 1  # stored in a shuffled order, so a capped evaluation sees both classes
    assert np.all(x[:, -1] > 0)  # 'pre' padding: the text ends at the last position
    tok = Tokenizer.load(imdb / "data" / "prepared" / "imdb" / "tokenizer.json")
    assert "café" in tok.word_index and "br" not in tok.word_index


def test_cnn1d_on_imdb_then_predict_from_the_command_line(imdb, monkeypatch, capsys):
    m = run_task(imdb, monkeypatch, "ch07_cnn1d_imdb", SMALL_CNN)
    assert m["n_examples"] == 200 and m["test_accuracy"] > 0.8  # the synthetic classes differ by their words
    capsys.readouterr()  # the training log
    assert predict.main(["ch07_cnn1d_imdb", "superb brilliant charming delightful film",
                         "awful boring tedious mess"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [label for label, _, _ in lines] == ["pos", "neg"] and all(0.5 <= float(p) <= 1 for _, p, _ in lines)
    (imdb / "texts.txt").write_text("a superb film\n\nboring\n", encoding="utf-8")
    assert predict.main(["ch07_cnn1d_imdb", "--file", str(imdb / "texts.txt")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_encode_follows_the_tasks_training_encoding():
    t = Tokenizer(num_words=5)
    t.fit_on_texts(["it 's a good film", "a good , good film"])
    post = predict.encode(["It's a GOOD film!"], t, {"clean": "kim", "padding": "post", "doc_length": 6})
    kept = [t.word_index[w] for w in ("it", "'s", "a", "good", "film") if t.word_index[w] < 5]  # Keras 2's cut
    assert post.tolist() == [kept + [0] * (6 - len(kept))]
    pre = predict.encode(["good film"], t, {"clean": "html_breaks", "padding": "pre", "doc_length": 4})
    assert pre[0, :2].tolist() == [0, 0] and pre[0, -1] == t.word_index["film"]


def test_predict_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.keras: missing"):
        predict.predict(tmp_path / "ch07_kim_cnn", ["x"])


@pytest.mark.realdata
def test_real_imdb_from_the_mirror_has_the_published_split(tmp_path):
    from dltm.datasets import fetch

    from .conftest import MIRROR

    if MIRROR is None:
        pytest.skip("no dataset mirror: set DLTM_DATA_MIRROR or place it at ../shared/datasets")
    fetch("imdb", tmp_path / "imdb", mirror=MIRROR)
    for split in ("train", "test"):
        texts, labels = read_imdb_split(tmp_path / "imdb", split)
        assert len(texts) == 25000 and int(labels.sum()) == 12500
    assert texts[12500].startswith("I went and saw this movie last night")  # test/pos/0_10.txt
