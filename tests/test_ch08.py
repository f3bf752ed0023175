"""Chapter 8: the model-building examples' parameter counts, the char-level LM, the PTB word LM."""

import math

import keras
import numpy as np
import pytest

from dltm.cli import UserError
from dltm.params import ParamError
from pipelines import ch08_rnn as ch08
from stages import generate

from .conftest import run_task, write_corpora

TEXT = "the cat sat on the mat. the dog sat on the log. " * 60  # 2,880 characters, 14 distinct

SMALL_CHAR = {"ch08_char_rnn.hidden_size": 48, "ch08_char_rnn.seq_length": 10, "ch08_char_rnn.stride": 3,
              "ch08_char_rnn.epochs": 4, "ch08_char_rnn.batch_size": 32, "ch08_char_rnn.learning_rate": 0.01,
              "ch08_char_rnn.sample_every": 2, "ch08_char_rnn.sample_chars": 30, "ch08_char_rnn.test_fraction": 0.1}
SMALL_PTB = {"ch08_ptb_lm.hidden_size": 16, "ch08_ptb_lm.num_steps": 5, "ch08_ptb_lm.batch_size": 8,
             "ch08_ptb_lm.epochs": 2, "ch08_ptb_lm.learning_rate": 0.01, "run.max_train_examples": 400,
             "run.max_eval_examples": 80}


# ---- 8.2.2, 8.5.3, 8.5.5: the book's model summaries ----------------------------------------------------------


def test_model_building_examples_have_the_books_parameter_counts():
    assert ch08.build_stacked_rnn().count_params() == 361_866
    assert ch08.build_encoder_decoder().count_params() == 258_698
    assert ch08.build_time_distributed().count_params() == 136
    assert ch08.build_bidirectional().count_params() == 80_266


def test_encoder_states_initialise_the_decoder():
    model = ch08.build_encoder_decoder()
    decoder = model.get_layer("decoder")
    # the decoder LSTM is called on the embedded decoder input and the encoder's [state_h, state_c]
    inbound = decoder._inbound_nodes[0]
    assert len(inbound.input_tensors) == 3
    out = model([np.ones((2, 7), "int32"), np.ones((2, 4), "int32")])
    assert out.shape == (2, 10)


def test_time_distributed_is_a_dense_per_step():
    model = ch08.build_time_distributed()
    x = np.random.default_rng(0).normal(size=(3, 10, 16)).astype("float32")
    y = np.asarray(model(x))
    assert y.shape == (3, 10, 8)
    dense = model.layers[0].layer
    kernel, bias = (np.asarray(w) for w in dense.weights)
    for t in range(10):
        np.testing.assert_allclose(y[:, t], x[:, t] @ kernel + bias, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode,width", [("concat", 128), ("sum", 64), ("mul", 64), ("ave", 64)])
def test_bidirectional_merge_modes(mode, width):
    bi = keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True), merge_mode=mode)
    x = np.random.default_rng(1).normal(size=(2, 5, 10)).astype("float32")
    y = np.asarray(bi(x))
    assert y.shape == (2, 5, width)
    f, b = (np.asarray(t) for t in (bi.forward_layer(x), bi.backward_layer(x)))
    b = b[:, ::-1]  # the backward layer's outputs, back in time order
    want = {"concat": np.concatenate([f, b], -1), "sum": f + b, "mul": f * b, "ave": (f + b) / 2}[mode]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    assert ch08.build_bidirectional(mode).output_shape == (None, 10)


def test_bidirectional_without_merge_returns_both_directions():
    out = keras.layers.Bidirectional(keras.layers.LSTM(4), merge_mode=None)(np.zeros((2, 5, 3), "float32"))
    assert isinstance(out, (list, tuple)) and [tuple(o.shape) for o in out] == [(2, 4), (2, 4)]


# ---- 8.2.3: the character-level language model ----------------------------------------------------------------


