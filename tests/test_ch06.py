import json

import numpy as np
import pytest

from dltm.data import load_corpus, prepare_corpus
from dltm.params import ParamError
from pipelines import ch06_word2vec as ch06

from .conftest import prepared_mr, run_task, synthetic_imdb, write_corpora

SMALL = {"run.max_epochs": 2, "ch06_word2vec_keras.iterations": 40, "ch06_word2vec_keras.log_every": 20,
         "ch06_word2vec_keras.batch_size": 64, "ch06_word2vec_keras.vector_dim": 16,
         "ch06_gensim_skipgram.vector_size": 16, "ch06_gensim_cbow.vector_size": 16, "ch06_glove.vector_size": 8,
         "ch06_gensim_skipgram.epochs": 5, "ch06_gensim_skipgram.min_count": 1}


@pytest.fixture
def corpora(tmp_path):
    write_corpora(tmp_path / "data" / "raw")
    for corpus in ("ptb", "text8"):
        prepare_corpus(tmp_path / "data" / "raw" / corpus, tmp_path / "data" / "prepared" / corpus,
                       {"vocabulary_size": 50000, "max_tokens": 0})
    prepared_mr(tmp_path)  # MR's words, whose coverage evaluation measures
    return tmp_path


def test_build_dataset_ids_by_frequency_with_unk_zero(tmp_path):
    raw = tmp_path / "raw" / "ptb"
    raw.mkdir(parents=True)
    (raw / "ptb.train.txt").write_text(" b a <unk> c a \n a b d \n")
    info = prepare_corpus(raw, tmp_path / "out", {"vocabulary_size": 3, "max_tokens": 0})
    c = load_corpus(tmp_path / "out")
    assert c.words == ["UNK", "a", "b"] and c.counts.tolist() == [3, 3, 2]  # <unk>, c, d are UNK
    assert c.ids.tolist() == [2, 1, 0, 0, 1, 1, 2, 0]
    assert info["tokens"] == 8 and info["unk_tokens"] == 3 and info["distinct_words"] == 4
    with pytest.raises(ParamError, match="prepare.ptb.vocabulary_size"):
        prepare_corpus(raw, tmp_path / "o2", {"max_tokens": 0})


def test_cooccurrences_equal_brute_force_across_chunk_cuts():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 12, 500)
    X = ch06.cooccurrences(ids, 12, window=3, chunk=37).toarray()
    brute = np.zeros((12, 12))
    for p in range(len(ids)):
        for d in range(1, 4):
            if p + d < len(ids) and ids[p] and ids[p + d]:
                brute[ids[p], ids[p + d]] += 1 / d
                brute[ids[p + d], ids[p]] += 1 / d
    np.testing.assert_allclose(X, brute)
    assert not X[0].any() and np.allclose(X, X.T)


def test_keras_word2vec_model_is_the_books():
    model = ch06.build_word2vec(100, 8)
    assert [layer.name for layer in model.layers if layer.weights] == ["embedding", "output"]
    assert model.count_params() == 100 * 8 + 2
    out = model([np.array([[3], [4]]), np.array([[5], [6]])])
    assert tuple(out.shape) == (2, 1)


@pytest.mark.parametrize("task", ["ch06_word2vec_keras", "ch06_gensim_skipgram", "ch06_gensim_cbow", "ch06_glove"])
def test_each_embedding_trains_saves_vectors_and_is_evaluated(corpora, monkeypatch, task):
    m = run_task(corpora, monkeypatch, task, SMALL, variant="ptb")
    assert {"test_analogy_accuracy", "test_analogy_questions", "test_wordsim353_spearman",
            "test_simlex999_spearman", "vocabulary"} <= set(m)
    assert m["test_analogy_questions"] == 6 and 0 <= m["test_analogy_accuracy"] <= 1
    vectors = (corpora / "data" / "embeddings" / f"{task}-ptb" / "vectors.txt").read_text().splitlines()
    assert vectors[0].split()[1] in ("8", "16") and "UNK" not in {line.split()[0] for line in vectors[1:]}
    assert (corpora / "plots" / f"{task}-ptb" / "eval" / "projection.png").is_file()
    near = json.loads((corpora / "plots" / f"{task}-ptb" / "eval" / "neighbours.json").read_text())
    assert len(near) == 16 and all(len(v) == 8 for v in near.values())
    run = json.loads((corpora / "data" / "embeddings" / f"{task}-ptb" / "run.json").read_text())
    assert run["variant"] == "ptb" and run["train_seconds"] > 0
    # MR's words with a vector, counted here from the files: distinct words and running words
    have = {line.split()[0] for line in vectors[1:]}
    counts = dict(json.loads((corpora / "data" / "prepared" / "mr" / "tokenizer.json").read_text())["word_counts"])
    found = [w for w in counts if w in have]
    assert found and m["mr_coverage"] == pytest.approx(len(found) / len(counts))
    assert m["mr_token_coverage"] == pytest.approx(sum(counts[w] for w in found) / sum(counts.values()))


