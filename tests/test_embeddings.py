import re
from pathlib import Path

import numpy as np
import pytest

from dltm.cli import UserError
from dltm.embeddings import (
    VectorsFileError,
    analogy_accuracy,
    embedding_matrix,
    keyed_vectors,
    load_vectors,
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
    with pytest.raises(VectorsFileError, match=r"glove.6B.3d.txt:1: not a '<count> <dim>' header: 'the 0.1 "
                                               r"0.2 0.3' \(a GloVe file has no header line: pass no_header=True\)"):
        load_word2vec(glove)
    assert load_word2vec(glove, limit=1, no_header=True).index_to_key == ["the"]


def test_words_with_spaces_round_trip_and_unwritable_words_are_refused(tmp_path):
    words = ["new york", "the", " lead", "trail ", "a\u2028b", "ny 2 go"]
    kv = keyed_vectors(words, np.arange(18, dtype=np.float32).reshape(6, 3) / 7)
    again = load_word2vec(save_word2vec(kv, tmp_path / "v.txt"))
    assert again.index_to_key == words and np.allclose(again.vectors, kv.vectors)
    assert again.get_vecattr("new york", "count") == 6  # the file's order is the frequency order
    # GloVe 840B-style headerless lines with spaced words: the first line's trailing numbers give the dimension
    glove = tmp_path / "g.txt"
    glove.write_text(". . . 0.5 -1 2e-3\nat name@domain.com 1 2 3\n", encoding="utf-8")
    g = load_word2vec(glove, no_header=True)
    assert g.index_to_key == [". . .", "at name@domain.com"] and g[". . ."].tolist() == pytest.approx([0.5, -1, 2e-3])
    for bad in ("", "two\nlines", "car\r", "route 66"):
        kv = keyed_vectors(["ok", bad], np.zeros((2, 3)))
        with pytest.raises(ValueError, match=re.escape(f"cannot write the word {bad!r}")):
            save_word2vec(kv, tmp_path / "bad.txt")
        assert not (tmp_path / "bad.txt").exists()


@pytest.mark.parametrize("content, no_header, match", [
    ("4 3\nthe 0.1 0.2 0.3\n", False, r"v.txt: the header says 4 vectors, the file has 1$"),
    ("1 3\nthe 0.1 0.2 0.3\nof 1 2 3\n", False, r"v.txt:3: the header says 1 vectors, the file has more"),
    ("2 3\nthe 0.1 0.2 0.3\nof 1 2\n", False, r"v.txt:3: expected a word and 3 numbers, found 2 values"),
    ("2 3\nthe 0.1 0.2 0.3\nof 1 2 3 4\n", False, r"v.txt:3: expected a word and 3 numbers, found more numbers"),
    ("2 3\nthe 0.1 0.2 0.3\nof 1 x 3\n", False, r"v.txt:3: 'x' is not a number \(expected a word and 3 numbers\)"),
    ("2 3\nthe 0.1 0.2 0.3\nnew york 1 2\n", False, r"v.txt:3: 'york' is not a number"),
    ("2 3\nthe 0.1 0.2 0.3\n 1 2 3\n", False, r"v.txt:3: no word before the 3 numbers"),
    ("", False, r"v.txt: empty file \(expected a <count> <dim> header\)"),
    ("\n\n", True, r"v.txt: empty file \(expected vectors\)"),
    ("3\nthe 1\n", False, r"v.txt:1: not a '<count> <dim>' header: '3'"),
    ("the 0.1 0.2\nof 0.3\n", True, r"v.txt:2: expected a word and 2 numbers, found 1 values"),
    ("the one two\n", True, r"v.txt:1: expected a word and its vector, got 'the one two'"),
    ("1 2\ncaf\xe9 1 2\n", False, r"v.txt:2: not UTF-8"),
])
def test_bad_vectors_files_name_the_file_and_line(tmp_path, content, no_header, match):
    path = tmp_path / "v.txt"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(VectorsFileError, match=match) as e:
        load_word2vec(path, no_header=no_header)
    assert "\n" not in str(e.value) and isinstance(e.value, UserError)


def test_load_vectors_sees_the_header_and_reports_a_short_file(tmp_path):
    (tmp_path / "vectors.txt").write_text("4 3\nthe 0.1 0.2 0.3\n", encoding="utf-8")
    with pytest.raises(VectorsFileError, match=r"vectors.txt: the header says 4 vectors, the file has 1"):
        load_vectors(tmp_path)
    (tmp_path / "vectors.txt").write_text("2 3\nthe 0.1 0.2 0.3\n\nof 1 2 3\n\n", encoding="utf-8")
    assert load_vectors(tmp_path).index_to_key == ["the", "of"]  # blank lines are skipped
    (tmp_path / "vectors.txt").write_text("3 1\nthe 1\nof 2\nthe 3\n", encoding="utf-8")
    kv = load_vectors(tmp_path)
    assert kv.index_to_key == ["the", "of"] and kv["the"].tolist() == [1.0]  # a repeated word keeps its first


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
    with pytest.raises(FileNotFoundError, match="python -m stages.download glove6b"):
        pretrained("glove6b", 50, tmp_path)


# ---- evaluations whose test items are out of vocabulary (a run on 1000 tokens has a few dozen words) ----


def tiny_vectors(words=("zqx", "qzv", "vxq")):
    """Vectors whose words are in none of WordSim-353, SimLex-999 and questions-words.txt."""
    return keyed_vectors(list(words), np.random.default_rng(2).normal(size=(len(words), 4)))


def test_evaluations_with_no_test_item_in_the_vocabulary_give_null_and_coverage_0(tmp_path):
    from gensim.test.utils import datapath

    from dltm.embeddings import null_metrics_note

    for kv in (tiny_vectors(), tiny_vectors(())):  # three words, and none at all
        m = analogy_accuracy(kv, datapath("questions-words.txt"))
        assert m == {"analogy_accuracy": None, "analogy_questions": 0, "analogy_coverage": 0.0,
                     "analogy_semantic": None, "analogy_syntactic": None}
        pairs = word_pair_correlations(kv)
        assert pairs == {"wordsim353_spearman": None, "wordsim353_pairs": 0, "wordsim353_coverage": 0.0,
                         "wordsim353_oov_percent": 100.0, "simlex999_spearman": None, "simlex999_pairs": 0,
                         "simlex999_coverage": 0.0, "simlex999_oov_percent": 100.0}
        assert nearest_neighbours(kv, ["king", "queen"]) == {}
        assert projection_png(kv, tmp_path / "p.png", "t").read_bytes()[:4] == b"\x89PNG"
        assert null_metrics_note(m | pairs, len(kv)) == (
            "analogy_accuracy (0 questions covered), analogy_semantic, analogy_syntactic, wordsim353_spearman "
            "(0 pairs covered), simlex999_spearman (0 pairs covered) have no value: too few of their test items "
            f"have their words among the {len(kv)} words of the vectors")
    one = tiny_vectors(["zqx"])
    assert nearest_neighbours(one, ["zqx"]) == {"zqx": []}
    assert projection_png(one, tmp_path / "one.png", "t").is_file()
    assert projection_png(keyed_vectors(["a", "b", "c"], np.ones((3, 1))), tmp_path / "d1.png", "t").is_file()
    assert null_metrics_note({"analogy_accuracy": 0.5, "wordsim353_spearman": 0.1}, 10) is None


def test_word_pairs_need_two_covered_pairs_and_unequal_similarities():
    one_pair = tiny_vectors(["tiger"])  # WordSim-353 has 'tiger tiger' only
    m = word_pair_correlations(one_pair)
    assert m["wordsim353_pairs"] == 1 and m["wordsim353_spearman"] is None
    assert m["wordsim353_coverage"] == pytest.approx(1 / 353) and m["wordsim353_oov_percent"] == pytest.approx(
        100 * 352 / 353)
    two = keyed_vectors(["tiger", "cat"], np.array([[1.0, 0.0], [0.6, 0.8]]))  # 'tiger cat' and 'tiger tiger'
    m = word_pair_correlations(two)
    assert m["wordsim353_pairs"] == 2 and m["wordsim353_spearman"] == pytest.approx(1.0)
    same = keyed_vectors(["tiger", "cat"], np.array([[1.0, 0.0], [1.0, 0.0]]))  # both similarities 1: no ranking
    assert word_pair_correlations(same)["wordsim353_spearman"] is None


def test_analogies_covered_in_one_group_leave_the_other_null(tmp_path):
    q = tmp_path / "questions-words.txt"
    q.write_text(": family\nman woman king queen\n: gram4-present-participle\nwalk walking fly flying\n")
    m = analogy_accuracy(analogy_space(), q)
    assert m["analogy_semantic"] == 1.0 and m["analogy_syntactic"] is None and m["analogy_coverage"] == 0.5


class _NoTracker:
    def log_metrics(self, metrics, step=None):
        assert all(isinstance(v, (int, float)) or v is None or isinstance(v, str) for v in metrics.values())

    def log_artifact(self, path, artifact_path=None):
        assert Path(path).is_file()


@pytest.mark.parametrize("ranking", ["cosine", "dot"])
def test_evaluate_embedding_of_a_tiny_vocabulary_writes_null_metrics_and_the_report_says_why(tmp_path, ranking):
    import json
    import shutil

    from gensim.test.utils import datapath

    from dltm.params import RunSettings
    from dltm.report import build
    from dltm.tasks import Context
    from pipelines import ch06_word2vec as ch06

    from .conftest import prepared_mr

    task = next(t for t in ch06.TASKS if t.id == "ch06_gensim_cbow")
    prepared_mr(tmp_path)
    (tmp_path / "data" / "raw" / "analogies").mkdir(parents=True)
    shutil.copy(datapath("questions-words.txt"), tmp_path / "data" / "raw" / "analogies" / "questions-words.txt")
    ctx = Context(task, {"neighbours": ranking, "restrict_vocab": 30000}, RunSettings(seed=1), _NoTracker(),
                  root=tmp_path, variant="ptb")
    save_word2vec(tiny_vectors(), ctx.model_dir / "vectors.txt")
    summary = ch06.evaluate_embedding(ctx)
    written = json.loads(ctx.metrics_file.read_text())
    assert written == summary and written["test_analogy_accuracy"] is None and written["vocabulary"] == 3
    assert written["test_wordsim353_coverage"] == written["test_simlex999_coverage"] == 0.0
    assert written["test_analogy_coverage"] == 0.0
    assert "among the 3 words" in written["note"]
    assert len(json.loads((ctx.eval_dir / "neighbours.json").read_text())) == 3
    report = build([task], tmp_path)
    assert "| ch06_gensim_cbow-ptb | 6.2.2 | ptb | test_analogy_accuracy | - | 0.1550 |" in report
    assert f"- **ch06_gensim_cbow-ptb**: {written['note']}." in report