def test_char_windows_and_vocabulary():
    chars = ch08.char_vocab("hello world")
    assert chars == sorted(chars) and "".join(chars) == " dehlorw"
    idx = ch08.encode_chars("hello", chars)
    x, y = ch08.char_windows(idx, 3)
    assert x.tolist() == [idx[0:3].tolist(), idx[1:4].tolist()] and (y == np.stack([idx[1:4], idx[2:5]])).all()
    x, _ = ch08.char_windows(ch08.encode_chars("hello world", chars), 3, stride=3)
    assert x[:, 0].tolist() == [ch08.encode_chars(c, chars)[0] for c in "hlw"]
    with pytest.raises(ValueError, match="not in the model's vocabulary: 'Z'"):
        ch08.encode_chars("heZ", chars)


def test_char_model_is_the_books():
    model = ch08.build_char_rnn(vocab_size=60)
    # Dense(60 -> 500), SimpleRNN(500, 500), Dense(500 -> 60)
    assert model.count_params() == (60 * 500 + 500) + (500 * 500 * 2 + 500) + (500 * 60 + 60)
    assert [layer.name for layer in model.layers] == ["hidden", "rnn", "output"]
    assert model.get_layer("rnn").activation.__name__ == "relu"


def write_text_corpus(root, text=TEXT):
    folder = root / "data" / "raw" / "charlm"
    folder.mkdir(parents=True)
    (folder / "input.txt").write_text(text, encoding="utf-8")


