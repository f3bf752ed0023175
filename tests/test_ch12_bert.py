"""Chapter 12.2-12.3: the WordPiece prepare stage, BERT's dynamic masking, and a tiny BERT pre-trained and
fine-tuned through the stages, whose fine-tuned classifier takes raw text."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from dltm import wordpiece as wp
from dltm.data import prepare_imdb, prepare_mr
from pipelines import ch12_transformer as ch12

from .conftest import run_task, synthetic_imdb, synthetic_mr

MR_PARAMS = {"encoding": "cp1252", "split_seed": 10, "dev_size": 40, "cv_folds": 4, "cv_seed": 10}
WP_PARAMS = {"vocabulary_size": 200, "lowercase": True, "shuffle_seed": 10,
             "sources": ["imdb_train", "imdb_test", "mr"]}
TINY_BERT = {"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32, "seq_length": 24}


def windows_of(n: int, length: int, rng) -> np.ndarray:
    texts = [rng.integers(5, 100, size=rng.integers(3, 40)) for _ in range(n)]
    return wp.windows(texts, length)


def test_bert_inputs_and_windows_frame_each_piece_run_with_cls_and_sep():
    x = wp.bert_inputs([np.array([7, 8, 9]), np.arange(10, 30)], 8)
    assert x[0].tolist() == [wp.CLS_ID, 7, 8, 9, wp.SEP_ID, 0, 0, 0]
    assert x[1].tolist() == [wp.CLS_ID, 10, 11, 12, 13, 14, 15, wp.SEP_ID]  # the first pieces of a long text
    w = wp.windows([np.arange(10, 23)], 7)  # 13 pieces, 5 a window: 3 windows, the last one shorter
    assert w.shape == (3, 7) and w[2].tolist() == [wp.CLS_ID, 20, 21, 22, wp.SEP_ID, 0, 0]
    assert wp.windows([np.arange(10, 23)], 7, max_windows=2).shape == (2, 7)


def test_masking_follows_bert_rates_and_never_touches_specials():
    rng = np.random.default_rng(0)
    x = windows_of(3000, 32, rng)
    m = wp.mask_tokens(x, np.random.default_rng(1), vocabulary_size=100, rate=0.15, max_predictions=8)
    chosen = m["mask_weights"] > 0
    pieces = (x > wp.MASK_ID).sum(1)
    np.testing.assert_array_equal(chosen.sum(1), np.minimum(8, np.maximum(1, np.round(pieces * 0.15))))
    rows = np.repeat(np.arange(len(x))[:, None], 8, 1)[chosen]
    pos = m["mask_positions"][chosen]
    assert (x[rows, pos] > wp.MASK_ID).all()  # only word pieces: never [PAD], [CLS] or [SEP]
    np.testing.assert_array_equal(m["mask_ids"][chosen], x[rows, pos])  # the labels are the original pieces
    now = m["token_ids"][rows, pos]
    masked, kept = np.mean(now == wp.MASK_ID), np.mean(now == x[rows, pos])
    assert abs(masked - 0.8) < 0.02 and 0.09 < kept < 0.13  # 10% left as they were (+ random draws of the same)
    untouched = np.ones_like(x, dtype=bool)
    untouched[rows, pos] = False
    np.testing.assert_array_equal(m["token_ids"][untouched], x[untouched])
    np.testing.assert_array_equal(m["padding_mask"], x != 0)
    again = wp.mask_tokens(x, np.random.default_rng(1), 100, 0.15, 8)
    np.testing.assert_array_equal(again["token_ids"], m["token_ids"])  # same seed, same masks


def test_masks_change_every_epoch_but_not_for_the_held_out_batches():
    x = windows_of(64, 16, np.random.default_rng(0))
    train = ch12.MaskedBatches(x, 32, 100, seed=3, rate=0.15, max_predictions=4, shuffle=False)
    first = train[0][0]["mask_positions"].copy()
    train.on_epoch_end()
    assert not np.array_equal(first, train[0][0]["mask_positions"])  # dynamic masking (RoBERTa)
    held = ch12.MaskedBatches(x, 32, 100, seed=3, rate=0.15, max_predictions=4, fixed=True)
    before = held[1][0]["mask_positions"].copy()
    held.on_epoch_end()
    np.testing.assert_array_equal(before, held[1][0]["mask_positions"])
    again = ch12.MaskedBatches(x, 32, 100, seed=3, rate=0.15, max_predictions=4, shuffle=False)
    np.testing.assert_array_equal(first, again[0][0]["mask_positions"])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ch12")
    synthetic_mr(root / "data" / "raw" / "mr", n_per_class=60)
    prepare_mr(root / "data" / "raw" / "mr", root / "data" / "prepared" / "mr", MR_PARAMS)
    raw = synthetic_imdb(root / "data" / "raw" / "imdb", n_per_class=40)
    prepare_imdb(raw, root / "data" / "prepared" / "imdb", {"shuffle_seed": 10})
    info = wp.prepare_wordpiece(root / "data", root / "data" / "prepared" / "wordpiece", WP_PARAMS)
    return root, info


def test_the_vocabulary_is_learned_from_the_texts_and_every_split_is_saved_as_ids(corpus):
    root, info = corpus
    prepared = root / "data" / "prepared" / "wordpiece"
    vocab = wp.read_vocabulary(prepared)
    assert vocab[:5] == wp.SPECIALS and info["vocabulary_size"] == len(vocab) <= 200
    assert {"superb", "boring", "film"} <= set(vocab)  # words of the synthetic reviews
    mr = wp.load_split(prepared, "mr")
    np.testing.assert_array_equal(mr.labels, np.load(root / "data" / "prepared" / "mr" / "labels.npy"))  # MR's order
    first = (root / "data" / "prepared" / "mr" / "texts.txt").read_text().splitlines()[0]
    decoded = " ".join(vocab[i] for i in mr.texts[0]).replace(" ##", "")  # BERT splits off punctuation too
    assert re.findall("[a-z]+", decoded) == re.findall("[a-z]+", first.lower())
    assert len(wp.load_split(prepared, "imdb_train").texts) == 80 and info["imdb_test"]["texts"] == 80
    encoder = wp.WordPieceEncoder(vocab, True, 8)
    assert encoder.texts_to_sequences(["Superb film"])[0] == [wp.CLS_ID, vocab.index("superb"),
                                                              vocab.index("film"), wp.SEP_ID]
    assert json.loads(encoder.to_json())["wordpiece"]["seq_length"] == 8


def test_a_missing_prepare_names_the_stage(tmp_path):
    from dltm.cli import MissingOutputError

    with pytest.raises(MissingOutputError, match="dvc repro prepare@mr"):
        wp.prepare_wordpiece(tmp_path, tmp_path / "out", WP_PARAMS)
    with pytest.raises(MissingOutputError, match="dvc repro prepare_wordpiece"):
        wp.load_split(tmp_path, "mr")


def test_pretrain_then_finetune_through_the_stages_and_predict_raw_text(corpus, tmp_path, monkeypatch, capsys):
    import shutil

    from stages import predict

    root, _ = corpus
    shutil.copytree(root / "data", tmp_path / "data")
    pre = run_task(tmp_path, monkeypatch, "ch12_bert_pretrain", {
        **{f"ch12_bert_pretrain.{k}": v for k, v in TINY_BERT.items()},
        "ch12_bert_pretrain.epochs": 2, "ch12_bert_pretrain.batch_size": 16,
        "ch12_bert_pretrain.validation_texts": 20, "ch12_bert_pretrain.max_predictions": 4})
    vocab = wp.read_vocabulary(tmp_path / "models" / "ch12_bert_pretrain")
    assert pre["masked_pieces"] > 0 and pre["test_perplexity"] < len(vocab)  # better than a uniform guess
    history = (tmp_path / "plots" / "ch12_bert_pretrain" / "train" / "history.csv").read_text().splitlines()
    assert history[0].split(",")[:5] == ["epoch", "train_accuracy", "train_loss", "val_accuracy", "val_loss"] \
        and len(history) == 3
    val_loss = [float(row.split(",")[4]) for row in history[1:]]
    assert val_loss[1] < val_loss[0]  # the masked LM learns
    # the test scores use the validation curve's masks: the last epoch's val_loss, up to float32 sums
    assert pre["test_mlm_loss"] == pytest.approx(val_loss[-1], rel=1e-3)
    table = (tmp_path / "plots" / "ch12_bert_pretrain" / "eval" / "fill_mask.md").read_text().splitlines()
    assert len(table) > 5 and all(row.count("|") == 4 and "[" in row for row in table[4:])
    m = run_task(tmp_path, monkeypatch, "ch12_bert_finetune", {
        "ch12_bert_finetune.seq_length": 24, "ch12_bert_finetune.max_folds": 1, "ch12_bert_finetune.epochs": 15,
        "ch12_bert_finetune.learning_rate": 0.003, "ch12_bert_finetune.batch_size": 16})
    assert m["mr_bert_pretrained_accuracy_n"] == 1 and m["imdb_bert_random_accuracy_n"] == 1
    assert m["test_mr_tfidf_lr_accuracy_mean"] > 0.9  # the synthetic classes differ by their words
    assert m["test_imdb_bert_pretrained_accuracy_mean"] > 0.75
    rows = (tmp_path / "plots" / "ch12_bert_finetune" / "eval" / "accuracy.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3  # IMDB and MR's first fold: 2 inits + TF-IDF each
    capsys.readouterr()
    assert predict.main(["ch12_bert_finetune/imdb-pretrained", "superb brilliant charming delightful film",
                         "awful boring tedious mess"]) == 0
    labels = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert labels == ["pos", "neg"]
    # a fresh process that imports no chapter module loads it (the MLflow pyfunc's case) and refuses a text of
    # unknown pieces only
    folder = tmp_path / "models" / "ch12_bert_finetune" / "mr-pretrained" / "fold_0"
    code = ("import sys; from dltm.inference import TextClassifier; from dltm.cli import UserError\n"
            f"c = TextClassifier({str(folder)!r}); print(c.predict(['superb brilliant film'])[0].label)\n"
            "try: c.predict(['\u2603\u2603'])\nexcept UserError as e: print('refused', e)\n"
            "assert 'pipelines.ch12_transformer' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0] == "pos" and "refused text 1: no word of" in out.stdout


def test_mr_folds_are_prepare_mrs(corpus):
    from dltm.params import RunSettings, load
    from dltm.tasks import Context, get

    from .conftest import REPO

    root, _ = corpus
    params = load(REPO / "params.yaml")["ch12_bert_finetune"] | {"seq_length": 24}
    ctx = Context(get("ch12_bert_finetune"), params, RunSettings(), tracker=None, root=root)
    folds = np.load(root / "data" / "prepared" / "mr" / "folds.npy")
    mr = wp.load_split(root / "data" / "prepared" / "wordpiece", "mr")
    rows = {tuple(wp.bert_inputs([t], 24)[0]) for t, f in zip(mr.texts, folds, strict=True) if f == 2}
    data = ch12.finetune_split(ctx, "mr", 2)
    assert {tuple(r) for r in data.x_test} == rows and len(data.x_test) == int((folds == 2).sum())
    assert len(data.x_train) + len(data.x_test) == len(folds)


def test_a_finetune_longer_than_the_pretrained_positions_is_refused(corpus, tmp_path, monkeypatch):
    import shutil

    from dltm.params import ParamError

    root, _ = corpus
    shutil.copytree(root / "data", tmp_path / "data")
    run_task(tmp_path, monkeypatch, "ch12_bert_pretrain", {
        **{f"ch12_bert_pretrain.{k}": v for k, v in TINY_BERT.items()}, "ch12_bert_pretrain.epochs": 1,
        "ch12_bert_pretrain.validation_texts": 20})
    from stages import train

    from .conftest import write_params

    write_params(tmp_path, {"ch12_bert_finetune.seq_length": 64, "ch12_bert_finetune.datasets": ["mr"]})
    with pytest.raises(ParamError, match="ch12_bert_finetune.seq_length 64 is longer than the pre-trained"):
        train.main(["ch12_bert_finetune"])


def test_fit_sees_new_masks_each_epoch():
    import keras

    keras.utils.set_random_seed(0)
    seen: list[np.ndarray] = []

    class Recorded(ch12.MaskedBatches):
        def __getitem__(self, i):
            batch = super().__getitem__(i)
            if i == 0:
                seen.append(batch[0]["mask_positions"].copy())
            return batch

    x = windows_of(32, 16, np.random.default_rng(0))
    model = ch12.build_masked_lm(ch12.build_backbone(100, {**TINY_BERT, "seq_length": 16, "dropout": 0.0}))
    model.compile(optimizer="adam", loss=ch12.mlm_loss())
    keras.Model.fit(model, Recorded(x, 16, 100, seed=3, rate=0.15, max_predictions=4, shuffle=False), epochs=3,
                    verbose=0)
    epochs = seen[-3:]  # TensorFlow's adapter also fetches batch 0 once before training, to learn its shapes
    assert len(seen) in (3, 4) and not np.array_equal(epochs[0], epochs[1]) \
        and not np.array_equal(epochs[1], epochs[2])