def test_gensim_is_repeatable_with_one_worker_and_learns_topics(corpora, monkeypatch):
    from dltm.embeddings import load_word2vec

    run_task(corpora, monkeypatch, "ch06_gensim_skipgram", SMALL, variant="text8")
    path = corpora / "data" / "embeddings" / "ch06_gensim_skipgram-text8" / "vectors.txt"
    first = path.read_text()
    run_task(corpora, monkeypatch, "ch06_gensim_skipgram", SMALL, variant="text8")
    assert path.read_text() == first
    kv = load_word2vec(path)
    assert kv.similarity("king", "queen") > kv.similarity("king", "paris")


def test_book_switches_of_6_3(corpora, monkeypatch):
    m = run_task(corpora, monkeypatch, "ch06_word2vec_keras", SMALL | {
        "ch06_word2vec_keras.book_first_pairs": 500, "ch06_word2vec_keras.use_sampling_table": False,
        "ch06_word2vec_keras.neighbours": "dot"}, variant="ptb")
    assert 0 <= m["test_analogy_accuracy"] <= 1
    with pytest.raises(ParamError, match="ch06_glove.neighbours should be one of cosine, dot, got 'dott'"):
        run_task(corpora, monkeypatch, "ch06_glove", SMALL | {"ch06_glove.neighbours": "dott"}, variant="ptb")
    with pytest.raises(ParamError, match="ch06_word2vec_keras.iterations must be a positive multiple"):
        run_task(corpora, monkeypatch, "ch06_word2vec_keras", SMALL | {"ch06_word2vec_keras.iterations": 30},
                 variant="ptb")


def test_variant_is_required(corpora, monkeypatch):
    with pytest.raises(SystemExit):
        run_task(corpora, monkeypatch, "ch06_glove", SMALL)


def test_the_imdb_corpus_is_the_training_reviews_in_kims_tokens(tmp_path, monkeypatch):
    """prepare_imdb_text: IMDB's training reviews only (a word of the test reviews is not in it), through Kim's
    clean_str (lower case, "n't" split off), as running text; and word_coverage of vectors against MR's words."""
    from dltm.data import PREPARERS
    from dltm.embeddings import keyed_vectors, word_coverage
    from dltm.tasks import get

    raw = tmp_path / "data" / "raw" / "imdb"
    synthetic_imdb(raw, n_per_class=10)
    review = raw / "aclImdb" / "train" / "pos" / "0_9.txt"
    review.write_text("It wasn't BAD.<br /><br />A zyzzyva!", encoding="utf-8")
    (raw / "aclImdb" / "test" / "neg" / "0_2.txt").write_text("only in a testword review", encoding="utf-8")
    info = PREPARERS["imdb_text"](raw, tmp_path / "data" / "prepared" / "imdb_text",
                                  {"vocabulary_size": 50000, "max_tokens": 0})
    corpus = load_corpus(tmp_path / "data" / "prepared" / "imdb_text")
    assert info["corpus"] == "imdb_text" and "raw_sha256" not in info and info["tokens"] == len(corpus.ids)
    assert {"was", "n't", "bad", "zyzzyva", "!"} <= set(corpus.words) and "testword" not in corpus.words
    assert "It" not in corpus.words and "wasn't" not in corpus.words
    assert get("ch06_gensim_skipgram").dataset_of("imdb_text") == "imdb"  # its data: download@imdb's files
    kv = keyed_vectors(["bad", "film", "zyzzyva"], np.ones((3, 2)))
    assert word_coverage(kv, {"bad": 3, "film": 1, "dull": 4, "zyzzyva": 0}) == {"words": 0.75, "tokens": 0.5}
    with pytest.raises(FileNotFoundError, match=r"imdb_text[/\\]ids.npy: missing; run `dvc repro prepare_imdb_text`"):
        load_corpus(tmp_path / "data" / "prepared" / "nothing" / "imdb_text")