def test_char_rnn_end_to_end_then_generate(tmp_path, monkeypatch, capsys):
    write_text_corpus(tmp_path)
    m = run_task(tmp_path, monkeypatch, "ch08_char_rnn", SMALL_CHAR)
    assert m["vocab_size"] == 14 and m["uniform_bits_per_character"] == pytest.approx(math.log2(14))
    assert m["test_bits_per_character"] < 1.0 < math.log2(14)  # far below a uniform guess: the text repeats
    assert m["test_bits_per_character"] == pytest.approx(m["test_cross_entropy"] / math.log(2))
    assert m["test_accuracy"] > 0.5
    samples = (tmp_path / "plots" / "ch08_char_rnn" / "eval" / "samples.txt").read_text()
    assert "temperature 0.8" in samples and "The book's check" in samples
    assert "epoch 2" in (tmp_path / "plots" / "ch08_char_rnn" / "train" / "samples.txt").read_text()
    model, info = ch08.load_char_model(tmp_path / "models" / "ch08_char_rnn")
    vocab = info["ix_to_char"]
    a = ch08.sample(model, vocab, "the cat ", 40, temperature=0.8, seed=3, window=10)
    assert a == ch08.sample(model, vocab, "the cat ", 40, temperature=0.8, seed=3, window=10)
    assert len(a) == 40 and set(a) <= set(vocab)
    greedy = ch08.sample(model, vocab, "the cat sat on the ", 3, temperature=0)
    assert greedy == "mat"
    capsys.readouterr()
    assert generate.main(["ch08_char_rnn", "the dog ", "--chars", "25", "--temperature", "0.5", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the dog ") and len(out.rstrip("\n")) == len("the dog ") + 25
    with pytest.raises(UserError, match="the seed text has characters that ch08_char_rnn's corpus lacks: 'Q'"):
        generate.main(["ch08_char_rnn", "QQ", "--chars", "5"])


def test_char_rnn_bad_params_name_the_key(tmp_path, monkeypatch):
    write_text_corpus(tmp_path)
    with pytest.raises(ParamError, match=r"ch08_char_rnn.test_fraction should be a number in \(0, 1\), got 0\.0"):
        run_task(tmp_path, monkeypatch, "ch08_char_rnn", {**SMALL_CHAR, "ch08_char_rnn.test_fraction": 0.0})
    with pytest.raises(ParamError, match="ch08_char_rnn.dataset should be one of charlm, nietzsche, got 't1'"):
        run_task(tmp_path, monkeypatch, "ch08_char_rnn", {**SMALL_CHAR, "ch08_char_rnn.dataset": "t1"})
    with pytest.raises(ParamError, match="params.yaml: ch08_char_rnn.hidden_size should be an integer >= 1, got 0"):
        run_task(tmp_path, monkeypatch, "ch08_char_rnn", {**SMALL_CHAR, "ch08_char_rnn.hidden_size": 0})


def test_the_books_learning_rate_of_0_1_diverges():
    """Book 8.2.3 trains with Adam(learning_rate=0.1): with its 500-unit relu RNN the loss blows up or stalls
    at the unigram level (here: NaN from the first epoch), while 0.001 (the default here) learns."""
    chars = ch08.char_vocab(TEXT)
    x, y = ch08.char_windows(ch08.encode_chars(TEXT, chars), 25, stride=4)
    ds = ch08.one_hot_dataset(x, y, len(chars), 100, shuffle_seed=0)
    losses = {}
    for lr in (0.1, 0.001):
        keras.utils.set_random_seed(0)
        model = ch08.build_char_rnn(len(chars), 500)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="sparse_categorical_crossentropy")
        hist = model.fit(ds, epochs=2, verbose=0).history["loss"]
        losses[lr] = hist[-1] if np.isfinite(hist[-1]) else np.inf
    unigram = -sum(p * math.log(p) for p in (np.bincount(ch08.encode_chars(TEXT, chars)) / len(TEXT)) if p > 0)
    assert losses[0.001] < 0.5 * unigram
    assert losses[0.1] > 2 * losses[0.001] and losses[0.1] > 0.8 * unigram


# ---- 8.5: the PTB word language model --------------------------------------------------------------------------


def test_ptb_reader_vocabulary_and_zaremba_batches(tmp_path):
    words = ["a", "b", "a", "<eos>", "c", "a", "b", "<eos>"]
    assert ch08.build_vocab(words, 10) == ["a", "<eos>", "b", "c", "<unk>"]
    assert ch08.build_vocab(words, 3) == ["a", "<eos>", "<unk>"]  # <unk> always kept
    ids = ch08.to_ids(["a", "zzz", "c"], ch08.build_vocab(words, 10))
    assert ids.tolist() == [0, 4, 3]
    (tmp_path / "p.txt").write_text(" x y \n z \n")
    assert ch08.ptb_words(tmp_path / "p.txt") == ["x", "y", "<eos>", "z", "<eos>"]
    stream = np.arange(2 * 11, dtype=np.int32)
    x, y = ch08.zaremba_batches(stream, batch_size=2, num_steps=3)
    assert x.shape == (3, 2, 3)  # (11 - 1) // 3 windows per row
    assert x[0].tolist() == [[0, 1, 2], [11, 12, 13]] and y[0].tolist() == [[1, 2, 3], [12, 13, 14]]
    assert x[1].tolist() == [[3, 4, 5], [14, 15, 16]]  # row r of batch 1 continues row r of batch 0
    assert ch08.zaremba_batches(stream[:4], 2, 3)[0].shape == (0, 2, 3)


def test_ptb_model_shape_and_cudnn_friendly_lstms():
    model = ch08.build_ptb_lm(10000, 500, 2, 0.5, 30)
    assert model.output_shape == (None, 30, 10000)
    assert model.count_params() == 10000 * 500 + 2 * 4 * (500 * 500 * 2 + 500) + 500 * 10000 + 10000
    for layer in model.layers:
        if isinstance(layer, keras.layers.LSTM):
            assert layer.activation.__name__ == "tanh" and layer.recurrent_activation.__name__ == "sigmoid"
            assert layer.recurrent_dropout == 0 and not layer.unroll and layer.use_bias
    zaremba = ch08.build_ptb_lm(100, 8, 2, 0.5, 5, dropout_between_layers=True, init_scale=0.05)
    assert [type(layer).__name__ for layer in zaremba.layers].count("Dropout") == 3
    assert np.abs(np.asarray(zaremba.get_layer("lstm_1").cell.kernel)).max() <= 0.05


def test_stateful_model_carries_state_across_batches():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).integers(0, 50, size=(2, 4, 6)).astype("int32")  # two batches of 4 x 6
    stateful = ch08.build_ptb_lm(50, 8, 2, 0.0, 6, batch_size=4, stateful=True)
    first_alone = np.asarray(stateful(x[1]))
    ch08.reset_states(stateful)
    stateful(x[0])
    after_first = np.asarray(stateful(x[1]))
    assert np.abs(after_first - first_alone).max() > 1e-4  # batch 2's output depends on batch 1
    ch08.reset_states(stateful)
    np.testing.assert_allclose(np.asarray(stateful(x[1])), first_alone, rtol=1e-5, atol=1e-6)
    plain = ch08.build_ptb_lm(50, 8, 2, 0.0, 6)
    plain(x[0])
    a = np.asarray(plain(x[1]))
    np.testing.assert_allclose(a, np.asarray(plain(x[1])), rtol=1e-6)


