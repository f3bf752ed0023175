"""Chapter 11.4: the blog corpus reader and its by-blogger split, Lin et al.'s self-attention checked against NumPy,
and ch11_author_profiling end to end on a synthetic corpus."""

from __future__ import annotations

import hashlib
import json

import keras
import numpy as np
import pytest

from dltm import blogs
from dltm.params import ParamError
from dltm.self_attention import MaskedMaxPooling, StructuredSelfAttention, redundancy

from .conftest import run_task, write_params

CELL_WORDS = {"10s": "school homework mom", "20s": "work college apartment", "30s": "kids husband mortgage"}
GENDER_WORDS = {"female": "she shopping hair", "male": "he football beer"}
FILLER = "the a day today really went just like time got".split()


def synthetic_blogs(raw, per_cell: int = 8, seed: int = 0):
    """data/raw/authors/blogs/<id>.<gender>.<age>.<industry>.<sign>.xml: posts whose words give away the age
    group and the gender, CRLF line ends, an HTML entity, one file in Latin-1."""
    rng = np.random.default_rng(seed)
    folder = raw / "authors" / "blogs"
    folder.mkdir(parents=True)
    n = 1000
    for gender in blogs.GENDERS:
        for group, (lo, _) in blogs.AGE_GROUPS.items():
            for _ in range(per_cell):
                n += 1
                posts = []
                for _ in range(3):
                    words = list(rng.choice(FILLER, 20)) + CELL_WORDS[group].split() + GENDER_WORDS[gender].split()
                    rng.shuffle(words)
                    posts.append(" ".join(words))
                body = "".join(f"<date>01,May,2004</date>\r\n<post>\r\n\r\n  {p} &amp; caf\u00e9\r\n</post>\r\n"
                               for p in posts)
                text = f"<Blog>\r\n{body}</Blog>\r\n"
                path = folder / f"{n}.{gender}.{lo + 1}.Student.Leo.xml"
                path.write_bytes(text.encode("latin-1" if n == 1001 else "utf-8"))
    return raw


def test_a_blog_file_name_and_its_posts_are_read(tmp_path):
    b = blogs.parse_name("blogs/1028027.female.16.indUnk.Libra.xml")
    assert (b.blogger, b.gender, b.age, b.industry, b.sign, b.age_group) == ("1028027", "female", 16, "indUnk",
                                                                          "Libra", "10s")
    with pytest.raises(blogs.BlogFileError, match="notes.txt: not a blog file name"):
        blogs.parse_name("notes.txt")
    with pytest.raises(blogs.BlogFileError, match="age 20 is in no age group"):
        blogs.parse_name("1.male.20.x.y.xml").age_group  # noqa: B018
    f = tmp_path / "1.male.25.x.y.xml"
    f.write_bytes("<Blog><post>\r\n  Caf\u00e9   &amp; bar\r\n</post><post> </post><post>two</post></Blog>"
                  .encode("latin-1"))
    assert blogs.read_posts(f) == ["Caf\u00e9 & bar", "two"]  # Latin-1 read, entity decoded, empty post left out
    f.write_text("<Blog>nothing</Blog>")
    with pytest.raises(blogs.BlogFileError, match="no <post> element"):
        blogs.read_posts(f)


def test_the_subset_rule_and_the_split_by_blogger(tmp_path):
    raw = synthetic_blogs(tmp_path, per_cell=5)
    everyone = [blogs.parse_name(p.name) for p in (raw / "authors" / "blogs").glob("*.xml")]
    chosen = blogs.select(everyone, 3)
    for gender in blogs.GENDERS:
        for group in blogs.AGE_GROUPS:
            cell = [b for b in everyone if (b.gender, b.age_group) == (gender, group)]
            want = sorted(cell, key=lambda b: hashlib.sha256(b.file.encode()).hexdigest())[:3]
            assert {b.file for b in want} <= {b.file for b in chosen}
    assert len(chosen) == 18
    train, test = blogs.split_by_blogger(chosen, 1, seed=10)
    assert len(test) == 6 and len(train) == 12 and not {b.blogger for b in train} & {b.blogger for b in test}
    assert blogs.split_by_blogger(chosen, 1, seed=10) == (train, test)  # seeded
    with pytest.raises(ParamError, match="per_cell is 9, but the corpus has 5 female bloggers in their 10s"):
        blogs.select(everyone, 9)
    with pytest.raises(ParamError, match="test_per_cell must be between 1 and 2"):
        blogs.split_by_blogger(chosen, 3, seed=10)


