"""End to end: the real DVC pipeline in a copy of the repository, then MLflow and `dvc status` checked.

One `dvc exp run` of the whole pipeline. Where the dataset mirror is present (CI has it), every dataset it
holds whole is the real one (MR, the book's UCI tables, IMDB, PTB, the analogy questions, tinyshakespeare) and
the run uses the README's quick-check caps (`run.max_epochs=1`, `run.max_train_examples=1000`,
`run.max_eval_examples=1000`); the datasets it lacks (MNIST's training images, UCI HAR, text8, GloVe Twitter)
are tiny synthetic files in their real formats. Without the mirror every dataset is synthetic.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from dltm.datasets import get as get_dataset
from dltm.datasets import sha256_file
from dltm.tasks import all_tasks

from .conftest import (
    MIRROR,
    NEG_WORDS,
    POS_WORDS,
    REPO,
    synthetic_babi_tree,
    synthetic_cmrc,
    synthetic_har,
    synthetic_imdb,
    synthetic_mnist,
    synthetic_mr,
    synthetic_tables,
    write_corpora,
)
from .test_ch10 import toy_pairs
from .test_ch11_profiling import synthetic_blogs
from .test_ch11_titles import synthetic_titles

pytestmark = pytest.mark.slow
TASKS = list(all_tasks())
REAL = ("mr", "ionosphere", "iris", "housing", "ptb", "analogies", "charlm", "cmn", "fra", "authors", "titles",
        "babi", "cmrc2018")
"""The datasets the mirror holds whole that the end-to-end run reads when the mirror is present. IMDB stays
synthetic: its 100,000 review files would dominate every push and pull of the CI test (the real IMDB's split is
checked in tests/test_ch07_data.py)."""
EXPECT = ({"epochs": 1, "mr_dev": 1000, "folds": 3, "mr_examples": 3 * 1000} if MIRROR is not None else
          {"epochs": 2, "mr_dev": 60, "folds": 3, "mr_examples": 300})
"""What the run gives: the quick-check caps on the real data (each of MR's 3 folds scored on its first 1000
sentences: run.max_eval_examples), or the tiny settings on synthetic data."""
CH07 = [t for t in TASKS if t.startswith("ch07_")]
E2E_CORPORA = ("ptb",)
E2E_KIM = ("rand", "static")
E2E_TRANSLATION = ("ch10_seq2seq_char", "ch10_seq2seq_attention")
LEFT_OUT = {"  - corpora: [text8, ptb, imdb_text]": "  - corpora: [ptb]",
            "  - kim_variants: [rand, static, non-static, multichannel]": "  - kim_variants: [rand, static]",
            "  - prepared: [mr, imdb, text8, ptb, cmn, fra]": "  - prepared: [mr, imdb, ptb, cmn]",
            "ch10_seq2seq_char_fra: {data: fra}": "", "ch10_seq2seq_word: {data: cmn}": "",
            "ch10_gru_cho: {data: cmn}": "", " text8, ptb, analogies,": " ptb, analogies,", " cmn, fra,": " cmn,",
            "ch04_optimizer_comparison: {module: ch04_feedforward, data: data/raw/mnist}": "",
            "ch09_peephole_sentiment: {module: ch09_lstm_sentiment, data: data/prepared/mr}": "",
            "ch09_rnn_comparison: {module: ch09_lstm_sentiment, data: data/prepared/mr}": "",
            "    foreach: [imdb, mr]": "    foreach: [mr]",
            **{f"      {t}-fashion_mnist: {{task: {t}, module: {m}, data: fashion_mnist}}\n": ""
               for t, m in (("ch04_mnist_mlp", "ch04_feedforward"), ("ch05_mnist_cnn", "ch05_cnn"))},
            "      ch04_optimizer_comparison-fashion_mnist: {task: ch04_optimizer_comparison, "
            "module: ch04_feedforward,\n                                                data: fashion_mnist}\n": ""}
E2E_LEFT_OUT_TASKS = {"ch04_optimizer_comparison", "ch09_peephole_sentiment", "ch09_rnn_comparison",
                      *(t for t in TASKS if t.startswith("ch10_") and t not in E2E_TRANSLATION)}
"""What the end-to-end run leaves out of dvc.yaml's foreach and matrix lists, for CI's time (each stage costs
about 15 s, most of it importing TensorFlow and MLflow): chapter 6 on text8 and IMDB (the same stages as on PTB, whose
files are real), Kim's non-static and multichannel (static's code path with trainable vectors), chapter 10's
word-level, GRU and French runs (the char and attention models' stages), chapter 4's optimizer comparison,
chapter 9's peephole and comparison tasks (the same train@/evaluate@ stages as its LSTM's), chapter 12's
classifier on IMDB (as on MR) and chapters 4-5's Fashion-MNIST runs but the softmax regression's; each task's
own test file runs its stages on tiny data. Every kind of stage still runs; the other items are the same
commands with other values."""
SKIP = ("dvc.lock", "metrics/", "reports/results.md", "reports/experiments.md", "reports/figures/", "reports/runs/",
        "plots/", "mlflow.db", "models/", "data/")


def sh(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3000)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


def make_workspace(root: Path, env: dict[str, str]) -> Path:
    """A fresh git + DVC checkout of the repository's files, without any recorded results, and dvc.yaml's lists
    narrowed as :data:`LEFT_OUT` says."""
    ws = root / "repo"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    for rel in listed:
        if rel.startswith(SKIP) or not (REPO / rel).is_file():
            continue
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, ws / rel)
    text = (ws / "dvc.yaml").read_text()
    for old, new in LEFT_OUT.items():
        assert old in text, old  # dvc.yaml changed: update LEFT_OUT
        text = text.replace(old, new)
    (ws / "dvc.yaml").write_text(text)
    params = ws / "params.yaml"  # Kim's pretrained variants: the vectors of a corpus the run leaves out -> PTB's
    params.write_text(re.sub(r"(?m)^(  embeddings: data/embeddings/ch06_\w+)-(?:text8|imdb_text)\b", r"\1-ptb",
                             params.read_text()))
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        sh(["git", *args], ws, env)
    return ws


def base_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    env.pop("DLTM_EXPECTED_SHA256", None)
    return env


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    mirror = tmp / "mirror"
    files = synthetic_mr(mirror / "mr", n_per_class=150)
    sums = {"mr": {n: sha256_file(p) for n, p in files.items()}}
    for name, path in synthetic_tables(mirror / "book").items():  # ionosphere, iris, housing
        sums[name.removesuffix(".txt")] = {name: sha256_file(path), f"book/{name}": sha256_file(path)}
    sums["mnist"] = {n: sha256_file(p) for n, p in synthetic_mnist(mirror / "mnist").items()}
    sums["fashion_mnist"] = {n: hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest()  # of the content
                             for n, p in synthetic_mnist(mirror / "fashion_mnist", seed=1).items()}
    synthetic_har(tmp / "har_src", zip_to=mirror / "har" / "UCI HAR Dataset.zip")
    synthetic_imdb(tmp / "imdb_src", n_per_class=60)  # the labeled aclImdb tree, packed as the mirror holds it
    (mirror / "imdb").mkdir()
    with tarfile.open(mirror / "imdb" / "aclImdb_v1_labeled.tar.gz", "w:gz") as tar:
        tar.add(tmp / "imdb_src" / "aclImdb", "aclImdb")
    sums["imdb"] = {"imdb/aclImdb_v1_labeled.tar.gz": sha256_file(mirror / "imdb" / "aclImdb_v1_labeled.tar.gz")}
    corpora = write_corpora(tmp / "corpora")  # chapter 6: PTB files, text8 (zipped as published), analogies
    (mirror / "ptb").mkdir()
    for split in ("train", "valid", "test"):
        shutil.copy(corpora[f"ptb.{split}.txt"], mirror / "ptb")
    sums["ptb"] = {f"ptb.{s}.txt": sha256_file(corpora[f"ptb.{s}.txt"]) for s in ("train", "valid", "test")}
    (mirror / "text8").mkdir()
    with zipfile.ZipFile(mirror / "text8" / "text8.zip", "w") as z:
        z.write(corpora["text8"], "text8")
    sums["text8"] = {"text8/text8.zip": sha256_file(mirror / "text8" / "text8.zip")}
    (mirror / "word2vec").mkdir()
    shutil.copy(corpora["questions-words.txt"], mirror / "word2vec")
    sums["analogies"] = {"questions-words.txt": sha256_file(corpora["questions-words.txt"])}
    (mirror / "tinyshakespeare").mkdir()  # chapter 8's char-level LM corpus (dataset charlm)
    (mirror / "tinyshakespeare" / "input.txt").write_text("First Citizen:\nBefore we proceed any further.\n\n" * 40)
    sums["charlm"] = {"input.txt": sha256_file(mirror / "tinyshakespeare" / "input.txt")}
    cmn = mirror / "book" / "cmn.txt"  # chapter 10's English-Chinese pairs (the book's file, three columns)
    cmn.write_text("".join(f"{e}\t{z}\tCC-BY 2.0 (France) Attribution: tatoeba.org\n" for e, z in toy_pairs(300)),
                   encoding="utf-8")
    sums["cmn"] = {"cmn.txt": sha256_file(cmn), "book/cmn.txt": sha256_file(cmn)}
    (mirror / "anki").mkdir()  # English-French, zipped as manythings.org publishes it
    fra = "".join(f"{e}\t{e.upper()}\n" for e, _ in toy_pairs(300))
    with zipfile.ZipFile(mirror / "anki" / "fra-eng.zip", "w") as z:
        z.writestr("fra.txt", fra)
    sums["fra"] = {"anki/fra-eng.zip": sha256_file(mirror / "anki" / "fra-eng.zip"),
                   "fra.txt": hashlib.sha256(fra.encode("utf-8")).hexdigest()}
    (mirror / "glove").mkdir()  # 7.3.3's GloVe Twitter vectors: a few synthetic words in each dimension
    with zipfile.ZipFile(mirror / "glove" / "glove.twitter.27B.zip", "w") as z:
        for dim in (25, 50, 100, 200):
            z.writestr(f"glove.twitter.27B.{dim}d.txt", "".join(
                f"{w} " + " ".join(f"{(i * 7 + j) % 11 / 10 - 0.5:.2f}" for j in range(dim)) + "\n"
                for i, w in enumerate(POS_WORDS + NEG_WORDS)))
    blogs = synthetic_blogs(tmp / "blogs_src", per_cell=20) / "authors"  # chapter 11.4, zipped as the mirror's
    (mirror / "author_profiling_blogs").mkdir()
    with zipfile.ZipFile(mirror / "author_profiling_blogs" / "blogs_subset_1500.zip", "w") as z:
        for f in sorted((blogs / "blogs").iterdir()):
            z.write(f, f"blogs/{f.name}")
    with gzip.open(mirror / "author_profiling_blogs" / "blogs_index.csv.gz", "wt") as f:
        f.write("filename,blogger_id,gender,age,age_group,industry,sign,bytes,posts,sha256,in_subset\n")
    sums["authors"] = {f"author_profiling_blogs/{n}": sha256_file(mirror / "author_profiling_blogs" / n)
                       for n in ("blogs_subset_1500.zip", "blogs_index.csv.gz")}
    titles = synthetic_titles(tmp / "titles_src", n=60) / "titles" / "title.json"  # chapter 11.5
    shutil.copy(titles, mirror / "book" / "title.json")
    sums["titles"] = {"title.json": sha256_file(titles), "book/title.json": sha256_file(titles)}
    babi = synthetic_babi_tree(tmp / "babi_src", n_train=60, n_test=20)  # chapter 13: bAbI's tree, task 1 made up
    for rel, path in babi.items():
        (mirror / "babi" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, mirror / "babi" / rel)
    sums["babi"] = {rel: sha256_file(path) for rel, path in babi.items()}
    sums["cmrc2018"] = {}
    for split, n in (("train", 200), ("dev", 40), ("trial", 5)):  # CMRC 2018's layout, made-up passages
        path = mirror / "cmrc2018" / "squad-style-data" / f"cmrc2018_{split}.json"
        synthetic_cmrc(path, n, seed=len(split))
        sums["cmrc2018"][path.name] = sha256_file(path)
    if MIRROR is not None:  # the real files where the mirror has them: these checksums are the registry's
        for dataset_id in REAL:
            for src in get_dataset(dataset_id).mirror:
                shutil.copyfile(MIRROR / src.url, mirror / src.url)
            sums.pop(dataset_id, None)
        files = {n: mirror / "mr" / n for n in files}
    (tmp / "sums.json").write_text(json.dumps(sums))
    env = base_env(tmp) | {"DLTM_DATA_MIRROR": str(mirror), "DLTM_EXPECTED_SHA256": str(tmp / "sums.json")}
    ws = make_workspace(tmp, env)
    caps = (["-S", "run.max_epochs=1", "-S", "run.max_train_examples=1000", "-S", "run.max_eval_examples=1000",
             "-S", "prepare.mr.cv_folds=3"]  # the README's quick check; 3 of Kim's 10 folds keep CI in its budget
            if MIRROR is not None else
            ["-S", "prepare.mr.dev_size=60", "-S", "prepare.mr.cv_folds=3", "-S", "run.max_epochs=2"])
    sh(["dvc", "exp", "run", *caps,
        "-S", "ch07_kim_cnn.filter_nums=4", "-S", "ch05_har_cnn1d.repeats=2",
        "-S", "ch06_word2vec_keras.iterations=40", "-S", "ch06_word2vec_keras.log_every=20",
        "-S", "ch06_word2vec_keras.batch_size=64", "-S", "ch06_word2vec_keras.vector_dim=16",
        "-S", "ch06_gensim_skipgram.vector_size=16", "-S", "ch06_gensim_cbow.vector_size=16",
        "-S", "ch06_glove.vector_size=8", "-S", "ch07_cnn1d_imdb.maxlen=40", "-S", "ch07_cnn1d_imdb.filters=8",
        "-S", "ch07_cnn1d_imdb.hidden_dims=8", "-S", "ch07_kim2014.filter_nums=4", "-S", "ch07_kim2014.embed_size=8",
        "-S", "ch07_cnn_glove_2ch.filter_nums=4", "-S", "ch07_cnn_glove_2ch.embed_size=25",
        "-S", "ch08_char_rnn.hidden_size=16", "-S", "ch08_char_rnn.stride=5",
        "-S", "ch08_char_rnn.seq_length=10", "-S", "ch08_char_rnn.sample_every=1",
        "-S", "ch08_char_rnn.sample_chars=20",
        "-S", "ch08_ptb_lm.hidden_size=16", "-S", "ch08_ptb_lm.num_steps=5", "-S", "ch08_ptb_lm.batch_size=8",
        "-S", "ch09_lstm_sentiment.hidden_size=8", "-S", "ch09_custom_cell.hidden_size=8",
        "-S", "ch09_peephole_sentiment.hidden_size=8", "-S", "ch09_rnn_comparison.hidden_size=8",
        "-S", "ch09_rnn_comparison.models=[lstm,kim_cnn]", "-S", "ch09_rnn_comparison.seeds=[1,2]",
        "-S", "prepare.cmn.test_pairs=30", "-S", "prepare.fra.test_pairs=30",
        *(x for t in ("ch10_seq2seq_char", "ch10_seq2seq_char_fra") for x in (
            "-S", f"{t}.num_samples=300", "-S", f"{t}.latent_dim=16", "-S", f"{t}.beam_examples=5")),
        *(x for t in ("ch10_seq2seq_word", "ch10_seq2seq_attention", "ch10_gru_cho") for x in (
            "-S", f"{t}.num_samples=300", "-S", f"{t}.latent_dim=16", "-S", f"{t}.embed_dim=8",
            "-S", f"{t}.beam_examples=5")),
        "-S", "prepare.authors.per_cell=20", "-S", "prepare.authors.test_per_cell=5",  # 120 bloggers
        *(x for k, v in (("targets", "[age]"), ("models", "[self_attention,tfidf_lr]"), ("seeds", "[1]"),
                         ("time_steps", 30), ("vocab_size", 200), ("embed_size", 8), ("hidden_size", 8),
                         ("da", 4), ("r", 3), ("heatmap_examples", 1))
          for x in ("-S", f"ch11_author_profiling.{k}={v}")),
        *(x for k, v in (("vocab_size", 300), ("embed_size", 8), ("hidden_size", 16), ("encoder_steps", 30),
                         ("decoder_steps", 10), ("dev_size", 10), ("beam_width", 2))
          for x in ("-S", f"ch11_title_generation.{k}={v}")),
        # chapter 12: tiny Transformers and BERT; IMDB synthetic, MR real where the mirror is
        *(x for k, v in (("vocab_size", 200), ("maxlen", 40), ("embed_dim", 8), ("ff_dim", 8), ("hidden_dims", 4),
                         ("heatmap_examples", 1))
          for x in ("-S", f"ch12_transformer_classifier.{k}={v}")),
        "-S", "prepare.wordpiece.vocabulary_size=300",
        *(x for k, v in (("num_layers", 1), ("hidden_dim", 16), ("intermediate_dim", 32), ("seq_length", 32),
                         ("validation_texts", 20), ("max_predictions", 4))
          for x in ("-S", f"ch12_bert_pretrain.{k}={v}")),
        "-S", "ch12_bert_finetune.seq_length=32", "-S", "ch12_bert_finetune.max_folds=1",
        *(x for k, v in (("num_samples", 300), ("embed_dim", 16), ("intermediate_dim", 32), ("num_heads", 2),
                         ("beam_examples", 5), ("patience", 0))
          for x in ("-S", f"ch12_transformer_translation.{k}={v}")),
        # chapter 13: one bAbI run (real where the mirror is) for both models; the first 300 CMRC questions
        "-S", "prepare.babi.tasks=[qa1-1k]", "-S", "ch13_babi_memnn.embed_dim=8",
        "-S", "ch13_babi_rnn.sentence_hidden=8", "-S", "ch13_babi_rnn.query_hidden=8",
        "-S", "prepare.cmrc2018.max_questions=300",
        *(x for k, v in (("hidden", 8), ("word_dim", 8), ("char_filters", 8), ("context_words", 200))
          for x in ("-S", f"ch13_span_reader.{k}={v}")),
        # chapter 14 and the appendices: tiny paragraph vectors and skip-thoughts (synthetic IMDB), one seed of B
        *(x for k, v in (("vector_size", 8), ("workers", 1), ("search_queries", 20), ("neighbours", 5))
          for x in ("-S", f"ch14_paragraph_vector.{k}={v}")),
        *(x for k, v in (("vocab_size", 200), ("embed_dim", 8), ("hidden", 8), ("max_triples", 300),
                         ("max_words", 12), ("search_queries", 20), ("neighbours", 5))
          for x in ("-S", f"ch14_skip_thought.{k}={v}")),
        "-S", "appB_smooth.seeds=[1]", "-S", "appB_smooth.vocab_size=2000"],
       ws, env)
    return ws, env, tmp, files


def test_pipeline_writes_every_output(synthetic):
    ws, env, _, _ = synthetic
    for task in TASKS:
        if task in E2E_LEFT_OUT_TASKS:
            continue
        if task.startswith("ch06_"):  # embeddings: one per corpus
            for corpus in E2E_CORPORA:
                assert (ws / "metrics" / f"{task}-{corpus}.json").is_file(), (task, corpus)
                assert (ws / "data" / "embeddings" / f"{task}-{corpus}" / "vectors.txt").is_file(), (task, corpus)
            continue
        if task == "ch07_kim2014":  # Kim's four variants, each cross-validated (prepare.mr.cv_folds)
            for variant in E2E_KIM:
                m = json.loads((ws / "metrics" / f"{task}-{variant}.json").read_text())
                assert m["test_accuracy_n"] == EXPECT["folds"] and m["n_examples"] == EXPECT["mr_examples"], variant
                last = EXPECT["folds"] - 1
                assert (ws / "models" / f"{task}-{variant}" / f"fold_{last}" / "model.keras").is_file()
            continue
        if task in ("ch13_babi_memnn", "ch13_babi_rnn"):  # the one bAbI run of prepare.babi.tasks
            m = json.loads((ws / "metrics" / f"{task}-qa1-1k.json").read_text())
            assert m["n_examples"] == (1000 if MIRROR is not None else 100) and 0 <= m["test_error"] <= 1, task
            continue
        if task == "ch12_transformer_classifier":  # 12.1: on MR (IMDB: LEFT_OUT)
            for variant in ("mr",):
                assert (ws / "metrics" / f"{task}-{variant}.json").is_file(), variant
            # the heat map draws test texts of at most 24 words: MR has them (the synthetic reviews are longer)
            assert (ws / "plots" / f"{task}-mr" / "eval" / "attention.png").is_file()
            continue
        assert (ws / "metrics" / f"{task}.json").is_file(), task
        assert (ws / "models" / task / "run.json").is_file(), task
    fashion = json.loads((ws / "metrics" / "ch04_mnist_softmax-fashion_mnist.json").read_text())  # train_images@
    assert fashion["n_examples"] == 100 and 0.0 <= fashion["test_accuracy"] <= 1.0
    assert json.loads((ws / "metrics" / "ch07_tokenizer_demo.json").read_text())["word_index_matches_book"] == 1.0
    kim = json.loads((ws / "metrics" / "ch07_kim_cnn.json").read_text())
    assert kim["n_examples"] == EXPECT["mr_dev"] and 0.0 <= kim["test_accuracy"] <= 1.0
    assert {"test_precision_pos", "test_recall_neg", "test_f1_macro", "test_loss"} <= set(kim)
    history = (ws / "plots" / "ch07_kim_cnn" / "train" / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 1 + EXPECT["epochs"]  # header + run.max_epochs
    assert (ws / "plots" / "ch07_kim_cnn" / "eval" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert (ws / "plots" / "ch10_seq2seq_attention" / "eval" / "attention.png").read_bytes()[:4] == b"\x89PNG"
    out = sh([sys.executable, "-m", "stages.translate", "ch10_seq2seq_attention", "See you.", "--beam", "2"], ws,
             env).stdout
    assert out.startswith("See you.\t"), out
    assert (ws / "plots" / "ch11_author_profiling" / "eval" / "attention.png").read_bytes()[:4] == b"\x89PNG"
    profiling = json.loads((ws / "metrics" / "ch11_author_profiling.json").read_text())
    assert profiling["n_examples"] == 30 and profiling["test_self_attention_age_accuracy_n"] == 1
    titles = json.loads((ws / "metrics" / "ch11_title_generation.json").read_text())
    assert titles["n_examples"] == 10 and 0.0 <= titles["test_rougeL"] <= 100.0
    out = sh([sys.executable, "-m", "stages.generate", "ch11_title_generation", "We study graph networks."], ws,
             env).stdout
    assert len(out.splitlines()) == 1, out
    bert = json.loads((ws / "metrics" / "ch12_bert_finetune.json").read_text())
    assert bert["mr_bert_pretrained_accuracy_n"] == 1 and 0.0 <= bert["test_imdb_bert_random_accuracy_mean"] <= 1.0
    out = sh([sys.executable, "-m", "stages.predict", "ch12_bert_finetune/mr-pretrained/fold_0", "a gorgeous film"],
             ws, env).stdout
    assert out.split("\t")[0] in ("pos", "neg"), out
    assert json.loads((ws / "metrics" / "ch12_transformer_translation.json").read_text())["n_examples"] > 0
    assert (ws / "plots" / "ch13_babi_memnn-qa1-1k" / "eval" / "memory_attention.png").is_file()
    reader = json.loads((ws / "metrics" / "ch13_span_reader.json").read_text())
    assert reader["n_examples"] > 0 and 0.0 <= reader["test_em"] <= reader["test_f1"] <= 1.0
    out = sh([sys.executable, "-m", "stages.answer", "ch13_span_reader", "--context", "北京是中国的首都。",
              "--question", "中国的首都是哪里？"], ws, env).stdout
    assert out.count("\t") == 1 and 0.0 <= float(out.split("\t")[1]) <= 1.0, out
    out = sh([sys.executable, "-m", "stages.search", "ch14_paragraph_vector", "great wonderful film", "-k", "3"],
             ws, env).stdout
    assert [line.split()[0] for line in out.splitlines()] == ["1", "2", "3"], out
    out = sh([sys.executable, "-m", "stages.search", "ch14_skip_thought", "great wonderful film", "-k", "2"],
             ws, env).stdout
    assert [line.split()[0] for line in out.splitlines()] == ["1", "2"], out
    report = (ws / "reports" / "results.md").read_text()
    assert "### Chapter 13: bAbI, test error per task" in report and "CMRC 2018 dev" in report
    assert "### Chapter 14: paragraph vectors on IMDB" in report and "### Chapter 14: skip-thought" in report
    assert "### Appendix A: the book's optimizer defaults" in report and "### Appendix B: smooth F1" in report
    assert json.loads((ws / "metrics" / "appA_checks.json").read_text())["checks_passed"] == 1.0
    for task in TASKS:
        assert f"| {task} |" in report or f"| {task}-ptb |" in report or f"| {task}-static |" in report \
            or f"| {task}-mr |" in report or f"| {task}-qa1-1k |" in report, task
    assert "### Chapter 12: BERT pre-trained here, fine-tuned" in report
    assert "## MR beside Kim (2014), table 2" in report and f"{EXPECT['folds']}-fold CV" in report
    if MIRROR is not None:  # the real files: MR's split as the book's, the UCI tables' 33% test splits
        prepared = json.loads((ws / "data" / "prepared" / "mr" / "info.json").read_text())
        assert prepared["examples"] == 10662 and prepared["train"] == 9662 and prepared["dev"] == 1000
        sizes = {"ch03_ionosphere_mlp": 116, "ch03_iris_mlp": 50, "ch03_boston_regression": 167}  # 33% of 351/150/506
        for task, n in sizes.items():
            assert json.loads((ws / "metrics" / f"{task}.json").read_text())["n_examples"] == n, task
    if MIRROR is not None:  # item 19 of issue 11: 1000 PTB tokens leave a few dozen words, none of WordSim's pairs
        g = json.loads((ws / "metrics" / "ch06_gensim_skipgram-ptb.json").read_text())
        assert g["vocabulary"] < 200 and g["test_wordsim353_spearman"] is None and g["test_wordsim353_coverage"] == 0
        assert "- **ch06_gensim_skipgram-ptb**: " in report and "have no value" in report
    assert f"max_epochs={EXPECT['epochs']}" in report
    har = json.loads((ws / "metrics" / "ch05_har_cnn1d.json").read_text())
    assert har["test_accuracy_n"] == 2 and "accuracy = " not in report.split("| ch05_har_cnn1d |")[1].split("\n")[0]
    assert f"{har['test_accuracy_mean']:.4f} ± {har['test_accuracy_std']:.4f} (n=2)" in report
    boston = json.loads((ws / "metrics" / "ch03_boston_regression.json").read_text())
    assert f"test_mse_svr_scaled = {boston['test_mse_svr_scaled']:.4f}" in report
    assert "(figures/ch03_sine_fit/eval/sine_fit.png)" in report  # inline, copied beside the report
    assert (ws / "reports" / "figures" / "ch03_sine_fit" / "eval" / "sine_fit.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((ws / "reports" / "runs" / "ch03_sine_fit.json").read_text())  # its run.json, kept beside it
    assert record["source"] == "models/ch03_sine_fit/run.json" and record["run"]["seed"] == 1
    summary = report.split("## Summary by chapter")[1].split("\n## ")[0]
    assert summary.count("| [Chapter ") == 13 and "| [Appendices A and B" in summary
    shown = json.loads(sh(["dvc", "metrics", "show", "--json"], ws, env).stdout)
    assert json.dumps(shown).count("ch07_kim_cnn.json") >= 1
    sh(["dvc", "plots", "show", "-o", str(ws / "dvc_plots")], ws, env)
    assert (ws / "dvc_plots" / "index.html").is_file()


def test_mlflow_has_one_run_per_task_with_everything(synthetic):
    import mlflow

    ws, env, tmp, files = synthetic
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("ch07_text_cnn")
    found = client.search_runs([exp.experiment_id])
    runs = {r.info.run_name.split(" · ")[0]: r for r in found}  # "<outputs' name> · <experiment> · <changes>"
    names = {n for n in runs if "/fold_" not in n}  # Kim's folds are child runs
    for r in found:  # the DVC experiment in the name, so that repeats tell apart
        assert "/fold_" in r.info.run_name or f" · {r.data.tags['dvc_exp_name']}" in r.info.run_name
    assert names == set(CH07) - {"ch07_kim2014"} | {f"ch07_kim2014-{v}" for v in E2E_KIM}
    folds = [r for n, r in runs.items() if n.startswith("ch07_kim2014-static/fold_")]
    assert len(folds) == EXPECT["folds"] and {r.data.tags["mlflow.parentRunId"] for r in folds} == {
        runs["ch07_kim2014-static"].info.run_id}
    ch02 = client.search_runs([client.get_experiment_by_name("ch02_basics").experiment_id])
    assert {r.info.run_name.split(" · ")[0] for r in ch02} == {t for t in TASKS if t.startswith("ch02_")}
    ch06 = client.search_runs([client.get_experiment_by_name("ch06_word2vec").experiment_id])
    assert {r.info.run_name.split(" · ")[0] for r in ch06} == {f"{t}-{c}" for t in TASKS if t.startswith("ch06_")
                                                               for c in E2E_CORPORA}
    glove = next(r for r in ch06 if r.info.run_name.startswith("ch06_glove-ptb · "))
    assert glove.data.tags["dvc_stage.embed"] == "embed@ch06_glove-ptb" and glove.data.tags["dataset"] == "ptb"
    assert "test_analogy_accuracy" in glove.data.metrics and "dvc_stage.evaluate_embedding" in glove.data.tags
    assert all(r.info.status == "FINISHED" for r in runs.values())
    kim = runs["ch07_kim_cnn"]
    assert kim.data.params["ch07_kim_cnn.filter_nums"] == "4"
    assert kim.data.params["run.max_epochs"] == str(EXPECT["epochs"])
    assert kim.data.params["run.seed"] == "1"
    assert 0.0 <= kim.data.metrics["test_accuracy"] <= 1.0 and "test_f1_pos" in kim.data.metrics
    steps = {m.step for m in client.get_metric_history(kim.info.run_id, "test_loss")}
    assert steps == set(range(1, EXPECT["epochs"] + 1))  # epochs from 1; the final result on the last epoch
    head = sh(["git", "rev-parse", "HEAD"], ws, env).stdout.strip()
    tags = kim.data.tags
    assert tags["git_commit"] == head and tags["dvc_stage.train"] == "train_text@ch07_kim_cnn"
    assert tags["dvc_stage.evaluate"] == "evaluate_text@ch07_kim_cnn"
    assert runs["ch07_kim2014-rand"].data.tags["dvc_stage.train"] == "train_kim2014@rand"
    assert runs["ch07_kim2014-rand"].data.tags["dataset"] == "mr"
    assert tags["dataset_sha256.rt-polarity.pos"] == sha256_file(files["rt-polarity.pos"]) and tags["seed"] == "1"
    artifacts = {a.path for a in client.list_artifacts(kim.info.run_id)}
    assert {"plots", "metrics", "model_summary.txt"} <= artifacts
    logged = {client.get_logged_model(o.model_id).name for o in client.get_run(kim.info.run_id).outputs.model_outputs}
    assert logged == {"model", "text_model"}  # MLflow Models: the keras flavor and the raw-text pyfunc
    assert names >= {"ch07_kim_cnn"} and client.get_model_version_by_alias("ch07_kim_cnn", "champion").run_id == (
        kim.info.run_id)
    assert "plots/confusion_matrix.png" in {a.path for a in client.list_artifacts(kim.info.run_id, "plots")}
    run_json = json.loads((ws / "models" / "ch07_kim_cnn" / "run.json").read_text())
    assert run_json["mlflow_run_id"] == kim.info.run_id


def test_changing_one_task_param_invalidates_only_that_task(synthetic):
    ws, env, _, _ = synthetic
    assert "up to date" in sh(["dvc", "status"], ws, env).stdout
    params = ws / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("  filters: 250\n", "  filters: 64\n", 1))  # ch07_cnn1d, the first
        status = json.loads(sh(["dvc", "status", "--json"], ws, env).stdout)
        # and the report, which reads every task's params (the CPU caps params.yaml's comments mark)
        assert set(status) == {"train_text@ch07_cnn1d", "evaluate_text@ch07_cnn1d", "report"}
        params.write_text(original.replace("  seed: 1\n", "  seed: 2\n"))
        status = json.loads(sh(["dvc", "status", "--json"], ws, env).stdout)
        text = {"ch07_kim_cnn", "ch07_cnn1d", "ch07_cnn_glove_2ch"}
        own = {"ch11_author_profiling", "ch11_title_generation"}  # stages of their own
        assert {s for s in status if s.startswith("train@")} == {f"train@{t}" for t in TASKS
                                                                if not t.startswith(("ch06_", "ch10_", "ch12_",
                                                                                     "ch13_", "ch14_"))
                                                                and t not in text | own | E2E_LEFT_OUT_TASKS
                                                                and t != "ch07_kim2014"}
        assert {"train_author_profiling", "train_title_generation", "train_bert_pretrain", "train_bert_finetune",
                "train_transformer_translation", "train_transformer_classifier@mr", "train_babi@memnn-qa1-1k",
                "train_babi@rnn-qa1-1k",
                "train_span_reader", "train_paragraph_vector", "train_skip_thought"} <= set(status)
        assert {s for s in status if s.startswith("train_translation@")} == {
            f"train_translation@{t}" for t in E2E_TRANSLATION}
        assert {s for s in status if s.startswith("train_text@")} == {f"train_text@{t}" for t in text}
        assert len([s for s in status if s.startswith("train_kim2014@")]) == len(E2E_KIM)
        assert {s for s in status if s.startswith("embed@")} == {f"embed@{t}-{c}" for t in TASKS
                                                                if t.startswith("ch06_") for c in E2E_CORPORA}
        assert not any(s.startswith(("download", "prepare")) for s in status)
    finally:
        params.write_text(original)


def ci_repro(ws: Path, env: dict[str, str], *args: str) -> tuple[dict[str, set[str]], str]:
    """``.ci/repro`` in ``ws``: the stages DVC's own output says ran, were restored from the run-cache and
    were unchanged, and the whole output."""
    out = sh([sys.executable, str(ws / ".ci" / "repro"), *args], ws, env).stdout
    found = {kind: set(re.findall(pattern, out, re.M)) for kind, pattern in (
        ("ran", r"^Running stage '([^']+)'"), ("restored", r"^Stage '([^']+)' is cached - skipping run"),
        ("unchanged", r"^Stage '([^']+)' didn't change, skipping"))}
    return found, out


def clone(ws: Path, dest: Path, env: dict[str, str]) -> Path:
    sh(["git", "clone", "-q", str(ws), str(dest)], dest.parent, env)
    return dest


def test_ci_repro_reruns_only_what_changed_and_restores_from_the_run_cache(synthetic, tmp_path):
    """Issue 13's CI: push the full run; a fresh clone pulls and runs nothing; a param change runs exactly its
    task's stages and the report; with the old value back, the run-cache restores the old outputs without
    training."""
    ws, env, _, _ = synthetic
    env = env | {"DLTM_DVC_REMOTE": str(tmp_path / "remote")}
    assert "up to date" in sh(["dvc", "status"], ws, env).stdout
    sh(["git", "add", "-A"], ws, env)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results"], ws, env)
    sh(["dvc", "remote", "add", "--local", "--force", "--default", "env", env["DLTM_DVC_REMOTE"]], ws, env)
    sh(["dvc", "push", "--run-cache"], ws, env)  # the full run's outputs and run-cache

    first = clone(ws, tmp_path / "first", env)
    ran, out = ci_repro(first, env)
    assert ran["ran"] == ran["restored"] == set(), out[-3000:]
    assert "0 ran, 0 restored from the run-cache" in out

    params = first / "params.yaml"
    original = params.read_text()
    params.write_text(original.replace("  passes: 500\n", "  passes: 400\n", 1))  # ch02_perceptron_batch
    ran, out = ci_repro(first, env)  # and pushes what ran
    assert ran["ran"] == {"train@ch02_perceptron_batch", "evaluate@ch02_perceptron_batch", "report"}, out[-3000:]
    assert ran["restored"] == set() and "metrics/ch02_perceptron_batch.json" in out  # the metrics diff, markdown

    params.write_text(original)  # the old value back: its outputs come from the run-cache, not from training
    ran, out = ci_repro(first, env, "--no-push")
    # the trained model from the full run's run-cache on the remote; a metrics file is committed to git
    # (cache: false), its content not pushed, so evaluate may run again (seconds); the report does
    assert "train@ch02_perceptron_batch" in ran["restored"], out[-3000:]
    assert ran["ran"] <= {"evaluate@ch02_perceptron_batch", "report"}, out[-3000:]
    assert not sh(["git", "status", "--porcelain", "metrics", "dvc.lock"], first, env).stdout.strip()


def test_a_change_every_train_stage_reads_marks_every_result_stale_without_data(synthetic, tmp_path):
    """Issue 13: in a clone that pulled nothing, `stages.report --stale` lists the stages dvc.lock no longer
    matches and marks their rows in reports/results.md; missing data alone is not stale."""
    ws, env, _, _ = synthetic
    if sh(["git", "status", "--porcelain", "dvc.lock"], ws, env).stdout.strip():
        sh(["git", "add", "-A"], ws, env)
        sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results"], ws, env)
    bare = clone(ws, tmp_path / "bare", env)
    report = (bare / "reports" / "results.md").read_text()
    out = sh([sys.executable, "-m", "stages.report", "--stale"], bare, env).stdout
    assert "no stale results" in out and (bare / "reports" / "results.md").read_text() == report

    with open(bare / "dltm" / "training.py", "a") as f:
        f.write("\n# a change every train stage depends on\n")
    out = sh([sys.executable, "-m", "stages.report", "--stale"], bare, env).stdout
    stale = set(re.findall(r"^stale: (\S+): ", out, re.M))
    from dvc.repo import Repo

    with contextlib.chdir(bare), Repo(".") as repo:  # stage names as DVC gives them in the repository
        readers = {s.addressing for s in repo.index.stages if "dltm/training.py" in {str(d.def_path) for d in s.deps}}
    assert {"train@ch02_xor", "train_text@ch07_kim_cnn", "train_kim2014@rand"} <= readers
    assert readers | {"report"} <= stale  # the readers, and what is downstream of them
    assert not any(s.startswith(("download@", "prepare")) for s in stale)  # nothing upstream
    with contextlib.chdir(bare), Repo(".") as repo:  # and what reads a reader's outputs (its evaluate stage)
        outs = {str(o.def_path) for st in repo.index.stages if st.addressing in readers for o in st.outs}
        downstream = {st.addressing for st in repo.index.stages if {str(d.def_path) for d in st.deps} & outs}
    assert all(s in readers | downstream or s == "report" for s in stale), stale - readers - downstream
    marked = (bare / "reports" / "results.md").read_text()
    assert "| ch09_lstm_sentiment | " in marked and "(stale) |" in marked.split("| ch09_lstm_sentiment |")[1][:200]
    assert "## Stale results" in marked and "- `train@ch09_lstm_sentiment`: dltm/training.py modified" in marked


def test_unreachable_tracking_server_still_completes_training(synthetic):
    ws, env, _, _ = synthetic
    bad = env | {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    proc = sh([sys.executable, "-m", "stages.train", "ch07_simple_classifier"], ws, bad)
    assert "warning: MLflow: nothing was logged for ch07_simple_classifier" in proc.stderr
    run_json = json.loads((ws / "models" / "ch07_simple_classifier" / "run.json").read_text())
    assert run_json["mlflow_run_id"] is None
    assert (ws / "models" / "ch07_simple_classifier" / "model.keras").is_file()
    sh([sys.executable, "-m", "stages.evaluate", "ch07_simple_classifier"], ws, bad)