def test_summed_cost_is_num_steps_times_the_mean():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype("float32")
    y = rng.integers(0, 7, size=(3, 5))
    mean = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    summed = np.mean(np.asarray(ch08.summed_over_steps_crossentropy(y, logits)))
    assert summed == pytest.approx(5 * float(mean), rel=1e-5)


@pytest.fixture
def ptb(tmp_path):
    write_corpora(tmp_path / "data" / "raw")
    return tmp_path


@pytest.mark.parametrize("extra", [{}, {"ch08_ptb_lm.stateful": True, "ch08_ptb_lm.optimizer": "sgd",
                                        "ch08_ptb_lm.learning_rate": 1.0, "ch08_ptb_lm.clipnorm": 5.0,
                                        "ch08_ptb_lm.loss": "sum_over_steps", "ch08_ptb_lm.lr_decay": 0.5,
                                        "ch08_ptb_lm.lr_decay_after": 1, "ch08_ptb_lm.init_scale": 0.05,
                                        "ch08_ptb_lm.dropout_between_layers": True}])
def test_ptb_lm_end_to_end(ptb, monkeypatch, extra):
    m = run_task(ptb, monkeypatch, "ch08_ptb_lm", {**SMALL_PTB, **extra})
    vocab = m["vocab_size"]
    assert vocab == 18 + 15 + 3  # the synthetic corpus: topic words, filler, <unk>, N and <eos>
    for split in ("val", "test"):
        assert math.isfinite(m[f"{split}_perplexity"]) and 1 < m[f"{split}_perplexity"] < vocab
        assert m[f"{split}_perplexity"] == pytest.approx(math.exp(m[f"{split}_cross_entropy"]))
    assert m["test_words"] == 80 // 8 * 8 * 5
    table = (ptb / "plots" / "ch08_ptb_lm" / "eval" / "perplexity.csv").read_text().splitlines()
    assert table[0] == "split,perplexity,cross_entropy,words" and table[2].startswith(
        f"test,{m['test_perplexity']:.4f},")
    history = (ptb / "plots" / "ch08_ptb_lm" / "train" / "history.csv").read_text().splitlines()
    assert {"val_perplexity", "test_perplexity", "train_perplexity"} <= set(history[0].split(",")) and len(history) == 3
    if extra:  # lr 1 for epoch 1 (lr_decay_after 1), then halved
        lr = [float(r.split(",")[history[0].split(",").index("learning_rate")]) for r in history[1:]]
        assert lr == pytest.approx([1.0, 0.5])


def test_ptb_lm_bad_params_name_the_key(ptb, monkeypatch):
    with pytest.raises(ParamError, match="ch08_ptb_lm.loss should be one of mean, sum_over_steps, got 'sum'"):
        run_task(ptb, monkeypatch, "ch08_ptb_lm", {**SMALL_PTB, "ch08_ptb_lm.loss": "sum"})
    with pytest.raises(ParamError, match="params.yaml: ch08_ptb_lm.batch_size x num_steps = 8 x 5000"):
        run_task(ptb, monkeypatch, "ch08_ptb_lm", {**SMALL_PTB, "ch08_ptb_lm.num_steps": 5000})
    with pytest.raises(ParamError, match=r"params.yaml: ch08_ptb_lm.lr_decay should be a number in \(0, 1\], got 1.5"):
        run_task(ptb, monkeypatch, "ch08_ptb_lm", {**SMALL_PTB, "ch08_ptb_lm.lr_decay": 1.5})
