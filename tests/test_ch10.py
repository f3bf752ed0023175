"""Chapter 10: the book's character-level encoder-decoder on tiny synthetic pairs; data handling on the book's
file (cmn.txt) when the mirror has it."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from pipelines import ch10_seq2seq as ch10

from .conftest import MIRROR, run_task

# A toy "language": each English word has one Chinese character; sentences of 1-3 words.
LEXICON = {"cat": "猫", "dog": "狗", "big": "大", "red": "红", "fish": "鱼", "eats": "吃", "runs": "跑"}


def toy_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    words = list(LEXICON)
    pairs = [(src, tgt) for src, tgt in ch10.BOOK_EXAMPLES.items()]
    while len(pairs) < n:
        k = rng.integers(1, 4)
        ws = [words[i] for i in rng.integers(0, len(words), k)]
        pairs.append((" ".join(ws) + ".", "".join(LEXICON[w] for w in ws) + "。"))
    return pairs


@pytest.fixture
def cmn(tmp_path):
    raw = tmp_path / "data" / "raw" / "cmn"
    raw.mkdir(parents=True)
    (raw / "cmn.txt").write_text("".join(f"{s}\t{t}\tCC-BY 2.0 (France) Attribution: tatoeba.org\n"
                                         for s, t in toy_pairs(600)), encoding="utf-8")
    return tmp_path


def test_held_out_pairs_are_drawn_at_random_never_the_books_examples_and_never_trained_on():
    sources = [s for s, _ in toy_pairs(200)]
    train, test = ch10.held_out_split(sources, 40, seed=10, keep=set(ch10.BOOK_EXAMPLES))
    assert len(test) == 40 and len(train) == 160 and not set(train) & set(test)
    assert not {sources[i] for i in test} & set(ch10.BOOK_EXAMPLES)
    assert test.max() > 100  # drawn from the whole pool, not its (shortest) head
    again, _ = ch10.held_out_split(sources, 40, seed=10, keep=set(ch10.BOOK_EXAMPLES))
    np.testing.assert_array_equal(train, again)
    with pytest.raises(ch10.ParamError, match="test_pairs must be between 1 and"):
        ch10.held_out_split(sources, 500, seed=10)


def test_teacher_forcing_targets_are_the_inputs_one_step_earlier_and_padding_is_zero():
    index = ch10.char_index([ch10.START + ch10.END, "猫吃鱼"])
    dec_in, dec_out = ch10.teacher_forcing(["猫吃"], index, length=6)
    reverse = {i: ch for ch, i in index.items()}
    assert [reverse[i] for i in dec_in[0] if i] == ["\t", "猫", "吃", "\n"]
    np.testing.assert_array_equal(dec_out[0, :3], dec_in[0, 1:4])
    assert dec_in[0, 4:].tolist() == [0, 0] and dec_out[0, 3:].tolist() == [0, 0, 0]


def test_one_hot_inside_the_model_is_the_books_one_hot_with_zero_padding():
    out = keras.ops.convert_to_numpy(ch10.OneHot(3)(np.array([[1, 3, 0]])))
    np.testing.assert_array_equal(out[0], [[1, 0, 0], [0, 0, 1], [0, 0, 0]])


def test_bad_lines_are_named(tmp_path):
    path = tmp_path / "cmn.txt"
    path.write_text("Hi.\t嗨。\nno tab here\n", encoding="utf-8")
    with pytest.raises(ch10.DataFileError, match=r"cmn.txt:2: expected"):
        ch10.read_pairs(path)


def test_seq2seq_char_trains_decodes_and_scores_held_out_pairs(cmn, monkeypatch):
    m = run_task(cmn, monkeypatch, "ch10_seq2seq_char", {
        "ch10_seq2seq_char.num_samples": 300, "ch10_seq2seq_char.test_pairs": 30,
        "ch10_seq2seq_char.latent_dim": 32, "ch10_seq2seq_char.epochs": 3, "ch10_seq2seq_char.beam_examples": 5})
    assert m["n_examples"] == 30 and 0.0 <= m["test_bleu"] <= 100.0 and 0.0 <= m["test_chrf"] <= 100.0
    assert "tok:zh" in m["bleu_signature"] and m["beam_examples"] == 5 and "test_bleu_beam" in m
    assert 0.0 <= m["book_examples_matching"] <= 1.0
    samples = (cmn / "plots" / "ch10_seq2seq_char" / "eval" / "samples.md").read_text(encoding="utf-8")
    assert "| Source | Reference | greedy | beam 3 |" in samples and "See you." in samples
    vocab = json.loads((cmn / "models" / "ch10_seq2seq_char" / ch10.VOCAB_FILE).read_text(encoding="utf-8"))
    assert vocab["target_token_index"]["\t"] >= 1 and "猫" in vocab["target_token_index"]
    history = (cmn / "plots" / "ch10_seq2seq_char" / "train" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss" and len(history) == 4


def test_a_trained_translator_learns_the_toy_language(cmn, monkeypatch):
    run_task(cmn, monkeypatch, "ch10_seq2seq_char", {
        "ch10_seq2seq_char.num_samples": 600, "ch10_seq2seq_char.test_pairs": 30, "ch10_seq2seq_char.epochs": 20,
        "ch10_seq2seq_char.batch_size": 16,
        "ch10_seq2seq_char.latent_dim": 64, "ch10_seq2seq_char.beam_width": 1})
    m = json.loads((cmn / "metrics" / "ch10_seq2seq_char.json").read_text())
    # a one-character-per-word language, from ~450 pairs in 20 epochs: an untrained model matches nothing
    assert m["test_exact_match"] >= 0.2 and m["test_chrf"] > 20.0, m


@pytest.mark.skipif(MIRROR is None or not (MIRROR / "book" / "cmn.txt").is_file(), reason="no dataset mirror")
def test_the_books_file_has_the_books_first_pairs():
    pairs = ch10.read_pairs(MIRROR / "book" / "cmn.txt", 10000)
    assert len(pairs) == 10000 and pairs[0][0] == "Hi."
    assert set(ch10.BOOK_EXAMPLES) <= {s for s, _ in pairs}
