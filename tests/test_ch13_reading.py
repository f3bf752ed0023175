"""Chapter 13: the bAbI parser and arrays, the memory network and babi_rnn, BiDAF's layers and span decoding,
the CMRC reader through the stages, stages.answer and the MLflow pyfunc, all on small synthetic data."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from dltm import babi, spans
from dltm.cli import UserError
from dltm.reading import AttentionFlow, MemoryHop, position_encoding
from pipelines import ch13_reading as ch13

from .conftest import PLACES, find_mirror, run_task, synthetic_babi_tree, synthetic_cmrc


def prepared_babi(tmp_path, n_train: int = 150, n_test: int = 40):
    raw = tmp_path / "data" / "raw" / "babi"
    synthetic_babi_tree(raw, n_train, n_test)
    babi.prepare_babi(raw, tmp_path / "data" / "prepared" / "babi", {"tasks": ["qa1-1k"]})
    return tmp_path / "data" / "prepared" / "babi"


def test_the_parser_reads_stories_questions_and_supporting_facts(tmp_path):
    path = tmp_path / "qa.txt"
    path.write_text("1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary? \tbathroom\t1\n"
                    "4 Daniel went back to the hallway.\n5 Where is Daniel? \thallway\t4\n1 Sandra got the milk.\n"
                    "2 What does Sandra have? \tmilk\t1\n", encoding="utf-8")
    stories = babi.parse_babi(path)
    assert len(stories) == 2 and babi.questions(stories) == 3
    first = stories[0]
    assert first.statements[0] == ["mary", "moved", "to", "the", "bathroom"]
    # a question sees the statements before it; its supporting fact is a statement index, not a line number
    assert [(q.after, q.answer, q.supporting) for q in first.questions] == [(2, "bathroom", [0]),
                                                                            (3, "hallway", [2])]


@pytest.mark.parametrize("text, match", [
    ("1 Mary moved.\n3 John moved.\n", "line 2: line number 3 does not follow 1"),
    ("1 Mary moved.\nJohn moved.\n", "line 2: expected 'N text'"),
    ("1 Mary moved.\n2 Where is Mary?\tkitchen\n", "line 2: a question line needs"),
    ("1 Mary moved.\n2 Where is Mary?\tkitchen\t7\n", "line 2: supporting facts '7' are not earlier statements"),
])
def test_a_malformed_line_is_named(tmp_path, text, match):
    path = tmp_path / "qa.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=match) as e:
        babi.parse_babi(path)
    assert str(path) in str(e.value)


def test_memories_keep_the_latest_statements_last_and_supporting_slots(tmp_path):
    story = babi.Story([["a", "b"], ["c"], ["d", "e", "f"]],
                       [babi.Question(3, ["where", "a"], "x", [0, 2]), babi.Question(1, ["where"], "y", [0])])
    vocab = babi.BabiVocabulary.build([story], memory_size=2)
    assert vocab.sentence_length == 3 and vocab.answers == ["x", "y"] and vocab.story_words == 4
    data = babi.vectorize([story], vocab)
    ids = {w: i for i, w in enumerate(vocab.words)}
    assert data.memories.shape == (2, 2, 3)
    # question 1 sees the last 2 of 3 statements: "c" then "d e f"; statement 0 fell out of the memory
    np.testing.assert_array_equal(data.memories[0], [[ids["c"], 0, 0], [ids["d"], ids["e"], ids["f"]]])
    assert data.supporting == [[1], [1]]  # statement 2 sits in slot 1; question 2: one statement, in the last slot
    np.testing.assert_array_equal(data.memories[1, 0], [0, 0, 0])
    seq = babi.story_sequences(data, vocab.story_words)
    np.testing.assert_array_equal(seq[0], [ids["c"], ids["d"], ids["e"], ids["f"]])
    np.testing.assert_array_equal(seq[1], [0, 0, ids["a"], ids["b"]])


def test_position_encoding_is_the_papers_formula():
    pe = position_encoding(4, 3)
    j, k = 2, 3  # l_kj = (1 - j/J) - (k/d)(1 - 2j/J), 1-based
    assert pe.shape == (4, 3) and pe[j - 1, k - 1] == pytest.approx((1 - j / 4) - (k / 3) * (1 - 2 * j / 4))


def test_a_hop_attends_only_to_filled_memories():
    rng = np.random.default_rng(0)
    u, keys, values = (rng.normal(size=s).astype("float32") for s in ((2, 4), (2, 3, 4), (2, 3, 4)))
    ids = np.array([[[0, 0], [5, 0], [6, 7]], [[1, 0], [2, 0], [3, 0]]], dtype="int32")
    out, p = (np.asarray(t) for t in MemoryHop()(u, keys, values, ids))
    assert p[0, 0] == 0.0 and p[0, 1:].sum() == pytest.approx(1.0, abs=1e-6)
    scores = np.einsum("d,sd->s", u[1], keys[1])
    want = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    np.testing.assert_allclose(p[1], want, rtol=1e-5)
    np.testing.assert_allclose(out[1], u[1] + want @ values[1], rtol=1e-5)


def test_memory_network_learns_single_supporting_facts_then_shows_its_hops(tmp_path, monkeypatch):
    prepared_babi(tmp_path)
    small = {"ch13_babi_memnn.epochs": 40, "ch13_babi_memnn.embed_dim": 16, "ch13_babi_memnn.memory_size": 10,
             "ch13_babi_memnn.early_stopping_patience": 0}
    m = run_task(tmp_path, monkeypatch, "ch13_babi_memnn", small, variant="qa1-1k")
    assert m["n_examples"] == 200 and m["test_accuracy"] > 0.9  # chance: 1/6
    assert m["test_error"] == pytest.approx(1 - m["test_accuracy"])
    assert (tmp_path / "plots" / "ch13_babi_memnn-qa1-1k" / "eval" / "memory_attention.png").stat().st_size > 0
    model = keras.saving.load_model(tmp_path / "models" / "ch13_babi_memnn-qa1-1k" / "model.keras")
    stories = babi.load_stories(tmp_path / "data" / "prepared" / "babi", "qa1-1k", "test")
    vocab = babi.BabiVocabulary.from_json(json.loads(
        (tmp_path / "models" / "ch13_babi_memnn-qa1-1k" / ch13.BABI_VOCAB_FILE).read_text()))
    data = babi.vectorize(stories, vocab)
    weights = ch13.hop_attention(model, ch13.babi_inputs(data, vocab))
    assert weights.shape == (200, 3, 10)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    # the last hop's strongest memory is the supporting fact for most questions
    hits = np.mean([int(w[-1].argmax()) in s for w, s in zip(weights, data.supporting, strict=True)])
    assert hits > 0.8


def test_babi_rnn_trains_and_a_run_not_prepared_is_named(tmp_path, monkeypatch):
    prepared_babi(tmp_path, n_train=60, n_test=20)
    small = {"ch13_babi_rnn.epochs": 2, "ch13_babi_rnn.embed_dim": 8, "ch13_babi_rnn.sentence_hidden": 8,
             "ch13_babi_rnn.query_hidden": 8}
    m = run_task(tmp_path, monkeypatch, "ch13_babi_rnn", small, variant="qa1-1k")
    run = json.loads((tmp_path / "models" / "ch13_babi_rnn-qa1-1k" / "run.json").read_text())
    assert m["n_examples"] == 100 and run["epochs"] == 2 and run["train_examples"] == 285  # 300 less 5% held out
    samples = (tmp_path / "plots" / "ch13_babi_rnn-qa1-1k" / "eval" / "samples.md").read_text(encoding="utf-8")
    assert samples.count("? answer **") == 10 and "* " in samples  # supporting facts marked
    model = keras.saving.load_model(tmp_path / "models" / "ch13_babi_rnn-qa1-1k" / "model.keras")
    assert model.get_layer("story_rnn").units == 8 and model.output.shape[-1] == len(PLACES)
    from dltm.cli import MissingOutputError
    from stages import train

    with pytest.raises(MissingOutputError, match="list qa2-1k in params.yaml prepare.babi.tasks"):
        train.main(["ch13_babi_rnn", "--variant", "qa2-1k"])


def test_attention_flow_matches_numpy():
    rng = np.random.default_rng(1)
    h, u = rng.normal(size=(1, 4, 6)).astype("float32"), rng.normal(size=(1, 3, 6)).astype("float32")
    cm, qm = np.array([[True, True, True, False]]), np.array([[True, True, False]])
    layer = AttentionFlow()
    g = np.asarray(layer(h, u, cm, qm))
    w_h, w_u, w_hu = (np.asarray(w) for w in (layer.w_h, layer.w_u, layer.w_hu))
    s = np.array([[w_h @ h[0, t] + w_u @ u[0, j] + w_hu @ (h[0, t] * u[0, j]) for j in range(3)] for t in range(4)])
    a = np.exp(s[:, :2] - s[:, :2].max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)  # context-to-query over the 2 real question words
    u_tilde = a @ u[0, :2]
    best = s[:3, :2].max(1)  # query-to-context over the 3 real context words
    b = np.exp(best - best.max()) / np.exp(best - best.max()).sum()
    h_tilde = b @ h[0, :3]
    want = np.concatenate([h[0], u_tilde, h[0] * u_tilde, h[0] * h_tilde], axis=-1)
    np.testing.assert_allclose(g[0, :3], want[:3], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_bidaf_gives_start_and_end_distributions_over_the_real_context_words(policy):
    keras.mixed_precision.set_global_policy(policy)  # run.mixed_precision: no inf * 0 in the masks
    keras.utils.set_random_seed(0)
    model = ch13.build_bidaf(words=30, chars=20, context_words=7, question_words=4, word_chars=3, word_dim=8,
                             char_filters=4, hidden=4)
    rng = np.random.default_rng(0)
    cw = np.array([[3, 4, 5, 6, 7, 0, 0]], dtype="int32")
    qw = np.array([[8, 9, 0, 0]], dtype="int32")
    cc = (rng.integers(1, 20, (1, 7, 3)) * (cw[..., None] > 0)).astype("int32")
    qc = (rng.integers(1, 20, (1, 4, 3)) * (qw[..., None] > 0)).astype("int32")
    try:
        p = np.asarray(model([cw, cc, qw, qc], training=False))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert p.shape == (1, 2, 7) and not np.isnan(p).any()
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    assert p[0, :, 5:].max() < 1e-6  # padding is never a start or an end


@pytest.mark.parametrize("doc, match", [
    ("not json", "not SQuAD's layout"),
    ('{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "1", "question": "q", "answers": []}]}]}]}',
     "question 1: answers must be a non-empty list"),
    ('{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "1", "question": "q", "answers": [{}]}]}]}]}',
     "question 1: an answer without a text"),
    ('{"data": []}', "no question in it"),
])
def test_a_malformed_squad_file_is_one_line_naming_it(tmp_path, doc, match):
    path = tmp_path / "cmrc2018_train.json"
    path.write_text(doc, encoding="utf-8")
    with pytest.raises(UserError, match=match) as e:
        spans.read_squad(path)
    assert str(path) in str(e.value)


def test_a_bad_reader_folder_or_uri_is_one_line(tmp_path, capsys, monkeypatch):
    from dltm import cli
    from stages import answer

    monkeypatch.chdir(tmp_path)
    args = ["--context", "北京是首都。", "--question", "首都？"]
    assert cli.run(answer.main, ["ch13_span_reader", *args]) == 2
    assert "models/ch13_span_reader/reader.json: missing; run `dvc repro " in capsys.readouterr().err
    (tmp_path / "models" / "ch13_span_reader").mkdir(parents=True)
    (tmp_path / "models" / "ch13_span_reader" / "reader.json").write_text("{}")
    assert cli.run(answer.main, ["ch13_span_reader", *args]) == 2
    assert "reader.json: not a reader's reader.json (KeyError" in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert cli.run(answer.main, ["models:/nothing_here/1", *args]) == 2
    assert "models:/nothing_here/1: MLflow cannot load it" in capsys.readouterr().err


def test_a_babi_file_that_is_not_text_or_has_no_question_is_named(tmp_path):
    path = tmp_path / "qa.txt"
    path.write_bytes(b"1 Mary \xff moved.\n")
    with pytest.raises(UserError, match="not UTF-8 text"):
        babi.parse_babi(path)
    path.write_text("1 Mary moved.\n", encoding="utf-8")
    with pytest.raises(UserError, match="no question in it"):
        babi.parse_babi(path)
    path.write_text("2 Mary moved.\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 1: a story starts at line number 1, got 2"):
        babi.parse_babi(path)


def test_best_spans_is_the_brute_force_argmax_under_the_length_cap():
    rng = np.random.default_rng(2)
    p1, p2 = rng.random((5, 9)), rng.random((5, 9))
    found, scores = spans.best_spans(p1, p2, max_answer_words=3)
    for n in range(5):
        pairs = [(i, j) for i in range(9) for j in range(i, min(9, i + 3))]
        i, j = max(pairs, key=lambda ij: p1[n, ij[0]] * p2[n, ij[1]])
        assert tuple(found[n]) == (i, j) and scores[n] == pytest.approx(p1[n, i] * p2[n, j])


def test_answer_spans_map_to_words_and_a_wrong_offset_is_searched():
    tokens = spans.segment("北京是中国的首都。上海是中国最大的城市。")
    assert "".join(tokens.words) == "北京是中国的首都。上海是中国最大的城市。"
    paragraphs = [{"context": "北京是中国的首都。上海是中国最大的城市。", "qas": [
        {"id": "q1", "question": "中国的首都是哪里？", "answers": [{"text": "北京", "answer_start": 0}]},
        {"id": "q2", "question": "最大的城市？", "answers": [{"text": "上海", "answer_start": 3}]},  # misses
        {"id": "q3", "question": "？", "answers": [{"text": "东京", "answer_start": 0}]}]}]
    out, counts = spans.prepare_split(paragraphs)
    p = out[0]
    q1, q2, q3 = p["qas"]
    assert spans.span_text(p, *q1["span"]) == "北京" and spans.span_text(p, *q2["span"]) == "上海"
    assert q3["span"] is None and counts == {"questions": 3, "located": 2, "not_located": 1,
                                             "answer_start_corrected": 1, "paragraphs": 1}


READER_SMALL = {"ch13_span_reader.epochs": 30, "ch13_span_reader.context_words": 24,
                "ch13_span_reader.question_words": 8, "ch13_span_reader.word_dim": 16,
                "ch13_span_reader.char_filters": 8, "ch13_span_reader.hidden": 12, "ch13_span_reader.batch_size": 32,
                "ch13_span_reader.min_count": 1, "ch13_span_reader.max_answer_words": 3,
                "ch13_span_reader.learning_rate": 0.01}


def test_span_reader_learns_then_answers_by_the_stage_and_the_pyfunc(tmp_path, monkeypatch, capsys):
    raw = tmp_path / "data" / "raw" / "cmrc2018"
    synthetic_cmrc(raw / "cmrc2018_train.json", 400, 0)
    synthetic_cmrc(raw / "cmrc2018_dev.json", 60, 1)
    synthetic_cmrc(raw / "cmrc2018_trial.json", 5, 2)  # the download's third file, unused
    spans.prepare_cmrc2018(raw, tmp_path / "data" / "prepared" / "cmrc2018", {"max_questions": None})
    m = run_task(tmp_path, monkeypatch, "ch13_span_reader", READER_SMALL)
    assert m["n_examples"] == 60 and m["test_em"] > 0.8 and m["test_f1"] >= m["test_em"]  # chance: 1/3
    assert (tmp_path / "plots" / "ch13_span_reader" / "eval" / "span_probabilities.png").stat().st_size > 0
    assert "| 小" in (tmp_path / "plots" / "ch13_span_reader" / "eval" / "samples.md").read_text(encoding="utf-8")

    from stages import answer

    capsys.readouterr()
    assert answer.main(["ch13_span_reader", "--context", "老王的颜色是黑色。小红的颜色是绿色。张三的颜色是白色。",
                        "--question", "小红的颜色是什么？"]) == 0
    text, score = capsys.readouterr().out.rstrip("\n").split("\t")
    assert text == "绿色" and 0 < float(score) <= 1

    from dltm import cli

    assert cli.run(answer.main, ["ch13_span_reader", "--context", " ", "--question", "谁？"]) == 2
    assert "error: --context and --question must both be non-empty text" in capsys.readouterr().err
    assert cli.run(answer.main, ["ch13_babi_memnn", "--context", "a", "--question", "b"]) == 2
    assert "unknown reader 'ch13_babi_memnn'; answer takes: ch13_span_reader" in capsys.readouterr().err

    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    version = mlflow.MlflowClient().get_model_version_by_alias("ch13_span_reader", "champion")
    model = mlflow.pyfunc.load_model(f"models:/ch13_span_reader/{version.version}")
    out = model.predict(pd.DataFrame({"context": ["李四的颜色是蓝色。小明的颜色是黄色。老王的颜色是红色。"],
                                      "question": ["小明的颜色是什么？"]}))
    assert list(out.columns) == ["answer", "score", "start"] and out["answer"][0] == "黄色"
    assert out["start"][0] == "李四的颜色是蓝色。小明的颜色是".__len__()
    with pytest.raises(Exception, match=r"missing inputs \[.question.\]"):
        model.predict(pd.DataFrame({"context": ["李四的颜色是蓝色。"]}))


@pytest.mark.skipif(find_mirror() is None, reason="the dataset mirror (DLTM_DATA_MIRROR) is not present")
def test_real_babi_files_parse_with_the_manifests_counts(tmp_path):
    root = find_mirror() / "babi"
    for run in ("qa1-10k", "qa3-1k", "qa18-1k"):
        for split in ("train", "test"):
            stories = babi.parse_babi(babi.babi_file(root, run, split))
            want = 10000 if (run.endswith("10k") and split == "train") else 1000
            assert babi.questions(stories) == want
    assert len(babi.parse_babi(babi.babi_file(root, "qa18-1k", "test"))) == 199  # the manifest's story count


def test_the_babi_table_counts_the_mean_error_and_the_tasks_passed(tmp_path):
    (tmp_path / "metrics").mkdir()
    for run, error in (("qa1-1k", 0.01), ("qa2-1k", 0.30)):
        (tmp_path / "metrics" / f"ch13_babi_memnn-{run}.json").write_text(json.dumps({"test_error": error}))
    (tmp_path / "metrics" / "ch13_span_reader.json").write_text(json.dumps(
        {"test_em": 0.25, "test_f1": 0.5, "n_examples": 3219, "answers_past_context_words": 150}))
    lines = ch13.babi_table(tmp_path)
    table = {line.split(" | ")[0]: line.split(" | ")[1:] for line in lines if line.startswith("| ")}
    assert table["| 1 single-supporting-fact"][0] == "1.0" and table["| 2 two-supporting-facts"][0] == "30.0"
    assert table["| **mean error**"][0] == "15.5 (2 tasks)" and table["| **passed** (error < 5%)"][0] == "1/2"
    assert table["| **passed** (error < 5%)"][1] == "9/20"  # the reference column, counted the same way
    assert any(line.startswith("Not run here: 76 runs") for line in lines)
    reader = "\n".join(ch13.reader_table(tmp_path))
    assert "| BiDAF from scratch, ours (3219 dev questions) | 25.0 | 50.0 |" in reader and "150 dev answers" in reader
