"""Chapter 9: the LSTM sentiment model and its variants on a synthetic MR, end to end, and the comparison."""

import csv

import keras
import numpy as np
import pytest

from dltm.data import prepare_mr
from dltm.params import ParamError
from pipelines import ch09_lstm_sentiment as ch09
from stages import predict

from .conftest import run_task, synthetic_mr

FIT = {"epochs": 4, "batch_size": 32, "vocab_size": 60, "hidden_size": 16}
MR_PARAMS = {"encoding": "cp1252", "split_seed": 10, "dev_size": 60, "cv_folds": 5, "cv_seed": 10}


def small(task: str, **extra) -> dict:
    return {f"{task}.{k}": v for k, v in {**FIT, **extra}.items()}


@pytest.fixture
def mr(tmp_path):
    synthetic_mr(tmp_path / "data" / "raw" / "mr", n_per_class=100)
    prepare_mr(tmp_path / "data" / "raw" / "mr", tmp_path / "data" / "prepared" / "mr", MR_PARAMS)
    return tmp_path


def meanpool_of(model, x):
    return np.asarray(keras.Model(model.input, model.get_layer("meanpool").output)(x, training=False))


@pytest.mark.parametrize("rnn", ["lstm", "gru", "bilstm", "peephole", "minimal"])
def test_masking_makes_the_mean_ignore_padding(rnn):
    """Book: the mean over time includes padded steps; masking (the fix) averages the words only."""
    seq = [5, 9, 3, 7]
    short = np.array([seq + [0] * 4], "int32")   # post padding, as the book's MR data
    long = np.array([seq + [0] * 12], "int32")
    for masking, same in ((False, False), (True, True)):
        keras.utils.set_random_seed(0)
        a = ch09.build_rnn_sentiment(8, vocab_size=20, hidden_size=6, rnn=rnn, masking=masking)
        b = ch09.build_rnn_sentiment(16, vocab_size=20, hidden_size=6, rnn=rnn, masking=masking)
        b.set_weights(a.get_weights())
        pa, pb = meanpool_of(a, short), meanpool_of(b, long)
        assert np.allclose(pa, pb, atol=1e-5) == same, (rnn, masking)
    if rnn == "lstm":  # with masking, the mean is the mean of the LSTM outputs at the four words
        seqs = keras.Model(a.input, a.get_layer("lstm").output)(short, training=False)
        np.testing.assert_allclose(pa, np.asarray(seqs)[:, :4].mean(axis=1), rtol=1e-5, atol=1e-6)


def test_models_follow_the_book():
    m = ch09.build_rnn_sentiment(56, vocab_size=10000, hidden_size=100)
    names = [layer.name for layer in m.layers]
    assert names == ["inputs", "embed", "lstm", "dropout", "meanpool", "hidden", "output"]
    # Embedding 10000 x 100, LSTM(100) on 100, Dense(100), Dense(1)
    assert m.count_params() == 10000 * 100 + 4 * (100 * 100 * 2 + 100) + (100 * 100 + 100) + 101
    p = ch09.build_rnn_sentiment(56, vocab_size=100, hidden_size=8, rnn="peephole")
    bi = p.get_layer("peephole_bilstm")
    assert bi.forward_layer.cell.peephole == "full" and bi.output.shape == (None, 56, 16)
    assert ch09.book_demo_params() == 1312


def test_lstm_sentiment_end_to_end_and_predict(mr, monkeypatch, capsys):
    m = run_task(mr, monkeypatch, "ch09_lstm_sentiment", small("ch09_lstm_sentiment", epochs=10))
    assert m["n_examples"] == 60 and m["test_accuracy"] > 0.75  # the synthetic classes differ by their words
    capsys.readouterr()
    assert predict.main(["ch09_lstm_sentiment", "superb brilliant charming film", "awful boring tedious mess"]) == 0
    labels = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert labels == ["pos", "neg"]


def test_masked_lstm_sentiment_trains(mr, monkeypatch):
    m = run_task(mr, monkeypatch, "ch09_lstm_sentiment", small("ch09_lstm_sentiment", masking=True, epochs=10))
    assert m["test_accuracy"] > 0.75


def test_custom_cell_end_to_end(mr, monkeypatch):
    m = run_task(mr, monkeypatch, "ch09_custom_cell", small("ch09_custom_cell"))
    assert m["book_demo_params"] == 1312 and 0.0 <= m["test_accuracy"] <= 1.0
    model = keras.models.load_model(mr / "models" / "ch09_custom_cell" / "model.keras")
    cell = model.get_layer("minimal_rnn").cell
    assert type(cell).__name__ == "MinimalRNNCell" and cell.unused_bias
    np.testing.assert_array_equal(np.asarray(cell.bias), 0.0)  # never used, so never trained


@pytest.mark.parametrize("peephole", ["full", "diagonal"])
def test_peephole_sentiment_end_to_end(mr, monkeypatch, peephole):
    m = run_task(mr, monkeypatch, "ch09_peephole_sentiment", small("ch09_peephole_sentiment", peephole=peephole,
                                                                   epochs=10))
    assert m["test_accuracy"] > 0.75  # 10 epochs: learnt on every backend (at 6, JAX's random stream may not be)
    model = keras.models.load_model(mr / "models" / "ch09_peephole_sentiment" / "model.keras")
    assert model.get_layer("peephole_bilstm").backward_layer.cell.peephole == peephole


