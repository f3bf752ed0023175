"""Chapter 7 beyond the book's code: Kim's variants and cross-validation, the GloVe channel, your own data."""

import json
import zipfile

import keras
import numpy as np
import pytest

from dltm.data import prepare_custom, prepare_mr, read_labelled_texts
from dltm.embeddings import load_vectors
from pipelines.ch07_text_cnn import build_kim_cnn, mr_table
from stages import predict

from .conftest import FILLER, NEG_WORDS, POS_WORDS, REPO, run_task, synthetic_mr

MR_PREP = {"encoding": "cp1252", "split_seed": 10, "dev_size": 60, "cv_folds": 3, "cv_seed": 10}
TINY_KIM = {"ch07_kim2014.filter_nums": 4, "ch07_kim2014.epochs": 3, "ch07_kim2014.batch_size": 16,
            "ch07_kim2014.embed_size": 8, "ch07_kim2014.embeddings": "data/embeddings/fake-ptb",
            "ch07_kim2014.validation_split": 0.0, "ch07_kim2014.early_stopping_patience": 0}


def write_vectors(path, dim=8, header=True, seed=0):
    """Vectors for most of the synthetic MR words: sentiment words near +/- one direction."""
    rng = np.random.default_rng(seed)
    rows = []
    for words, sign in ((POS_WORDS, 1.0), (NEG_WORDS, -1.0), (FILLER[:-3], 0.0)):
        for w in words:
            v = rng.normal(0, 0.1, dim)
            v[0] += sign
            rows.append(w + " " + " ".join(f"{x:.5f}" for x in v))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((f"{len(rows)} {dim}\n" if header else "") + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def mr(tmp_path):
    synthetic_mr(tmp_path / "data" / "raw" / "mr", n_per_class=60)
    prepare_mr(tmp_path / "data" / "raw" / "mr", tmp_path / "data" / "prepared" / "mr", MR_PREP)
    write_vectors(tmp_path / "data" / "embeddings" / "fake-ptb" / "vectors.txt")
    return tmp_path


@pytest.mark.parametrize("channels", [1, 2])
def test_conv1d_is_the_books_conv2d(channels):
    """The same model: copying the Conv2D kernels (h, d, C, F) into Conv1D kernels (h, C*d, F) gives the same
    outputs, for one channel and for Kim's two."""
    rng = np.random.default_rng(0)
    matrix = rng.uniform(-0.5, 0.5, (30, 6)).astype("float32")
    chans = (("embed", matrix, True),) if channels == 1 else (("embed_static", matrix, False), ("embed", None, True))
    kw = dict(doc_length=9, vocab_size=30, embed_size=6, filter_sizes=(2, 3), filter_nums=5, channels=chans)
    keras.utils.set_random_seed(1)
    two = build_kim_cnn(conv="2d", **kw)
    one = build_kim_cnn(conv="1d", **kw)
    for layer in two.layers:
        if not layer.weights or layer.name.startswith("reshape"):
            continue
        weights = layer.get_weights()
        if layer.name.startswith("conv_"):
            h, d, c, f = weights[0].shape
            weights[0] = weights[0].transpose(0, 2, 1, 3).reshape(h, c * d, f)
        one.get_layer(layer.name).set_weights(weights)
    x = rng.integers(0, 30, (16, 9))
    np.testing.assert_allclose(one.predict(x, verbose=0), two.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_static_channels_stay_frozen_and_non_static_ones_learn():
    rng = np.random.default_rng(0)
    matrix = rng.uniform(-0.5, 0.5, (30, 6)).astype("float32")
    model = build_kim_cnn(9, 30, 6, (2,), 4, conv="1d", max_norm=3.0,
                          channels=(("embed_static", matrix, False), ("embed", matrix, True)))
    np.testing.assert_array_equal(model.get_layer("embed_static").get_weights()[0], matrix)
    model.compile(optimizer=keras.optimizers.Adadelta(1.0), loss="binary_crossentropy")
    x, y = rng.integers(1, 30, (64, 9)), rng.integers(0, 2, 64)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(model.get_layer("embed_static").get_weights()[0], matrix)
    assert np.abs(model.get_layer("embed").get_weights()[0] - matrix).max() > 1e-4
    assert np.linalg.norm(model.get_layer("output").get_weights()[0], axis=0).max() <= 3.0 + 1e-5


def test_kim2014_cross_validation_with_child_runs(mr, monkeypatch):
    import mlflow

    m = run_task(mr, monkeypatch, "ch07_kim2014", TINY_KIM, variant="multichannel")
    assert m["test_accuracy_n"] == 3 and len(m["test_fold_accuracies"]) == 3 and m["n_examples"] == 120
    assert m["test_accuracy_mean"] == pytest.approx(np.mean(m["test_fold_accuracies"]), abs=1e-4)
    assert 0.6 < m["embedding_coverage"] < 1.0 and m["embedding_dim"] == 8  # FILLER[-3:] have no vector
    run = json.loads((mr / "models" / "ch07_kim2014-multichannel" / "run.json").read_text())
    assert run["protocol"] == "cv" and run["folds"] == 3 and set(run["child_runs"]) == {"fold_0", "fold_1", "fold_2"}
    with pytest.raises(FileNotFoundError, match="cross-validated, one model per fold; name one, e.g. "
                       "ch07_kim2014-multichannel/fold_0"):
        predict.predict(mr / "models" / "ch07_kim2014-multichannel", ["superb"])
    assert predict.predict(mr / "models" / "ch07_kim2014-multichannel" / "fold_0", ["superb"])[0][0] in ("pos", "neg")
    fold = keras.models.load_model(mr / "models" / "ch07_kim2014-multichannel" / "fold_2" / "model.keras")
    assert not fold.get_layer("embed_static").trainable and fold.get_layer("embed").trainable
    client = mlflow.MlflowClient()
    parent = client.get_run(run["mlflow_run_id"])
    assert parent.data.metrics["test_accuracy_mean"] == pytest.approx(m["test_accuracy_mean"])
    for name, run_id in run["child_runs"].items():
        child = client.get_run(run_id)
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id and child.data.tags["fold"] == name[-1]
        assert "test_accuracy" in child.data.metrics and "train_accuracy" in child.data.metrics
    lines = "\n".join(mr_table(mr))
    ours = f"{m['test_accuracy_mean']:.4f} ± {m['test_accuracy_std']:.4f}"
    assert f"| multichannel | {ours} | 3-fold CV | 3 |" in lines
    assert "fake-ptb" in lines and "3 epochs against Kim's 25" in lines and "| rand | not run |" in lines


def test_kim2014_holdout_rand_and_bad_params(mr, monkeypatch):
    m = run_task(mr, monkeypatch, "ch07_kim2014", {**TINY_KIM, "ch07_kim2014.protocol": "holdout"}, variant="rand")
    assert m["n_examples"] == 60 and "test_accuracy" in m and "embedding_coverage" not in m
    # Kim's early stopping (params.yaml: 10% of the training split, patience 3, at most 25 epochs)
    run_task(mr, monkeypatch, "ch07_kim2014", {**TINY_KIM, "ch07_kim2014.protocol": "holdout",
                                               "ch07_kim2014.epochs": 6, "ch07_kim2014.validation_split": 0.2,
                                               "ch07_kim2014.early_stopping_patience": 1}, variant="rand")
    run = json.loads((mr / "models" / "ch07_kim2014-rand" / "run.json").read_text())
    assert run["validation_examples"] > 0 and 1 <= run["best_epoch"] <= run["epochs"] <= 6
    assert "epochs against Kim's 25" not in "\n".join(mr_table(mr))  # stopped early, as Kim did: no cap
    with pytest.raises(ValueError, match="ch07_kim2014.protocol should be one of cv, holdout, got .loo."):
        run_task(mr, monkeypatch, "ch07_kim2014", {**TINY_KIM, "ch07_kim2014.protocol": "loo"}, variant="rand")
    with pytest.raises(FileNotFoundError, match="data/embeddings/nothing: no such vectors file"):
        run_task(mr, monkeypatch, "ch07_kim2014", {**TINY_KIM, "ch07_kim2014.embeddings": "data/embeddings/nothing"},
                 variant="static")


def test_glove_two_channel_model(mr, monkeypatch):
    glove = mr / "data" / "raw" / "glove_twitter"
    for dim in (25, 50, 100, 200):
        write_vectors(glove / f"glove.twitter.27B.{dim}d.txt", dim=dim, header=False)
    m = run_task(mr, monkeypatch, "ch07_cnn_glove_2ch", {"ch07_cnn_glove_2ch.embed_size": 25,
                                                         "ch07_cnn_glove_2ch.filter_nums": 4,
                                                         "ch07_cnn_glove_2ch.epochs": 3})
    assert m["n_examples"] == 60
    model = keras.models.load_model(mr / "models" / "ch07_cnn_glove_2ch" / "model.keras")
    assert not model.get_layer("preembed").trainable and model.get_layer("embed").trainable
    tok = json.loads((mr / "models" / "ch07_cnn_glove_2ch" / "tokenizer.json").read_text())
    index = json.loads(tok["config"]["word_index"]) if isinstance(tok.get("config"), dict) else None
    pre = model.get_layer("preembed").get_weights()[0]
    assert pre.shape[1] == 25 and np.all(pre[0] == 0)
    if index:  # words GloVe lacks stay zero (the book)
        assert np.all(pre[index[FILLER[-1]]] == 0) and np.any(pre[index[POS_WORDS[0]]] != 0)
    run = json.loads((mr / "models" / "ch07_cnn_glove_2ch" / "run.json").read_text())
    assert run["embedding_dim"] == 25 and 0.6 < run["embedding_coverage"] < 1.0


def test_load_vectors_reads_each_form(tmp_path):
    a = load_vectors(write_vectors(tmp_path / "a" / "vectors.txt").parent)  # a chapter-6 folder
    b = load_vectors(write_vectors(tmp_path / "b.txt", header=False))  # GloVe's headerless file
    assert a.vector_size == b.vector_size == 8 and "good" in a and "good" in b
    with pytest.raises(ValueError, match="several dimensions"):
        (tmp_path / "glove6b").mkdir()
        load_vectors(tmp_path / "glove6b")


# ---- bring your own data ----


@pytest.mark.parametrize("name, content, match", [
    ("d.csv", "sentence,label\nok,1\n", r"d.csv:1: no column 'text' in the header \(columns: sentence, label\)"),
    ("d.csv", "text,label\ngood film,pos\n,neg\n", r"d.csv:3: field 'text' is empty"),
    ("d.tsv", "text\tlabel\na\tb\tc\n", r"d.tsv:2: more fields than the header's 2"),
    ("d.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b" "label": 0}\n', r"d.jsonl:3: not valid JSON"),
    ("d.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n', r"d.jsonl:2: field 'label' is missing"),
    ("d.jsonl", '{"text": "a", "label": [1]}\n', r"d.jsonl:1: field 'label' should be a string or an integer"),
    ("d.txt", "x", r"d.txt: unknown format '.txt'"),
])
def test_bad_files_name_the_line_and_field(tmp_path, name, content, match):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        read_labelled_texts(tmp_path / name)


CUSTOM = {"text_field": "text", "label_field": "label", "encoding": "utf-8", "clean": "kim", "max_length": 0,
          "test_size": 0.2, "split_seed": 10, "cv_folds": 3}


def test_prepare_custom_with_and_without_a_test_file(tmp_path):
    info = prepare_custom(REPO / "examples" / "byo", tmp_path / "a", CUSTOM)
    assert info["class_names"] == ["food", "sport", "weather"] and info["train"] == 150 and info["dev"] == 30
    rows = [{"text": f"{w} film {i}", "label": int(w in POS_WORDS)} for i in range(10) for w in POS_WORDS[:3]
            + NEG_WORDS[:3]]
    (tmp_path / "own.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    info = prepare_custom(tmp_path / "own.jsonl", tmp_path / "b", CUSTOM)
    assert info["class_names"] == ["0", "1"] and info["train"] == 48 and info["dev"] == 12 and info["cv_folds"] == 3
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    (tmp_path / "bad" / "test.csv").write_text("text,label\nc,z\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"test.csv: label\(s\) 'z' do not occur in .*train.csv"):
        prepare_custom(tmp_path / "bad", tmp_path / "c", CUSTOM)
    assert not (tmp_path / "c").exists()


def test_any_ch07_classifier_trains_on_your_own_data(tmp_path, monkeypatch, capsys):
    prepare_custom(REPO / "examples" / "byo", tmp_path / "data" / "prepared" / "custom", CUSTOM)
    m = run_task(tmp_path, monkeypatch, "ch07_cnn1d", {"run.text_data": "custom", "ch07_cnn1d.filters": 16,
                                                       "ch07_cnn1d.hidden_dims": 16, "ch07_cnn1d.epochs": 12,
                                                       "ch07_cnn1d.vocab_size": 100})
    assert m["n_examples"] == 30 and {"test_f1_food", "test_f1_sport", "test_f1_weather"} <= set(m)
    assert m["test_accuracy"] > 0.8
    model = keras.models.load_model(tmp_path / "models" / "ch07_cnn1d" / "model.keras")
    assert model.output_shape == (None, 3)
    capsys.readouterr()
    assert predict.main(["ch07_cnn1d", "the striker scored a goal at the stadium", "a spicy soup recipe"]) == 0
    labels = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert labels == ["sport", "food"]
    m = run_task(tmp_path, monkeypatch, "ch07_kim_cnn", {"run.text_data": "custom", "ch07_kim_cnn.filter_nums": 4,
                                                         "ch07_kim_cnn.epochs": 2, "ch07_kim_cnn.conv": "1d"})
    assert m["n_examples"] == 30


def test_the_example_data_is_not_from_the_mirror():
    """examples/byo is made up for the README (never dataset content)."""
    text = (REPO / "examples" / "byo" / "train.tsv").read_text(encoding="utf-8")
    assert text.startswith("text\tlabel\n") and len(text.splitlines()) == 151
    assert zipfile.is_zipfile(REPO / "examples" / "byo" / "train.tsv") is False
