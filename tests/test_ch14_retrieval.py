"""Chapter 14 (issue 19): paragraph vectors on IMDB through the stages, precision@k and the TF-IDF baseline,
repeatable inference, and `python -m stages.search`, on small synthetic reviews."""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

from dltm import cli
from dltm.retrieval import nearest, precision_at_k, review_words, stable_hash, tfidf_matrix
from stages import search

from .conftest import REPO, run_task, synthetic_imdb

SMALL = {"ch14_paragraph_vector.vector_size": 16, "ch14_paragraph_vector.epochs": 30,
         "ch14_paragraph_vector.workers": 1, "ch14_paragraph_vector.min_count": 1,
         "ch14_paragraph_vector.search_queries": 50, "ch14_paragraph_vector.neighbours": 5}


def test_review_words_are_the_tutorials_tokens():
    assert review_words('Great<br />film (really), "10/10"!') == ["great", "film", "(", "really", ")", ",", '"',
                                                                 "10/10", '"', "!"]
    assert review_words("   ") == []


def test_nearest_is_brute_force_cosine_and_excludes_the_query():
    rng = np.random.default_rng(0)
    corpus = rng.normal(size=(40, 6)).astype("float32")
    queries = np.arange(7)
    idx, sims = nearest(corpus[queries], corpus, 4, exclude=queries, chunk=3)
    unit = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    full = unit[queries] @ unit.T
    full[queries, queries] = -np.inf
    assert (idx == np.argsort(-full, axis=1)[:, :4]).all()
    assert np.allclose(sims, np.sort(full, axis=1)[:, ::-1][:, :4], atol=1e-6)
    assert not (idx == queries[:, None]).any()
    s_idx, _ = nearest(sparse.csr_matrix(unit[queries]), sparse.csr_matrix(unit), 4, exclude=queries)
    assert (s_idx == idx).all()  # TF-IDF's sparse rows take the same path
    with pytest.raises(ValueError, match="fewer than the 40 neighbours"):
        nearest(corpus[:1], corpus, 40, exclude=np.zeros(1, int))
    labels = np.array([0, 1, 1, 0])
    assert precision_at_k(np.array([[0, 0], [1, 0], [0, 0], [0, 1]]), labels) == pytest.approx(4 / 8)


def test_tfidf_neighbours_find_the_same_topic():
    texts = ["the thriller had a twist", "a tense thriller , a twist", "lovely romance and a wedding",
             "a wedding , a romance", "the plot twist of the thriller"]
    m = tfidf_matrix(texts, fit_on=texts)
    idx, _ = nearest(m[:1], m, 2, exclude=np.array([0]))
    assert set(idx[0]) == {1, 4}


INFER = """
import sys, json
sys.path.insert(0, {repo!r})
from gensim.models.doc2vec import Doc2Vec, TaggedDocument
from dltm.retrieval import repeatable_inference, stable_hash
docs = [TaggedDocument(f"w{{i % 7}} w{{i % 5}} w{{i % 3}} good film".split(), [i]) for i in range(40)]
m = Doc2Vec(docs, vector_size=8, min_count=1, epochs=5, workers=1, seed=3, dm=0, hashfxn=stable_hash)
with repeatable_inference():
    v = m.infer_vector("w1 w2 good".split())
print(json.dumps([float(x) for x in v]))
"""


def test_one_worker_and_one_seed_give_the_same_vectors_in_every_process():
    """gensim seeds word, document and inferred vectors by hashing strings; Python's hash() differs between
    processes (PYTHONHASHSEED), stable_hash and repeatable_inference do not."""
    out = []
    for hash_seed in ("1", "2"):
        env = {"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin"}
        r = subprocess.run([sys.executable, "-c", INFER.format(repo=str(REPO))], capture_output=True, text=True,
                           env=env, timeout=300, check=True)
        out.append(json.loads(r.stdout.splitlines()[-1]))
    assert out[0] == out[1]
    assert stable_hash("good film") == stable_hash("good film") != stable_hash("good films")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ch14")
    synthetic_imdb(root / "data" / "raw" / "imdb", n_per_class=60)
    with pytest.MonkeyPatch.context() as mp:
        m = run_task(root, mp, "ch14_paragraph_vector", SMALL)
    return root, m