def test_rnn_comparison_end_to_end(mr, monkeypatch):
    over = {**small("ch09_rnn_comparison", epochs=1), "ch09_rnn_comparison.models": ["lstm", "peephole", "kim_cnn"],
            "ch09_rnn_comparison.seeds": [1, 2]}
    m = run_task(mr, monkeypatch, "ch09_rnn_comparison", over)
    for model in ("lstm", "peephole", "kim_cnn"):
        assert 0 <= m[f"test_{model}_accuracy_mean"] <= 1 and m[f"test_{model}_accuracy_n"] == 2
        assert m[f"test_{model}_accuracy_std"] >= 0 and m[f"{model}_seconds_per_epoch"] > 0
    assert m["peephole_speed_vs_lstm"] > 0 and "peephole_speed_vs_bilstm" not in m
    rows = list(csv.DictReader(open(mr / "plots" / "ch09_rnn_comparison" / "eval" / "comparison.csv")))
    assert [(r["model"], r["seed"]) for r in rows] == [(mm, s) for mm in ("lstm", "peephole", "kim_cnn")
                                                       for s in ("1", "2")]
    accs = [float(r["accuracy"]) for r in rows if r["model"] == "lstm"]
    assert m["test_lstm_accuracy_mean"] == pytest.approx(np.mean(accs))
    timing = (mr / "plots" / "ch09_rnn_comparison" / "train" / "timing.csv").read_text().splitlines()
    assert timing[0] == "model,seed,params,epochs,train_seconds,seconds_per_epoch,examples_per_second"
    assert len(timing) == 7
    assert (mr / "models" / "ch09_rnn_comparison" / "peephole_s2" / "model.keras").is_file()


def test_bad_params_name_the_key(mr, monkeypatch):
    with pytest.raises(ParamError, match="params.yaml: ch09_peephole_sentiment.peephole should be one of full, "
                                         "diagonal, got 'none'"):
        run_task(mr, monkeypatch, "ch09_peephole_sentiment", small("ch09_peephole_sentiment", peephole="none"))
    with pytest.raises(ParamError, match=r"params.yaml: ch09_rnn_comparison.models\[1\] should be one of lstm, gru, "
                                         r"bilstm, peephole, kim_cnn, cnn1d, got 'rnn'"):
        run_task(mr, monkeypatch, "ch09_rnn_comparison", {**small("ch09_rnn_comparison"),
                                                          "ch09_rnn_comparison.models": ["lstm", "rnn"]})
    with pytest.raises(ParamError, match="params.yaml: ch09_lstm_sentiment.masking should be true or false, got "
                                         "'yes'"):
        run_task(mr, monkeypatch, "ch09_lstm_sentiment", small("ch09_lstm_sentiment", masking="yes"))


@pytest.mark.parametrize("rnn", ch09.RNNS)
def test_an_all_padding_row_keeps_the_masked_model_finite(rnn):
    """With masking, a text whose words are all outside vocab_size is all padding; its mean must not be 0/0."""
    x = np.array([[3, 4, 5, 0, 0], [0, 0, 0, 0, 0]], "int32")
    keras.utils.set_random_seed(0)
    model = ch09.build_rnn_sentiment(5, vocab_size=8, hidden_size=4, rnn=rnn, masking=True)
    np.testing.assert_array_equal(meanpool_of(model, x)[1], 0.0)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    loss = model.train_on_batch(x, np.array([1.0, 0.0], "float32"))
    assert np.isfinite(loss)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert np.isfinite(np.asarray(model(x, training=False))).all()


def test_masked_lstm_on_texts_outside_the_vocabulary_writes_finite_metrics(mr, monkeypatch):
    """The user's case (real MR, masking: true): rows of the training split that vocab_size empties entirely."""
    from dltm.data import load_prepared_text

    prepared = load_prepared_text(mr / "data" / "prepared" / "mr", 3)
    assert (prepared.x == 0).all(axis=1).sum() >= 10  # vocab_size 3 keeps two words: many texts are all padding
    m = run_task(mr, monkeypatch, "ch09_lstm_sentiment", small("ch09_lstm_sentiment", masking=True, epochs=2,
                                                                vocab_size=3))
    assert np.isfinite(m["test_loss"]) and 0.0 <= m["test_accuracy"] <= 1.0
    history = (mr / "plots" / "ch09_lstm_sentiment" / "train" / "history.csv").read_text()
    assert "nan" not in history.lower()


def test_a_diverging_learning_rate_stops_training_with_an_error(mr, monkeypatch, capsys):
    """A NaN loss ends the train stage with one line naming the task and the epoch; no model, no metrics."""
    from dltm import cli
    from dltm.training import NonFiniteLossError
    from stages import evaluate, train

    with pytest.raises(NonFiniteLossError, match=r"ch09_lstm_sentiment: the training loss became nan in epoch 1 "
                                                 r"of 3 \(batch \d+\)"):
        run_task(mr, monkeypatch, "ch09_lstm_sentiment", small("ch09_lstm_sentiment", epochs=3, optimizer="sgd",
                                                               learning_rate=1e30))
    assert not (mr / "models" / "ch09_lstm_sentiment").exists()
    assert [p.name for p in (mr / "models").iterdir()] == []  # nor a staging folder left behind
    assert not (mr / "metrics").exists()
    capsys.readouterr()
    assert cli.run(train.main, ["ch09_lstm_sentiment"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ch09_lstm_sentiment: the training loss became nan in epoch 1")
    assert cli.run(evaluate.main, ["ch09_lstm_sentiment"]) == 2
    assert capsys.readouterr().err.strip() == ("error: models/ch09_lstm_sentiment/run.json: missing; run "
                                               "`dvc repro train@ch09_lstm_sentiment` first")
