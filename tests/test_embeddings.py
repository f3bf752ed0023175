import numpy as np
import pytest

from dltm.embeddings import (
    analogy_accuracy,
    embedding_matrix,
    keyed_vectors,
    load_word2vec,
    nearest_neighbours,
    projection_png,
    save_word2vec,
    word_pair_correlations,
)


def analogy_space():
    """Vectors in which king - man + woman = queen and walk : walking = swim : swimming hold exactly."""
    rng = np.random.default_rng(0)
    base = {w: rng.normal(size=16) for w in ("royal", "male", "female", "walk", "swim", "ing", "noise1", "noise2")}
    vec = {
        "man": base["male"], "woman": base["female"], "king": base["royal"] + base["male"],
        "queen": base["royal"] + base["female"], "walk": base["walk"], "walking": base["walk"] + base["ing"],
        "swim": base["swim"], "swimming": base["swim"] + base["ing"], "noise1": base["noise1"],
        "noise2": base["noise2"],
    }
    return keyed_vectors(list(vec), np.stack(list(vec.values())))


def test_analogies_per_section_and_restricted_vocabulary(tmp_path):
    q = tmp_path / "questions-words.txt"
    q.write_text(": family\nman woman king queen\nking queen man woman\n"
                 ": gram4-present-participle\nwalk walking swim swimming\nwalk walking fly flying\n")
    kv = analogy_space()
    m = analogy_accuracy(kv, q)
    assert m["analogy_accuracy"] == 1.0 and m["analogy_questions"] == 3  # 'fly' is out of vocabulary
    assert m["analogy_semantic"] == 1.0 and m["analogy_syntactic"] == 1.0
    assert m["analogy_section.family"] == 1.0
    restricted = analogy_accuracy(kv, q, restrict_vocab=4)  # man, woman, king, queen: the family section only
    assert restricted["analogy_questions"] == 2 and "analogy_section.gram4-present-participle" not in restricted


def test_word_pairs_neighbours_and_picture(tmp_path):
    from gensim.test.utils import datapath

    words = sorted({w.lower() for line in open(datapath("wordsim353.tsv"), encoding="utf-8")
                    if not line.startswith("#") for w in line.split("\t")[:2]})
    kv = keyed_vectors(words, np.random.default_rng(1).normal(size=(len(words), 8)))
    m = word_pair_correlations(kv)
    assert m["wordsim353_oov_percent"] == 0.0 and -0.3 < m["wordsim353_spearman"] < 0.3  # random vectors
    assert m["simlex999_oov_percent"] > 0
    kv2 = analogy_space()
    near = nearest_neighbours(kv2, ["king", "absent"], topn=3)
    assert list(near) == ["king"] and len(near["king"]) == 3 and near["king"][0][1] >= near["king"][1][1]
    png = projection_png(kv2, tmp_path / "p.png", "t", n_words=10)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_word2vec_format_round_trip_and_glove_files(tmp_path):
    kv = analogy_space()
    path = save_word2vec(kv, tmp_path / "vectors.txt")
    assert path.read_text().splitlines()[0] == "10 16"
    again = load_word2vec(path)
    assert again.index_to_key == kv.index_to_key and np.allclose(again["queen"], kv["queen"], atol=1e-5)
    glove = tmp_path / "glove.6B.3d.txt"
    glove.write_text("the 0.1 0.2 0.3\nof 0.4 0.5 0.6\n")
    assert load_word2vec(glove, no_header=True)["of"].tolist() == pytest.approx([0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match="glove.6B.3d.txt: not a word2vec text file .*no_header=True"):
        load_word2vec(glove)


def test_embedding_matrix_rows_follow_the_word_index_and_report_coverage():
    kv = analogy_space()
    word_index = {"king": 1, "Queen": 2, "unseen": 3, "man": 4, "rare": 9}
    matrix, cov = embedding_matrix(word_index, kv, num_words=6, seed=3)
    assert matrix.shape == (6, 16) and not matrix[0].any()
    assert np.allclose(matrix[1], kv["king"]) and np.allclose(matrix[2], kv["queen"])  # case folded
    assert np.abs(matrix[3]).max() <= 0.25 and not np.allclose(matrix[3], 0)
    assert cov == {"words": 4, "found": 3, "missing": 1, "coverage": 0.75}  # 'rare' (index 9) is cut off


def test_pretrained_glove_through_the_registry(tmp_path):
    from dltm.embeddings import pretrained

    folder = tmp_path / "glove_twitter"
    folder.mkdir()
    (folder / "glove.twitter.27B.25d.txt").write_text("<user> " + " ".join(["0.5"] * 25) + "\nlol "
                                                       + " ".join(["-0.1"] * 25) + "\n")
    kv = pretrained("glove_twitter", 25, tmp_path)
    assert kv.vector_size == 25 and kv.index_to_key == ["<user>", "lol"]
    matrix, cov = embedding_matrix({"lol": 1, "omg": 2}, kv)
    assert cov["found"] == 1 and np.allclose(matrix[1], -0.1)
    with pytest.raises(ValueError, match=r"glove6b has no 64-d vectors \(dimensions: \[50, 100, 200, 300\]\)"):
        pretrained("glove6b", 64, tmp_path)
    with pytest.raises(FileNotFoundError, match="download@glove6b"):
        pretrained("glove6b", 50, tmp_path)
