"""Chapter 11.5: the title file, the attentive decoder (the book's loop against the fix), the inference models
against the trained model, ROUGE by hand, and ch11_title_generation end to end with `stages.generate`."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from dltm.data import DataFileError
from dltm.rouge import rouge_scores
from pipelines import ch11_attention as ch11

from .conftest import run_task

TOPICS = ["graph", "neural", "privacy", "query", "image", "speech"]
WORDS = "we study method results show approach data model propose learning using based large".split()


def synthetic_titles(raw, n: int = 60, seed: int = 0):
    """data/raw/titles/title.json: abstracts about one topic word each, titled '<topic> networks for <topic>'."""
    rng = np.random.default_rng(seed)
    folder = raw / "titles"
    folder.mkdir(parents=True)
    with open(folder / "title.json", "w", encoding="utf-8") as f:
        for i in range(n):
            topic = TOPICS[i % len(TOPICS)]
            words = list(rng.choice(WORDS, 12)) + [topic] * 3
            rng.shuffle(words)
            abstract = " ".join(words[:8]) + " es-\ntimate " + " ".join(words[8:])
            f.write(json.dumps({"Title": f"{topic.title()} networks for {topic}", "Abstract": abstract}) + "\n")
    return raw


def test_read_titles_joins_the_lines_and_names_a_bad_line(tmp_path):
    raw = synthetic_titles(tmp_path, n=3)
    abstracts, titles = ch11.read_titles(raw / "titles" / "title.json")
    assert len(abstracts) == 3 and "estimate" in abstracts[0] and "\n" not in abstracts[0]
    assert titles[0] == "Graph networks for graph"
    bad = tmp_path / "bad.json"
    bad.write_text('{"Title": "a", "Abstract": "b"}\n{"Title": "a"}\n')
    with pytest.raises(DataFileError, match=r"bad.json:2: expected"):
        ch11.read_titles(bad)
    bad.write_text("{oops\n")
    with pytest.raises(DataFileError, match=r"bad.json:1: not a JSON line"):
        ch11.read_titles(bad)
    bad.write_bytes('{"Title": "caf\xe9", "Abstract": "b"}\n'.encode("latin-1"))
    with pytest.raises(DataFileError, match=r"bad.json: not UTF-8 \(byte 0xe9"):
        ch11.read_titles(bad)


def decoder_outputs(feed_context: bool, encoder_outputs: np.ndarray, mask: np.ndarray):
    keras.utils.set_random_seed(4)
    layer = ch11.AttentiveGRUDecoder(5, feed_context=feed_context)
    y = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    state = np.zeros((2, 5), dtype="float32")
    context = np.ones((2, 6), dtype="float32")
    return [np.asarray(keras.ops.convert_to_numpy(t)) for t in layer(y, encoder_outputs, state, context,
                                                                      key_mask=mask)]


def test_the_book_loop_ignores_attention_and_the_fix_feeds_it_back():
    h = np.random.default_rng(1).normal(size=(2, 5, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=bool)
    moved = h.copy()
    moved[:, 0] += 2.0  # the same mean over the real steps: +2 at one, -2 at another
    moved[:, 1] -= 2.0
    book = decoder_outputs(False, h, mask), decoder_outputs(False, moved, mask)
    fixed = decoder_outputs(True, h, mask), decoder_outputs(True, moved, mask)
    np.testing.assert_allclose(book[0][0], book[1][0], rtol=1e-6)  # the book's outputs never see attention
    assert not np.allclose(fixed[0][0][:, 1:], fixed[1][0][:, 1:], atol=1e-4)  # from step 2 on, they do
    np.testing.assert_allclose(fixed[0][0][:, 0], fixed[1][0][:, 0], rtol=1e-6)  # step 1 reads the first context
    weights = fixed[0][1]
    assert weights.shape == (2, 4, 5) and np.all(weights[0, :, 4] == 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(fixed[0][3], np.einsum("bs,bsd->bd", weights[:, -1], h), rtol=1e-5, atol=1e-6)


def test_step_by_step_inference_gives_the_trained_models_probabilities(tmp_path):
    keras.utils.set_random_seed(0)
    model = ch11.build_title_model(num_tokens=12, decoder_steps=5, embed_size=4, hidden_size=6)
    model.save(tmp_path / "m.keras")
    model = keras.saving.load_model(tmp_path / "m.keras")  # and it reloads
    source = np.array([[3, 4, 5, 6, 0, 0]], dtype="int32")
    target_in = np.array([[1, 7, 8, 9, 2]], dtype="int32")
    full = np.asarray(model.predict([source, target_in], verbose=0))
    encoder_model, decoder_model = ch11.inference_models(model)
    states = encoder_model.predict_on_batch(source)
    s, c, outputs, mask = states
    for t in range(5):
        probs, s, c, weights = decoder_model.predict_on_batch([target_in[:, t:t + 1], s, c, outputs, mask])
        np.testing.assert_allclose(np.asarray(probs)[0, 0], full[0, t], rtol=1e-4, atol=1e-6)
        assert np.all(np.asarray(weights)[0, 0, 4:] == 0)


def test_rouge_by_hand():
    m = rouge_scores(["the cat sat", "A/B testing: networks"], ["the cat ran", "a/b testing of networks"])
    # 1: unigrams 2 of 3 both ways -> F 2/3; bigrams 1 of 2 -> 1/2; LCS 2 -> 2/3
    # 2: our tokens a, /, b, testing, :, networks (punctuation left out) vs a b testing of networks:
    #    unigrams P 4/4 R 4/5; bigrams (a b) (b testing) (testing networks) vs 4 bigrams: 2 common; LCS 4
    r1 = (2 / 3 + 2 * (1 * 0.8) / 1.8) / 2
    r2 = (1 / 2 + 2 * (2 / 3 * 2 / 4) / (2 / 3 + 2 / 4)) / 2
    assert m["rouge1"] == pytest.approx(100 * r1) and m["rouge2"] == pytest.approx(100 * r2)
    assert m["rougeL"] == pytest.approx(100 * r1) and m["rouge1_recall"] == pytest.approx(100 * (2 / 3 + 0.8) / 2)
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        rouge_scores(["a"], [])


def test_title_generation_end_to_end_and_the_generate_command(tmp_path, monkeypatch, capsys):
    from dltm import cli
    from stages import generate

    synthetic_titles(tmp_path / "data" / "raw")
    task = "ch11_title_generation"
    m = run_task(tmp_path, monkeypatch, task, {
        f"{task}.vocab_size": 40, f"{task}.embed_size": 8, f"{task}.hidden_size": 16, f"{task}.encoder_steps": 20,
        f"{task}.decoder_steps": 8, f"{task}.dev_size": 6, f"{task}.epochs": 30, f"{task}.patience": 0,
        f"{task}.batch_size": 8, f"{task}.beam_width": 2})
    assert m["n_examples"] == 6 and m["lead_words"] == 4 and m["beam_width"] == 2
    for key in ("test_rouge1", "test_rouge2", "test_rougeL", "test_rouge1_beam", "test_rouge1_lead"):
        assert 0.0 <= m[key] <= 100.0, key
    assert m["test_rouge1"] > m["test_rouge1_lead"], m  # the titles' words are learnable; the lead has none of two
    info = json.loads((tmp_path / "models" / task / "translator.json").read_text())
    assert info["module"] == "pipelines.ch11_attention" and info["input_token_index"] == info["target_token_index"]
    ev = tmp_path / "plots" / task / "eval"
    assert (ev / "attention.png").stat().st_size > 5_000 and "| greedy | beam 2 | first 4 words |" in (
        ev / "samples.md").read_text()
    capsys.readouterr()
    (tmp_path / "abstracts.txt").write_text("we study graph graph graph data\nmodel es-\ntimate\n\n\nspeech "
                                            "speech speech results\n", encoding="utf-8")
    assert generate.main([task, "--file", "abstracts.txt"]) == 0
    titles = capsys.readouterr().out.splitlines()
    assert len(titles) == 2 and all(t.strip() for t in titles)
    assert generate.main([task, "privacy privacy privacy method", "--beam", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    (tmp_path / "blank.txt").write_text("\n  \n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 graph".encode("latin-1"))
    for argv, message in (([task], "give an abstract on the command line, or --file"),
                          ([task, "graph", "--file", "blank.txt"], "give an abstract on the command line or --file, "
                                                                    "not both"),
                          ([task, "--file", "blank.txt"], "blank.txt: no text in it"),
                          ([task, "--file", "nowhere.txt"], "--file nowhere.txt: no such file"),
                          ([task, "--file", "latin1.txt"], "latin1.txt:1: not UTF-8 (byte 0xe9)"),
                          ([task, "graph", "--beam", "0"], "--beam must be >= 1"),
                          ([task, "graph", "--models", str(tmp_path / "none")], "model.keras: missing; run `dvc repro "
                                                                                  "train")):  # no dvc.yaml here
        assert cli.run(generate.main, argv) == cli.EXIT_USER_ERROR, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, (argv, err)