def test_paragraph_vectors_through_the_stages(trained):
    root, m = trained
    for suffix in ("", "_inductive"):
        for fs in ("dbow", "dmm", "dmc", "dbow+dmm", "dbow+dmc"):
            assert 0 <= m[f"test_error_{fs}{suffix}"] <= 1
            assert 0 <= m[f"precision_at_5_{fs}{suffix}"] <= 1
    assert m["test_accuracy"] == pytest.approx(1 - m["test_error_dbow"])
    assert m["test_accuracy"] > 0.75  # synthetic reviews: each holds 4 words of its label's 10
    assert m["precision_at_5_tfidf"] > 0.6 and m["n_examples"] == 120 and m["search_queries"] == 50
    history = (root / "plots" / "ch14_paragraph_vector" / "train" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,test_error_dbow,test_error_dmm,test_error_dmc" and len(history) == 31
    samples = (root / "plots" / "ch14_paragraph_vector" / "eval" / "samples.md").read_text()
    assert samples.count("## Query") == 3 and "PV-DBOW:" in samples and "TF-IDF:" in samples
    assert (root / "plots" / "ch14_paragraph_vector" / "eval" / "paragraph_vectors_pca.png").is_file()
    from pipelines.ch14_retrieval import retrieval_table

    table = retrieval_table(root)
    assert any(line.startswith("| dbow+dmm | ") for line in table) and any("TF-IDF" in line for line in table)


def test_search_lists_the_nearest_reviews_with_labels(trained, capsys, monkeypatch):
    root, _ = trained
    monkeypatch.chdir(root)
    hits = search.search("ch14_paragraph_vector", "wonderful brilliant charming superb", k=5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5] and all(h.label in ("neg", "pos") for h in hits)
    assert sum(h.label == "pos" for h in hits) >= 4  # the positive words find positive reviews
    assert all(a.similarity >= b.similarity for a, b in zip(hits, hits[1:], strict=False))
    assert cli.run(search.main, ["ch14_paragraph_vector", "brilliant superb", "-k", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and set(rows[0]) == {"rank", "similarity", "label", "name", "text"}


@pytest.mark.parametrize("args, message", [
    (["ch99_nothing", "a query"], "unknown searcher 'ch99_nothing'; search takes: ch14_paragraph_vector"),
    (["ch14_paragraph_vector", "  "], "the query is empty"),
    (["ch14_paragraph_vector", "a query", "-k", "0"], "-k must be at least 1"),
    (["ch14_paragraph_vector", "zzzz qqqq"], "none of the query's words is in the model's vocabulary"),
])
def test_search_mistakes_are_one_line(trained, capsys, monkeypatch, args, message):
    monkeypatch.chdir(trained[0])
    assert cli.run(search.main, args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_search_before_training_names_the_stage(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    assert cli.run(search.main, ["ch14_paragraph_vector", "a tense thriller"]) == 2
    assert "search/collection.json: missing; run `dvc repro train_paragraph_vector` first" in capsys.readouterr().err


def test_the_search_is_an_mlflow_model_registered_under_the_task(trained, monkeypatch):
    import mlflow

    root, _ = trained
    monkeypatch.chdir(root)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/ch14_paragraph_vector@champion")
    out = model.predict(["wonderful brilliant charming", "awful dreadful"], params={"k": 3})
    assert list(out.columns) == ["query", "rank", "similarity", "label", "name", "text"] and len(out) == 6
    assert out["rank"].tolist() == [1, 2, 3, 1, 2, 3] and set(out["label"]) <= {"neg", "pos"}
    with pytest.raises(mlflow.exceptions.MlflowException, match="the query is empty"):
        model.predict(["   "])


# ---- 14.2.2 skip-thought vectors ---------------------------------------------------------------------------

def test_sentences_triples_and_teacher_forcing():
    from pipelines.ch14_retrieval import EOS, decoder_arrays, review_sentences, skip_thought_triples

    assert review_sentences("Great film. Really!<br />Loved it? yes", 3) == [
        ["great", "film", "."], ["really", "!"], ["loved", "it", "?"], ["yes"]]
    prev, cur, nxt = skip_thought_triples(["A b. C d. E f. G h.", "One. Two."], 10)
    assert cur == [["c", "d", "."], ["e", "f", "."]] and prev[0] == ["a", "b", "."] and nxt[-1] == ["g", "h", "."]
    inputs, targets = decoder_arrays([["a", "b"], ["c"]], {"a": 3, "b": 4, "c": 5}, 3)
    assert inputs.tolist() == [[EOS, 3, 4, 0], [EOS, 5, 0, 0]]
    assert targets.tolist() == [[3, 4, EOS, 0], [5, EOS, 0, 0]]


def test_the_encoder_is_the_books_gru_without_biases():
    """Book 14.2.2's encoder cell: r = s(W_r x + U_r h), z = s(W_z x + U_z h), h~ = tanh(W x + U (r * h)),
    h = (1 - z) h + z h~, no biases; Keras' GRU with reset_after=False computes exactly that (its z is the
    book's 1 - z: Keras keeps z * h_prev)."""
    from pipelines.ch14_retrieval import build_skip_thought

    model, encoder = build_skip_thought(vocab_size=12, length=4, embed_dim=3, hidden=5)
    gru = encoder.get_layer("encoder")
    assert not gru.use_bias and not gru.reset_after and len(gru.get_weights()) == 2
    for side in ("previous", "next"):  # the decoders have biases: else h_i serves as theirs (a constant encoder)
        decoder = model.get_layer(f"decoder_{side}")
        assert decoder.use_bias and not decoder.reset_after and len(decoder.get_weights()) == 3
    assert len(model.get_layer("V")._inbound_nodes) == 2  # one output matrix, applied by both decoders
    kernel, recurrent = gru.get_weights()
    emb = encoder.get_layer("embedding").get_weights()[0]
    ids = np.array([[3, 7, 2, 0]])
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros(5)
    for t in ids[0][ids[0] != 0]:
        x = emb[t]
        z = sig(x @ kernel[:, :5] + h @ recurrent[:, :5])
        r = sig(x @ kernel[:, 5:10] + h @ recurrent[:, 5:10])
        cand = np.tanh(x @ kernel[:, 10:] + (r * h) @ recurrent[:, 10:])
        h = z * h + (1 - z) * cand  # the book's (1 - z') h + z' h~ with z' = 1 - z
    assert np.allclose(np.asarray(encoder.predict(ids, verbose=0))[0], h, atol=1e-5)


def test_skip_thought_through_the_stages(tmp_path, monkeypatch, capsys):
    from dltm.data import prepare_mr

    from .conftest import synthetic_mr

    synthetic_imdb(tmp_path / "data" / "raw" / "imdb", n_per_class=40)
    synthetic_mr(tmp_path / "data" / "raw" / "mr", n_per_class=60)
    prepare_mr(tmp_path / "data" / "raw" / "mr", tmp_path / "data" / "prepared" / "mr",
               {"encoding": "cp1252", "split_seed": 10, "dev_size": 20, "cv_folds": 3, "cv_seed": 10})
    m = run_task(tmp_path, monkeypatch, "ch14_skip_thought", {
        "ch14_skip_thought.vocab_size": 60, "ch14_skip_thought.embed_dim": 8, "ch14_skip_thought.hidden": 8,
        "ch14_skip_thought.epochs": 2, "ch14_skip_thought.max_words": 12, "ch14_skip_thought.batch_size": 16,
        "ch14_skip_thought.validation_split": 0.1, "ch14_skip_thought.neighbours": 5,
        "ch14_skip_thought.search_queries": 20})
    assert m["folds"] == 3 and m["n_examples"] == 120 and 0 <= m["test_accuracy"] <= 1
    assert m["search_collection"] == 80 and m["search_queries"] == 20  # synthetic IMDB: 80 test reviews
    from dltm.retrieval import Collection, text_vectors
    from pipelines.ch14_retrieval import load_encoder

    collection = Collection(tmp_path / "models" / "ch14_skip_thought" / "search", "")
    untrained, info = load_encoder(_context(tmp_path), trained=False)
    queries = np.arange(20)
    for key, vectors in (("precision_at_5", collection.vectors), ("precision_at_5_random_encoder", text_vectors(
            untrained, collection.texts(), info["vocabulary"], info["max_words"]))):
        idx, _ = nearest(vectors[queries], vectors, 5, exclude=queries)
        assert m[key] == pytest.approx(precision_at_k(collection.labels[idx], collection.labels[queries])), key
    assert json.loads((tmp_path / "models" / "ch14_skip_thought" / "run.json").read_text())["train_examples"] == 72
    assert m["test_accuracy_bow"] > 0.8  # synthetic MR: each sentence holds words of its label
    folds = json.loads((tmp_path / "plots" / "ch14_skip_thought" / "eval" / "folds.json").read_text())
    assert len(folds["skip_thought"]) == len(folds["bow_tfidf_lr"]) == len(folds["random_encoder"]) == 3
    assert m["test_accuracy"] == pytest.approx(np.mean(folds["skip_thought"]))
    assert m["test_accuracy_random_encoder"] == pytest.approx(np.mean(folds["random_encoder"]))
    from pipelines.ch14_retrieval import skip_thought_vectors

    ctx = _context(tmp_path)
    sentences = [["a", "good", "film", "."], []]
    trained, fresh = skip_thought_vectors(ctx, sentences), skip_thought_vectors(ctx, sentences, trained=False)
    assert not np.allclose(trained[0], fresh[0])  # fresh weights, not the trained ones
    assert np.array_equal(fresh, skip_thought_vectors(ctx, sentences, trained=False))  # seeded by run.seed
    assert not fresh[1].any() and not trained[1].any()  # padding masked in both: an empty sentence is h = 0
    history = (tmp_path / "plots" / "ch14_skip_thought" / "train" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss" and len(history) == 3
    samples = (tmp_path / "plots" / "ch14_skip_thought" / "eval" / "samples.md").read_text()
    assert samples.count("## [") == 5
    from pipelines.ch14_retrieval import skip_thought_table

    table = skip_thought_table(tmp_path)
    assert any(line.startswith("| skip-thought, ours") for line in table)
    assert any(line.startswith("| the same encoder untrained") for line in table)
    assert any("state units are saturated" in line for line in table)
    assert any("precision@5 of same-label neighbours among 80 IMDB test reviews" in line for line in table)

    # the search: IMDB's test reviews by skip-thought vector, from the command line and as an MLflow Model
    hits = search.search("ch14_skip_thought", "a good film . truly great !", k=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4] and all(h.name.startswith("test/") for h in hits)
    assert all(a.similarity >= b.similarity for a, b in zip(hits, hits[1:], strict=False))
    for args, message in ((["ch14_skip_thought", "zzzz qqqq"], "none of the query's words is in the encoder's"),
                          (["ch14_skip_thought", ". ! ?"], "none of the query's words is in the encoder's"),
                          (["ch14_skip_thought", " "], "the query is empty")):
        assert cli.run(search.main, args) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    out = mlflow.pyfunc.load_model("models:/ch14_skip_thought@champion").predict(
        ["a good film . truly great !"], params={"k": 2})
    assert out["rank"].tolist() == [1, 2] and out["name"].tolist() == [h.name for h in hits[:2]]


def _context(root):
    from dltm.params import RunSettings
    from dltm.tasks import Context, get

    return Context(get("ch14_skip_thought"), {}, RunSettings(seed=1), None, root=root)


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "encoder.keras").write_bytes((f / "encoder.keras").read_bytes()[:500]),
     "encoder.keras: not a readable .keras file (not a zip archive); run `dvc repro train_skip_thought` first"),
    (lambda f: (f / "encoder.keras").unlink(), "encoder.keras: missing; run `dvc repro train_skip_thought` first"),
    (lambda f: (f / "skip_thought.json").write_text("{"), "skip_thought.json: not a skip-thought vocabulary"),
    (lambda f: (f / "skip_thought.json").write_text('{"vocabulary": {}}'), "skip_thought.json: not a skip-thought"),
])
def test_a_damaged_skip_thought_search_is_one_line(tmp_path, capsys, monkeypatch, damage, message):
    """What `stages.search ch14_skip_thought` reads, damaged after training: one line naming the file."""
    from dltm.retrieval import SkipThoughtSearch, write_collection
    from pipelines.ch14_retrieval import build_skip_thought

    folder = tmp_path / "models" / "ch14_skip_thought" / "search"
    _, encoder = build_skip_thought(vocab_size=8, length=4, embed_dim=3, hidden=5)
    write_collection(folder, np.eye(3, 5), ["a", "b", "c"], np.array([0, 1, 0]), ["neg", "pos"], ["x", "y", "z"])
    encoder.save(folder / SkipThoughtSearch.ENCODER_FILE)
    (folder / SkipThoughtSearch.VOCAB_FILE).write_text('{"vocabulary": {"good": 3}, "max_words": 4}')
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert len(search.search("ch14_skip_thought", "good", k=2)) == 2  # intact, it searches
    damage(folder)
    assert cli.run(search.main, ["ch14_skip_thought", "good"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_a_texts_skip_thought_vector_is_the_mean_of_its_sentences():
    from dltm.retrieval import review_sentences, sentence_vectors, text_vectors
    from pipelines.ch14_retrieval import build_skip_thought

    _, encoder = build_skip_thought(vocab_size=12, length=4, embed_dim=3, hidden=5)
    vocab = {w: i + 3 for i, w in enumerate("a good film bad plot it was".split())}
    texts = ["A good film. It was bad!", "", "plot plot plot plot plot plot", "Good."]
    got = text_vectors(encoder, texts, vocab, 4, chunk=3)  # two chunks: 3 texts, then 1
    assert got.shape == (4, 5) and got.dtype == np.float32
    for text, row in zip(texts, got, strict=True):
        s = review_sentences(text, 4)
        want = sentence_vectors(encoder, s, vocab, 4).mean(axis=0) if s else np.zeros(5)
        assert np.allclose(row, want, atol=1e-6)
    assert not got[1].any() and got[0].any()


def test_the_decoders_ignore_what_follows_the_end_of_sentence():
    """Padding is masked in both decoders and in the loss: changing the words after a target's EOS (inputs and
    targets alike) leaves the loss where it was, while changing a real word moves it."""
    import keras

    from pipelines.ch14_retrieval import build_skip_thought

    keras.utils.set_random_seed(0)
    model, _ = build_skip_thought(vocab_size=20, length=5, embed_dim=4, hidden=6)
    model.compile("adam", loss=["sparse_categorical_crossentropy"] * 2)
    cur = np.array([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0]])
    dec_in = np.array([[2, 8, 9, 0, 0, 0], [2, 10, 0, 0, 0, 0]])
    dec_out = np.array([[8, 9, 2, 0, 0, 0], [10, 2, 0, 0, 0, 0]])

    def loss(din, dout):
        return model.evaluate([cur, din, din], [dout, dout], verbose=0, batch_size=2)[0]

    base = loss(dec_in, dec_out)
    noisy = dec_out.copy()
    noisy[dec_in == 0] = 7  # any word where the decoder reads padding: not scored
    assert loss(dec_in, noisy) == pytest.approx(base, rel=1e-6)
    longer_in, longer_out = dec_in.copy(), dec_out.copy()
    longer_in[1, 2], longer_out[1, 2] = 11, 11  # a real step there: scored
    assert loss(longer_in, longer_out) != pytest.approx(base, rel=1e-6)


def test_the_output_layer_can_start_at_the_words_log_frequencies():
    """V's bias starts at log p(word) of the decoders' targets (add-one smoothed, padding not counted), so the
    decoders need not learn the frequencies through h_i (which saturated the encoder without it)."""
    from pipelines.ch14_retrieval import EOS, PAD, build_skip_thought, unigram_log_probabilities

    targets = [np.array([[3, 3, EOS, PAD]]), np.array([[4, EOS, PAD, PAD]])]
    logp = unigram_log_probabilities(targets, 6)
    # counts + 1: PAD 1 (never a target), UNK 1, EOS 3, word 3: 3, word 4: 2, word 5: 1 -> total 11
    assert np.allclose(np.exp(logp), np.array([1, 1, 3, 3, 2, 1]) / 11) and logp.dtype == np.float32
    model, _ = build_skip_thought(vocab_size=6, length=3, embed_dim=2, hidden=3, output_bias=logp)
    assert np.allclose(model.get_layer("V").get_weights()[1], logp)
    model, _ = build_skip_thought(vocab_size=6, length=3, embed_dim=2, hidden=3)
    assert not model.get_layer("V").get_weights()[1].any()  # Keras' zeros without it


def test_saturated_share_counts_the_units_at_plus_or_minus_one():
    from pipelines.ch14_retrieval import saturated_share

    assert saturated_share(np.array([[0.995, -1.0, 0.5, 0.0], [0.2, -0.999, 0.98, 0.1]])) == 3 / 8
