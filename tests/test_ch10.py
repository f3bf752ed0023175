"""Chapter 10: the book's character-level encoder-decoder on tiny synthetic pairs; data handling on the book's
file (cmn.txt) when the mirror has it."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

from dltm import cli
from dltm.cli import MissingOutputError, UserError
from dltm.data import held_out_split, load_pairs, prepare_pairs
from dltm.decoding import beam_search, greedy
from dltm.translation import TRANSLATOR_FILE, load_translator, split_words
from pipelines import ch10_seq2seq as ch10
from stages import translate

from .conftest import MIRROR, REPO, run_task

# A toy "language": each English word has one Chinese character; sentences of 1-3 words.
LEXICON = {"cat": "猫", "dog": "狗", "big": "大", "red": "红", "fish": "鱼", "eats": "吃", "runs": "跑"}


def toy_pairs(n: int, seed: int = 0, sep: str = "") -> list[tuple[str, str]]:
    """``n`` pairs, the book's examples first; ``sep`` between the Chinese words (a space keeps jieba from joining
    two toy characters into one word: one Chinese word per English word)."""
    rng = np.random.default_rng(seed)
    words = list(LEXICON)
    pairs = [(src, tgt) for src, tgt in ch10.BOOK_EXAMPLES.items()]
    while len(pairs) < n:
        k = rng.integers(1, 4)
        ws = [words[i] for i in rng.integers(0, len(words), k)]
        pairs.append((" ".join(ws) + ".", sep.join([*(LEXICON[w] for w in ws), "。"])))
    return pairs


PREPARE = {"pool": 10000, "test_pairs": 30, "split_seed": 10, "train_only": list(ch10.BOOK_EXAMPLES)}


def write_cmn(root, sep: str = ""):
    """data/raw/cmn/cmn.txt of 600 toy pairs, prepared (30 held-out sentences)."""
    raw = root / "data" / "raw" / "cmn"
    raw.mkdir(parents=True)
    (raw / "cmn.txt").write_text("".join(f"{s}\t{t}\tCC-BY 2.0 (France) Attribution: tatoeba.org\n"
                                         for s, t in toy_pairs(600, sep=sep)), encoding="utf-8")
    prepare_pairs(raw, root / "data" / "prepared" / "cmn", PREPARE)
    shutil.copy(REPO / "dvc.yaml", root)  # the stage names the errors give
    return root


@pytest.fixture
def cmn(tmp_path):
    return write_cmn(tmp_path)


@pytest.fixture
def cmn_words(tmp_path):
    """The toy pairs with spaces between the Chinese words: the word-level models see one word per English word
    (the outputs come out joined, as Chinese is written; BLEU's zh tokenizer and chrF ignore the spaces)."""
    return write_cmn(tmp_path, sep=" ")


def test_held_out_sentences_are_drawn_at_random_never_the_books_examples_and_never_trained_on():
    sources = [s for s, _ in toy_pairs(200)] + ["cat.", "cat."]  # a source with several translations
    train, test = held_out_split(sources, 40, seed=10, keep=set(ch10.BOOK_EXAMPLES))
    held = {sources[i] for i in test}
    assert len(test) == len(held) == 40 and not held & {sources[i] for i in train}  # no test sentence trained on
    assert not held & set(ch10.BOOK_EXAMPLES)
    assert test.max() > 100  # drawn from the whole pool, not its (shortest) head
    again, _ = held_out_split(sources, 40, seed=10, keep=set(ch10.BOOK_EXAMPLES))
    np.testing.assert_array_equal(train, again)
    with pytest.raises(ch10.ParamError, match="test_pairs must be between 1 and"):
        held_out_split(sources, 500, seed=10)


def test_prepare_writes_the_held_out_sentences_of_the_pool_and_trains_on_everything_else(cmn):
    lines, sources, targets = load_pairs(cmn / "data" / "prepared" / "cmn", "test")
    train_lines, train_sources, _ = load_pairs(cmn / "data" / "prepared" / "cmn", "train")
    assert len(sources) == 30 and not set(sources) & set(train_sources)
    assert len(lines) + len(train_lines) + json.loads((cmn / "data" / "prepared" / "cmn" / "info.json").read_text(
        ))["left_out_other_translations"] == 600
    raw = (cmn / "data" / "raw" / "cmn" / "cmn.txt").read_text(encoding="utf-8").splitlines()
    assert raw[lines[0] - 1].split("\t")[:2] == [sources[0], targets[0]]  # line numbers of the raw file


def test_teacher_forcing_targets_are_the_inputs_one_step_earlier_and_padding_is_zero():
    index = ch10.char_index([ch10.START + ch10.END, "猫吃鱼"])
    dec_in, dec_out = ch10.teacher_forcing([list("猫吃")], index, length=6)
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


def test_seq2seq_char_trains_decodes_scores_held_out_pairs_and_translates_raw_text(cmn, monkeypatch, capsys):
    m = run_task(cmn, monkeypatch, "ch10_seq2seq_char", {
        "ch10_seq2seq_char.num_samples": 600, "ch10_seq2seq_char.epochs": 30, "ch10_seq2seq_char.batch_size": 16,
        "ch10_seq2seq_char.optimizer": "adam", "ch10_seq2seq_char.latent_dim": 64,
        "ch10_seq2seq_char.beam_examples": 5})
    # a one-character-per-word language, from ~450 pairs in 30 epochs: an untrained model matches nothing
    assert m["test_exact_match"] >= 0.2 and m["test_chrf"] > 20.0, m
    assert m["n_examples"] == 30 and 0.0 <= m["test_bleu"] <= 100.0 and 0.0 <= m["test_chrf"] <= 100.0
    assert "tok:zh" in m["bleu_signature"] and m["beam_examples"] == 5 and "test_bleu_beam" in m
    assert 0.0 <= m["book_examples_matching"] <= 1.0
    samples = (cmn / "plots" / "ch10_seq2seq_char" / "eval" / "samples.md").read_text(encoding="utf-8")
    assert "| Source | Reference | greedy | beam 3 |" in samples and "See you." in samples
    info = json.loads((cmn / "models" / "ch10_seq2seq_char" / TRANSLATOR_FILE).read_text(encoding="utf-8"))
    assert info["target_token_index"]["\t"] >= 1 and "猫" in info["target_token_index"] and info["unit"] == "char"
    history = (cmn / "plots" / "ch10_seq2seq_char" / "train" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss" and len(history) == 31

    # python -m stages.translate, and the MLflow pyfunc of the run, on raw text
    capsys.readouterr()
    assert translate.main(["ch10_seq2seq_char", "cat eats.", "--beam", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("cat eats.\t") and line.count("\t") == 1
    (cmn / "in.txt").write_text("dog.\n\nbig fish.\n", encoding="utf-8")
    assert translate.main(["ch10_seq2seq_char", "--file", "in.txt"]) == 0
    assert [ln.split("\t")[0] for ln in capsys.readouterr().out.splitlines()] == ["dog.", "big fish."]
    for argv, message in ((["ch10_nope", "hi"], "unknown translator 'ch10_nope'"),
                          (["ch10_seq2seq_char", " "], "text 1: empty"),
                          (["ch10_seq2seq_char", "hi", "--beam", "0"], "--beam must be >= 1"),
                          (["ch10_seq2seq_word", "hi"], "train_translation@ch10_seq2seq_word` first"),
                          (["ch10_seq2seq_char", "--file", "nothing.txt"], "no such file")):
        assert cli.run(translate.main, argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    run_id = json.loads((cmn / "models" / "ch10_seq2seq_char" / "run.json").read_text())["mlflow_run_id"]
    import mlflow

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/text_model")
    out = model.predict(["cat eats.", "dog."], params={"beam": 2})
    assert list(out["source"]) == ["cat eats.", "dog."] and out["translation"].map(len).min() >= 0
    assert out["translation"][0] == translate.translate("ch10_seq2seq_char", ["cat eats."], beam=2)[0]


WORD_SETTINGS = {"num_samples": None, "embed_dim": 16, "latent_dim": 32, "epochs": 30, "batch_size": 16,
                 "optimizer": "adam", "patience": 0, "beam_width": 2, "beam_examples": 5, "validation_split": 0.1}


@pytest.mark.parametrize("task", ["ch10_seq2seq_word", "ch10_seq2seq_attention", "ch10_gru_cho"])
def test_each_word_level_model_learns_the_toy_language_and_beam_search_decodes(cmn_words, monkeypatch, task):
    cmn = cmn_words
    m = run_task(cmn, monkeypatch, task, {f"{task}.{k}": v for k, v in WORD_SETTINGS.items()})
    # one Chinese word per English word, word for word: a model that learned nothing scores near 0
    assert m["test_bleu"] > 20.0 and m["test_chrf"] > 25.0, (task, m)  # TF: 32-37 BLEU, JAX: 26 (attention)
    assert m["beam_examples"] == 5 and 0.0 <= m["test_bleu_beam"] <= 100.0 + 1e-9
    t = load_translator(cmn / "models" / task)
    texts = ["cat eats fish.", "big dog runs.", "red fish."]
    assert t.unit == "word" and t.translate(texts) == [t.translate([x])[0] for x in texts]  # a batch, one by one
    assert t.unk == 1 and not any("<unk>" in x for x in t.translate(["dragon eats unicorn."] + texts, beam=2))
    start, end = t.target_index[ch10.START], t.target_index[ch10.END]
    for x in texts:  # a beam of one is greedy decoding
        states = t._initial(t.encode_sources([x]))
        one = beam_search(t._step, states, start, end, t.max_decoder_seq_length, width=1)[0]
        assert list(one.tokens) == greedy(t._step, states, start, end, t.max_decoder_seq_length)[0]
    translator = t
    if task == "ch10_seq2seq_attention":
        assert (cmn / "plots" / task / "eval" / "attention.png").stat().st_size > 5000
        src, out, w = translator.attend("big red dog.")
        assert src == ["big", "red", "dog", "."] and w.shape == (len(out), 4)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)


def test_a_folder_without_a_translator_is_named(tmp_path):
    with pytest.raises(MissingOutputError, match="model.keras: missing; train the task first"):
        load_translator(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(MissingOutputError, match="translator.json: missing"):
        load_translator(tmp_path)
    (tmp_path / "translator.json").write_text('{"unit": "char"}')
    with pytest.raises(UserError, match="translator.json: not a translator"):
        load_translator(tmp_path)


@pytest.mark.skipif(MIRROR is None or not (MIRROR / "book" / "cmn.txt").is_file(), reason="no dataset mirror")
def test_the_books_file_has_the_books_first_pairs():
    pairs = ch10.read_pairs(MIRROR / "book" / "cmn.txt", 10000)
    assert split_words(pairs[-1][1], "zh")  # jieba segments the Chinese side
    assert len(pairs) == 10000 and pairs[0][0] == "Hi."
    assert set(ch10.BOOK_EXAMPLES) <= {s for s, _ in pairs}


def test_a_line_separator_inside_a_sentence_does_not_split_its_pair(tmp_path):
    raw = tmp_path / "cmn.txt"
    raw.write_text("Hi\u2028there.\t你好\x0c。\r\nBye.\t再见。\n", encoding="utf-8")
    assert ch10.read_pairs(raw) == [("Hi\u2028there.", "你好\x0c。"), ("Bye.", "再见。")]
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "test.tsv").write_text("1\tHi\u2028there.\t你好\x0c。\n", encoding="utf-8")
    lines, sources, targets = load_pairs(tmp_path / "p", "test")
    assert lines.tolist() == [1] and sources == ["Hi\u2028there."] and targets == ["你好\x0c。"]