def test_prepare_writes_one_document_per_blogger(tmp_path):
    raw = synthetic_blogs(tmp_path, per_cell=4)
    info = blogs.prepare_authors(raw / "authors", tmp_path / "prepared", {"per_cell": 4, "test_per_cell": 1,
                                                                          "split_seed": 10})
    assert info["train"] == 18 and info["test"] == 6 and info["test_cells"]["male/30s"] == 1
    rows = blogs.load_authors(tmp_path / "prepared", "train")
    assert len(rows) == 18 and rows[0]["posts"] == 3 and rows[0]["text"].count("\n") == 2
    assert "& caf\u00e9" in rows[0]["text"] and "\r" not in rows[0]["text"]
    with pytest.raises(blogs.MissingOutputError, match="run `dvc repro download@authors`"):
        blogs.prepare_authors(tmp_path / "nowhere", tmp_path / "p2", {"per_cell": 1, "test_per_cell": 1,
                                                                       "split_seed": 1})
    assert not (tmp_path / "p2").exists()


H = np.random.default_rng(1).normal(size=(2, 5, 4)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)


def numpy_attention(layer: StructuredSelfAttention, h: np.ndarray, mask: np.ndarray) -> np.ndarray:
    w1, w2 = (np.asarray(w, dtype=np.float64) for w in (layer.ws1.kernel, layer.ws2.kernel))
    scores = np.einsum("btd,dr->brt", np.tanh(h @ w1), w2)
    scores = np.where(mask[:, None, :], scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_self_attention_is_lin_et_al_over_the_real_tokens():
    keras.utils.set_random_seed(0)
    layer = StructuredSelfAttention(d_a=3, r=2, penalty=0.5)
    m, a = (np.asarray(keras.ops.convert_to_numpy(t)) for t in layer(H, mask=MASK))
    want = numpy_attention(layer, H.astype(np.float64), MASK)
    np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6)
    assert a.shape == (2, 2, 5) and np.all(a[0, :, 3:] == 0)  # padding gets exactly zero weight
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=1e-6)  # a distribution over tokens, not over hops
    np.testing.assert_allclose(m, want @ H, rtol=1e-5, atol=1e-6)
    gram = want @ want.transpose(0, 2, 1)
    by_hand = ((gram - np.eye(2)) ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(redundancy(keras.ops.convert_to_tensor(a))), by_hand,
                               rtol=1e-5)


def test_the_penalty_adds_its_coefficient_times_the_mean_redundancy_to_the_loss(tmp_path):
    from pipelines import ch11_attention as ch11

    keras.utils.set_random_seed(2)
    x = np.array([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6]], dtype="int32")
    y = np.array([0, 2])
    losses = {}
    for penalty in (0.0, 0.7):
        keras.utils.set_random_seed(2)
        model = ch11.build_self_attentive(6, 3, vocab_size=10, embed_size=4, hidden_size=3, da=5, r=2,
                                          penalty=penalty)
        model.compile(loss="sparse_categorical_crossentropy")
        a, _ = ch11.token_weights(model, x)  # the attention the step's loss is computed with
        losses[penalty] = model.train_on_batch(x, y)  # the loss before the step's update, penalty included
    by_hand = 0.7 * np.mean(((a @ a.transpose(0, 2, 1) - np.eye(2)) ** 2).sum(axis=(1, 2)))
    assert losses[0.7] - losses[0.0] == pytest.approx(by_hand, rel=1e-4)
    assert np.all(a[0, :, 3:] == 0)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.get_layer("A").penalty == 0.7 and again.get_layer("A").r == 2
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_max_pooling_leaves_the_padding_out():
    x = -np.ones((2, 3, 2), dtype="float32")
    x[0, 2] = 5.0  # a padded step with the largest value
    out = keras.ops.convert_to_numpy(MaskedMaxPooling()(x, mask=np.array([[1, 1, 0], [0, 0, 0]], dtype=bool)))
    np.testing.assert_array_equal(out, [[-1.0, -1.0], [0.0, 0.0]])  # no real step: zeros


