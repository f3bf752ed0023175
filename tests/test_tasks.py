import yaml

from dltm import tasks
from dltm.params import load

from .conftest import REPO

# tasks the issues add beyond TASKS.md's ids, with where they come from
BEYOND_TASKS_MD = {
    "appA_checks": "issue 19: TASKS.md's appendix A (initialisers, activations, losses, optimizers, layers)",
    "appB_smooth": "issue 19: TASKS.md's appendix B (logsumexp, softmax, soft-argmax, smooth F1)",
    "ch04_optimizer_comparison": "TASKS.md ch. 4: 'an optimizer-comparison plot of loss curves'",
    "ch06_gensim_skipgram": "TASKS.md ch. 6: 'Beyond the book's Keras model: gensim Word2Vec (skip-gram ...'",
    "ch06_gensim_cbow": "TASKS.md ch. 6: '... and CBOW, 6.2.1-6.2.2)'",
    "ch06_glove": "TASKS.md ch. 6: '... and GloVe built from the same corpus'",
    "ch07_cnn1d_imdb": "issue 5: ch07_cnn1d on IMDB (TASKS.md ch. 7: the imdb_cnn example)",
    "ch07_kim2014": "TASKS.md ch. 7: 'Variants (Kim 2014): rand, static, non-static, multichannel ... Kim's protocol'",
    "ch09_rnn_comparison": "TASKS.md ch. 9: 'Compare LSTM, GRU, BiLSTM, peephole and the chapter-7 CNNs on the "
                           "same split'",
    "ch10_seq2seq_char_fra": "issue 15: 'fra ... as a second language pair for the char model'",
    "ch10_seq2seq_word": "issue 15: 'ch10_seq2seq_word: word level on both sides'",
    "ch10_seq2seq_attention": "issue 15: 'ch10_seq2seq_attention: the word-level model with an attention decoder'",
    "ch10_gru_cho": "issue 15: 'ch10_gru_cho: Cho et al. (2014)'s GRU encoder-decoder of 10.1'",
    "ch12_transformer_classifier": "issue 17: 'keras-io's \"text classification with Transformer\" ... on IMDB ... "
                                   "and on MR's holdout'",
    "ch12_bert_pretrain": "issue 17: 'a small BERT ... pre-trained by masked language modelling'",
    "ch12_bert_finetune": "issue 17: 'the pre-trained encoder fine-tuned on IMDB and on MR'",
    "ch12_transformer_translation": "issue 17: 'a Transformer encoder-decoder on chapter 10's English->Chinese "
                                    "data'",
    "ch13_babi_memnn": "issue 18: 'an end-to-end memory network (Sukhbaatar et al. 2015 ...) on bAbI'",
    "ch13_babi_rnn": "issue 18: 'the recurrent baseline (story and question each encoded by an LSTM/GRU)'",
    "ch13_span_reader": "issue 18: 'extractive reading comprehension on CMRC 2018: a BiDAF-style model'",
}

# tasks that read a dataset's raw files although it has a prepare stage (made for other tasks), and why
READS_RAW = {
    "ch08_ptb_lm": "Zaremba's reader: 10k-word vocabulary with <eos> at line ends; prepare@ptb is chapter 6's",
}


