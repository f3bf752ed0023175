"""Chapter 12.1: keras-io's Transformer classifier: its padding mask, its attention weights, the task on MR and
IMDB through the stages, and raw text in through stages.predict."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dltm.data import prepare_imdb, prepare_mr
from pipelines import ch12_transformer as ch12
from stages import predict

from .conftest import run_task, synthetic_imdb, synthetic_mr

MR_PARAMS = {"encoding": "cp1252", "split_seed": 10, "dev_size": 60, "cv_folds": 5, "cv_seed": 10}
SMALL = {"ch12_transformer_classifier.vocab_size": 60, "ch12_transformer_classifier.embed_dim": 16,
         "ch12_transformer_classifier.ff_dim": 16, "ch12_transformer_classifier.hidden_dims": 8,
         "ch12_transformer_classifier.maxlen": 40, "ch12_transformer_classifier.epochs": 8,
         "ch12_transformer_classifier.batch_size": 16}


def model(masking: bool = True, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return ch12.build_transformer_classifier(maxlen=12, vocab_size=30, embed_dim=8, num_heads=2, ff_dim=8,
                                             hidden_dims=4, masking=masking)


def test_the_classifier_is_keras_ios_block_and_ignores_trailing_padding():
    m = model()
    assert m.get_layer("transformer_block").num_heads == 2 and m.output.shape == (None, 1)
    words = np.array([[5, 9, 2, 7]])
    padded = np.array([[5, 9, 2, 7, 0, 0, 0, 0, 0, 0, 0, 0]])
    a, b = (np.asarray(m(x, training=False)) for x in (words, padded))
    np.testing.assert_allclose(a, b, atol=1e-6)  # the padding neither attends nor is averaged in
    unmasked = model(masking=False)
    a, b = (np.asarray(unmasked(x, training=False)) for x in (words, padded))
    assert abs(float(a[0, 0] - b[0, 0])) > 1e-5  # keras-io as published: the padding changes the prediction


def test_attention_weights_are_distributions_that_give_padding_nothing():
    m = model()
    w = ch12.attention_weights(m, np.array([[5, 9, 2, 7, 0, 0]]))
    assert w.shape == (1, 2, 6, 6)
    np.testing.assert_allclose(w[0, :, :4].sum(-1), 1.0, atol=1e-5)  # each real token's weights over the keys
    np.testing.assert_allclose(w[0, :, :, 4:], 0.0, atol=1e-6)  # no token attends to a padded one
    unmasked = ch12.attention_weights(model(masking=False), np.array([[5, 9, 2, 7, 0, 0]]))
    np.testing.assert_allclose(unmasked.sum(-1), 1.0, atol=1e-5)
    assert unmasked[0, :, :4, 4:].min() > 0  # keras-io as published: the padding takes weight


def test_a_bad_param_is_named(tmp_path, monkeypatch):
    from dltm.params import ParamError
    from stages import train

    from .conftest import write_params

    synthetic_mr(tmp_path / "data" / "raw" / "mr", n_per_class=20)
    prepare_mr(tmp_path / "data" / "raw" / "mr", tmp_path / "data" / "prepared" / "mr", MR_PARAMS | {"dev_size": 10})
    write_params(tmp_path, {"ch12_transformer_classifier.masking": "yes"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamError, match="params.yaml: ch12_transformer_classifier.masking should be true or false"):
        train.main(["ch12_transformer_classifier", "--variant", "mr"])


def test_on_mr_end_to_end_then_predict(tmp_path, monkeypatch, capsys):
    synthetic_mr(tmp_path / "data" / "raw" / "mr", n_per_class=100)
    prepare_mr(tmp_path / "data" / "raw" / "mr", tmp_path / "data" / "prepared" / "mr", MR_PARAMS)
    m = run_task(tmp_path, monkeypatch, "ch12_transformer_classifier", SMALL, variant="mr")
    assert m["n_examples"] == 60 and m["test_accuracy"] > 0.75  # the synthetic classes differ by their words
    assert (tmp_path / "plots" / "ch12_transformer_classifier-mr" / "eval" / "attention.png").stat().st_size > 0
    capsys.readouterr()
    assert predict.main(["ch12_transformer_classifier-mr", "superb brilliant charming film",
                         "awful boring tedious mess"]) == 0
    labels = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert labels == ["pos", "neg"]


@pytest.mark.slow
def test_on_imdb_end_to_end(tmp_path, monkeypatch):
    raw = synthetic_imdb(tmp_path / "data" / "raw" / "imdb", n_per_class=60)
    prepare_imdb(raw, tmp_path / "data" / "prepared" / "imdb", {"shuffle_seed": 10})
    m = run_task(tmp_path, monkeypatch, "ch12_transformer_classifier", SMALL, variant="imdb")
    assert m["n_examples"] == 120 and m["test_accuracy"] > 0.75


# ---- 12.4 the Transformer encoder-decoder on chapter 10's toy pairs ----

TRANSLATION = {"num_samples": None, "embed_dim": 32, "intermediate_dim": 64, "num_heads": 2, "num_layers": 1,
               "dropout": 0.1, "epochs": 30, "batch_size": 16, "optimizer": "adam", "patience": 0, "beam_width": 2,
               "beam_examples": 5, "validation_split": 0.1}


def test_the_decoder_ignores_later_tokens_and_source_padding():
    keras.utils.set_random_seed(0)
    m = ch12.build_transformer_translation(20, 15, max_source=6, max_target=5, embed_dim=8, intermediate_dim=16,
                                           num_heads=2)
    src = np.array([[3, 4, 5, 0, 0, 0]])
    tgt = np.array([[1, 6, 7, 8, 0]])
    later = tgt.copy()
    later[0, 3] = 9  # what comes after position 2 must not change positions 0-2 (causal self-attention)
    a, b = (np.asarray(m([src, t], training=False)) for t in (tgt, later))
    np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-6)
    assert not np.allclose(a[0, 3], b[0, 3], atol=1e-4)
    short = np.asarray(m([src[:, :3], tgt], training=False))  # the source without its padding: same output
    np.testing.assert_allclose(a[0, :4], short[0, :4], atol=1e-5)
    encoder, decoder = ch12.inference_models(m)
    prefix, memory, ids = encoder(src)
    assert tuple(prefix.shape) == (1, 0)
    steps = []
    for t in range(3):  # stepping the decoder token by token gives the training model's next-token probabilities
        probs, prefix = decoder([keras.ops.convert_to_tensor(tgt[:, t:t + 1]), prefix, memory, ids])
        steps.append(np.asarray(probs)[0, -1])
    np.testing.assert_allclose(np.array(steps), a[0, :3], atol=1e-5)


@pytest.mark.slow
def test_the_transformer_learns_the_toy_language_and_decodes_as_chapter_10(tmp_path, monkeypatch):
    from dltm.translation import load_translator

    from .test_ch10 import write_cmn

    cmn = write_cmn(tmp_path, sep=" ")
    task = "ch12_transformer_translation"
    m = run_task(cmn, monkeypatch, task, {f"{task}.{k}": v for k, v in TRANSLATION.items()})
    assert m["test_bleu"] > 20.0 and m["test_chrf"] > 25.0, m  # word for word: a model that learned nothing ~0
    assert m["beam_examples"] == 5 and 0.0 <= m["test_bleu_beam"] <= 100.0 + 1e-9
    t = load_translator(cmn / "models" / task)
    texts = ["cat eats fish.", "big dog runs."]
    assert t.translate(texts) == [t.translate([x])[0] for x in texts]  # a batch, one by one
    assert (cmn / "plots" / task / "eval" / "samples.md").read_text().count("|") > 20