def test_author_profiling_task_end_to_end(tmp_path, monkeypatch):
    from stages import prepare

    synthetic_blogs(tmp_path / "data" / "raw", per_cell=8)
    write_params(tmp_path, {"prepare.authors.per_cell": 8, "prepare.authors.test_per_cell": 2})
    monkeypatch.chdir(tmp_path)
    assert prepare.main(["authors"]) == 0
    task = "ch11_author_profiling"
    m = run_task(tmp_path, monkeypatch, task, {
        "prepare.authors.per_cell": 8, "prepare.authors.test_per_cell": 2, f"{task}.seeds": [1, 2],
        f"{task}.models": ["self_attention", "kim_cnn", "tfidf_lr"], f"{task}.time_steps": 40,
        f"{task}.vocab_size": 60, f"{task}.embed_size": 8, f"{task}.hidden_size": 4, f"{task}.da": 4,
        f"{task}.r": 3, f"{task}.epochs": 2, f"{task}.early_stopping_patience": 0, f"{task}.batch_size": 8})
    for target in ("age", "gender"):
        for model, n in (("self_attention", 2), ("kim_cnn", 2), ("tfidf_lr", 1)):
            assert 0.0 <= m[f"test_{model}_{target}_accuracy_mean"] <= 1.0
            assert m[f"test_{model}_{target}_accuracy_n"] == n
        assert m[f"test_tfidf_lr_{target}_accuracy_mean"] == 1.0  # the giveaway words: a linear model finds them
        assert 0.0 <= m[f"test_self_attention_{target}_redundancy"] <= 3 * 3 - 3  # r^2 - r: every hop on one word
    assert m["n_examples"] == 12
    run = json.loads((tmp_path / "models" / task / "run.json").read_text())
    assert run["train_bloggers"] == 36 and len(run["runs"]) == 8 and set(run["child_runs"]) == {
        f"{t}_{mdl}_s{s}" for t in ("age", "gender") for mdl in ("self_attention", "kim_cnn") for s in (1, 2)}
    info = json.loads((tmp_path / "models" / task / "age_self_attention_s1" / "data_info.json").read_text())
    assert info["truncating"] == "pre" and info["class_names"] == ["10s", "20s", "30s"]
    ev = tmp_path / "plots" / task / "eval"
    assert (ev / "attention.png").stat().st_size > 10_000 and "blogger" in (ev / "attention.md").read_text()
    rows = (ev / "accuracy.csv").read_text().splitlines()
    assert rows[0].startswith("target,model,seed,accuracy") and len(rows) == 1 + 2 * 5


def test_a_served_profiler_keeps_the_last_words(tmp_path):
    from dltm.inference import encode
    from dltm.text import Tokenizer

    tok = Tokenizer(num_words=10)
    tok.fit_on_texts(["a b c d e f"])
    info = {"doc_length": 3, "padding": "post", "truncating": "pre", "clean": "none"}
    np.testing.assert_array_equal(encode(["a b c d e", "b"], tok, info), [[3, 4, 5], [2, 0, 0]])
    np.testing.assert_array_equal(encode(["a b c d e"], tok, {**info, "truncating": "post"}), [[1, 2, 3]])


def test_the_report_sections_show_mean_and_std_beside_the_references(tmp_path):
    from pipelines import ch11_attention as ch11

    assert "Not run in this workspace" in ch11.profiling_table(tmp_path)[-1]
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "ch11_author_profiling.json").write_text(json.dumps({
        "test_self_attention_age_accuracy_mean": 0.55, "test_self_attention_age_accuracy_std": 0.01,
        "test_self_attention_age_accuracy_n": 3, "test_tfidf_lr_age_accuracy_mean": 0.6,
        "test_tfidf_lr_age_accuracy_std": 0.0, "test_tfidf_lr_age_accuracy_n": 1,
        "test_self_attention_age_redundancy": 12.5, "n_examples": 300}))
    lines = ch11.profiling_table(tmp_path)
    assert "| Self-attentive BiLSTM (Lin et al.; book 11.4) | 55.0 ± 1.0 (n=3) | - | 80.45 |" in lines
    assert "| TF-IDF logistic regression | 60.0 | - | - |" in lines and "age: 12.50" in lines[-1]
    (tmp_path / "metrics" / "ch11_title_generation.json").write_text(json.dumps({
        "test_rouge1": 30.0, "test_rouge2": 10.0, "test_rougeL": 25.0, "test_rouge1_lead": 20.0,
        "test_rouge2_lead": 5.0, "test_rougeL_lead": 15.0, "n_examples": 100, "lead_words": 9}))
    lines = ch11.titles_table(tmp_path)
    assert "| greedy (the book's) | 30.0 | 10.0 | 25.0 |" in lines and "| lead baseline | 20.0 | 5.0 | 15.0 |" in lines
    assert not any(line.startswith("| beam") for line in lines)  # no beam search run: no row


def test_a_bad_blog_file_is_a_one_line_error_of_the_stage(tmp_path, monkeypatch, capsys):
    from dltm import cli
    from stages import prepare

    synthetic_blogs(tmp_path / "data" / "raw", per_cell=3)
    (tmp_path / "data" / "raw" / "authors" / "blogs" / "notes.xml").write_text("<Blog></Blog>")
    write_params(tmp_path, {"prepare.authors.per_cell": 3, "prepare.authors.test_per_cell": 1})
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli.run(prepare.main, ["authors"]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err == "error: notes.xml: not a blog file name '<id>.<gender>.<age>.<industry>.<sign>.xml'\n", err
    assert not (tmp_path / "data" / "prepared" / "authors").exists()