def test_tasks_params_and_dvc_yaml_agree():
    registry = tasks.all_tasks()
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    in_dvc, downloads, prepared, embeddings, corpora, text_tasks = {}, [], [], [], [], {}
    translation = {}
    for var in dvc["vars"]:
        in_dvc.update(var.get("tasks", {}))
        text_tasks.update(var.get("text_tasks", {}))
        translation.update(var.get("translation_tasks", {}))
        downloads += var.get("downloads", [])
        prepared += var.get("prepared", [])
        embeddings += var.get("embeddings", [])
        corpora += var.get("corpora", [])
    # chapter 7's MR classifiers have stages of their own (train_text@, and train_kim2014@ for Kim's variants)
    kim = [v for var in dvc["vars"] for v in var.get("kim_variants", [])]
    assert kim == list(registry["ch07_kim2014"].variants) and not registry["ch07_kim2014"].variants_are_datasets
    # a task with several models on data of its own has its stages by name (train_author_profiling ...)
    stages = tasks._stages_in(REPO / "dvc.yaml")
    own = {t for (t, _, _), name in stages.items() if "@" not in name}
    assert own == {"ch11_author_profiling", "ch11_title_generation", "ch12_bert_pretrain", "ch12_bert_finetune",
                   "ch12_transformer_translation", "ch13_span_reader", "ch14_paragraph_vector",
                   "ch14_skip_thought"}
    # a task whose variants are datasets of its own (12.1: imdb, mr) has a foreach stage over them; chapters
    # 4-5's MNIST tasks run without a variant (MNIST) and with --variant fashion_mnist (train_images@)
    by_variant = {t for (t, v, _) in stages if v} - set(embeddings) - {"ch07_kim2014"}
    images = {"ch04_mnist_softmax", "ch04_mnist_mlp", "ch04_optimizer_comparison", "ch05_mnist_cnn"}
    assert by_variant == {"ch12_transformer_classifier", "ch13_babi_memnn", "ch13_babi_rnn", *images}
    assert all(registry[t].variants == (None, "fashion_mnist") and registry[t].dataset == "mnist" for t in images)
    assert {"mnist", "fashion_mnist"} <= set(downloads)
    for t in by_variant:
        assert {(v, step) for (u, v, step) in stages if u == t} == {
            (v, step) for v in registry[t].variants for step in ("train", "evaluate")}
    # chapter 13's bAbI matrix runs each model on each run that prepare_babi parses: all with files offline
    assert load(REPO / "params.yaml")["prepare"]["babi"]["tasks"] == list(registry["ch13_babi_memnn"].variants)
    stages_of = (set(in_dvc) | set(embeddings) | set(text_tasks) | set(translation) | {"ch07_kim2014"} | own
                 | by_variant)
    assert images <= set(in_dvc)
    assert stages_of == set(registry) and not set(in_dvc) & set(embeddings) and not set(in_dvc) & set(text_tasks)
    for task_id, item in translation.items():  # chapter 10: each reads its prepared pairs (the held-out set)
        task = registry[task_id]
        assert task.chapter == "pipelines.ch10_seq2seq" and item["data"] == task.dataset in prepared
        assert task.dataset in downloads and task_id in load(REPO / "params.yaml")
    for task_id, item in text_tasks.items():
        task = registry[task_id]
        assert task.chapter == "pipelines.ch07_text_cnn" and task_id in load(REPO / "params.yaml")
        assert item["vectors"] == (f"data/raw/{task.dataset}" if task.dataset != "mr" else
                                   "pipelines/ch07_text_cnn.py")
    for task_id in embeddings:  # the matrix stages: every embedding on every corpus
        task = registry[task_id]
        assert task.outputs == "data/embeddings" and set(task.variants) == set(corpora)
        # each corpus has its prepare stage: prepare@<corpus>, or prepare_imdb_text (from data/raw/imdb)
        assert set(corpora) - {"imdb_text"} <= set(prepared) and task_id in load(REPO / "params.yaml")
        assert "prepare_imdb_text" in dvc["stages"] and "imdb" in downloads
    registry = {k: v for k, v in registry.items() if k in in_dvc}
    params = load(REPO / "params.yaml")
    for task_id, task in registry.items():
        assert task_id in params, f"params.yaml has no section {task_id}"
        assert in_dvc[task_id]["module"] == task.experiment
        if task.dataset:  # tokenized datasets have a prepare stage; the others are read raw
            stage = "prepared" if task.dataset in prepared and task_id not in READS_RAW else "raw"
            assert in_dvc[task_id]["data"] == f"data/{stage}/{task.dataset}"
            assert task.dataset in downloads
        assert task.section and task.metric and task.reference is not None


def test_task_ids_are_those_of_tasks_md():
    md = REPO.parent / "shared" / "book" / "TASKS.md"
    if md.is_file():
        text = md.read_text(encoding="utf-8")
        for task_id in tasks.all_tasks():
            assert f"`{task_id}`" in text or task_id in BEYOND_TASKS_MD


def test_dvc_stage_names_real_stages():
    """Issue 11, item 8: the stage a tag or a hint names is one `dvc repro` accepts."""
    import subprocess
    import sys
    from pathlib import Path

    dvc = Path(sys.executable).parent / "dvc"
    listed = subprocess.run([str(dvc), "stage", "list", "--name-only"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.split()
    names = []
    for task in tasks.all_tasks().values():
        for variant in task.variants or (None,):
            for kind in ("train", "evaluate"):
                name = tasks.dvc_stage(task.id, variant, kind, root=REPO)
                assert name in listed, (task.id, variant, kind, name)
                names.append(name)
    assert len(set(names)) == len(names)  # one stage per task, variant and kind
    assert tasks.dvc_stage("ch07_cnn1d", root=REPO) == "train_text@ch07_cnn1d"
    assert tasks.dvc_stage("ch07_kim2014", "rand", "evaluate", root=REPO) == "evaluate_kim2014@rand"
    assert tasks.dvc_stage("ch06_glove", "ptb", root=REPO) == "embed@ch06_glove-ptb"
    assert tasks.dvc_stage("ch09_custom_cell", root=REPO) == "train@ch09_custom_cell"


def test_provenance_tags_name_real_stages(monkeypatch):
    from dltm import datasets
    from dltm.params import RunSettings, load
    from stages.train import provenance_tags

    monkeypatch.setattr(datasets, "checksums", lambda dataset_id: {"file": "0" * 64})  # no download needed

    run = RunSettings.from_params(load(REPO / "params.yaml"))
    for task_id, variant, stage, expected in [
        ("ch07_cnn1d", None, "train", "train_text@ch07_cnn1d"),
        ("ch07_kim2014", "rand", "evaluate", "evaluate_kim2014@rand"),
        ("ch02_xor", None, "train", "train@ch02_xor"),
        ("ch06_glove", "ptb", "evaluate_embedding", "evaluate_embedding@ch06_glove-ptb"),
        ("ch06_glove", "ptb", "embed", "embed@ch06_glove-ptb"),
    ]:
        tags = provenance_tags(tasks.get(task_id), run, stage, variant)
        assert tags[f"dvc_stage.{stage}"] == expected
