"""Shared fixtures: the repository root, the dataset mirror (when present), synthetic MR files."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def one_line_error(main, argv, capsys) -> str:
    """Run ``main(argv)`` as its ``__main__`` does; assert exit status 2 and one line on stderr; return it."""
    from dltm import cli

    capsys.readouterr()
    assert cli.run(main, argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    return lines[0]


def find_mirror() -> Path | None:
    env = os.environ.get("DLTM_DATA_MIRROR")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "datasets", REPO.parent.parent / "shared"
                                                 / "datasets"]:
        if (cand / "mr" / "rt-polarity.pos").is_file():
            return cand
    return None


MIRROR = find_mirror()
needs_mirror = pytest.mark.skipif(
    MIRROR is None, reason="no dataset mirror: set DLTM_DATA_MIRROR or place it at ../shared/datasets")

POS_WORDS = "good great wonderful moving brilliant charming funny superb fresh delightful".split()
NEG_WORDS = "bad dull boring awful flat tedious weak stale mess lifeless".split()
FILLER = "the film movie a story is it 's with and of this that director cast".split()


def synthetic_mr(folder: Path, n_per_class: int = 150, seed: int = 0) -> dict[str, Path]:
    """rt-polarity.pos/.neg in the real format: cp1252 bytes (with non-ASCII), one sentence per line."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, words in (("rt-polarity.pos", POS_WORDS), ("rt-polarity.neg", NEG_WORDS)):
        lines = []
        for i in range(n_per_class):
            toks = rng.sample(FILLER, 5) + rng.sample(words, 2)
            rng.shuffle(toks)
            s = " ".join(toks)
            if i % 7 == 0:
                s += " , isn't it caf\u00e9 \u2019 ( really ) ?"
            lines.append(s + " . ")
        path = folder / name
        path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
        out[name] = path
    return out


# ---- chapters 3-5: the book's UCI tables, MNIST idx files, the UCI HAR folder, all in their real formats ----


def synthetic_tables(book: Path, seed: int = 0) -> dict[str, Path]:
    """ionosphere.txt, iris.txt, housing.txt as the book's companion files: headerless CSV, label last."""
    import numpy as np

    rng = np.random.default_rng(seed)
    book.mkdir(parents=True, exist_ok=True)
    out = {}
    y = rng.integers(0, 2, 90)
    X = rng.normal(size=(90, 34)) + y[:, None] * 1.5
    out["ionosphere.txt"] = "\n".join(",".join([*(f"{v:.5f}" for v in row), "g" if t else "b"])
                                      for row, t in zip(X, y, strict=True)) + "\n"
    names = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]
    y = np.repeat([0, 1, 2], 20)
    X = rng.normal(size=(60, 4)) * 0.3 + y[:, None] * 1.2 + 1.0
    out["iris.txt"] = "\n".join(",".join([*(f"{v:.1f}" for v in row), names[t]]) for row, t in zip(X, y, strict=True))
    X = rng.uniform(0, 10, size=(80, 13))
    medv = X @ rng.uniform(0, 1, 13) + rng.normal(0, 0.5, 80)
    out["housing.txt"] = "\n".join(",".join(f"{v:.4f}" for v in [*row, t]) for row, t in zip(X, medv, strict=True))
    paths = {}
    for name, text in out.items():
        (book / name).write_text(text)
        paths[name] = book / name
    return paths


def write_idx(path: Path, array) -> Path:
    """An idx file as MNIST ships it: big-endian header, uint8 data, gzipped."""
    import gzip

    import numpy as np

    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes(), mtime=0))
    return path


def synthetic_mnist(folder: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> dict[str, Path]:
    """The four MNIST idx.gz files; each digit is a bright bar at a class-specific row, plus noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 40, (n, 28, 28))
        for i, d in enumerate(labels):
            images[i, 2 + 2 * d: 4 + 2 * d, 4:24] = 250
        out[f"{prefix}-images-idx3-ubyte.gz"] = write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        out[f"{prefix}-labels-idx1-ubyte.gz"] = write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return out


def synthetic_har(root: Path, n_train: int = 120, n_test: int = 60, seed: int = 0, zip_to: Path | None = None) -> Path:
    """The 'UCI HAR Dataset' layout: per split, y_<split>.txt (1-6) and nine 'Inertial Signals' files of 128
    space-separated floats per window. Each class is a sine of its own frequency on its own channel.
    With ``zip_to``, also packs the folder as the canonical zip does."""
    import zipfile

    import numpy as np

    from dltm.data import HAR_SIGNALS

    rng = np.random.default_rng(seed)
    base = root / "UCI HAR Dataset"
    t = np.arange(128)
    for split, n in (("train", n_train), ("test", n_test)):
        (base / split / "Inertial Signals").mkdir(parents=True, exist_ok=True)
        y = rng.integers(1, 7, n)
        x = rng.normal(0, 0.3, (n, 128, 9))
        for i, c in enumerate(y):
            x[i, :, c % 9] += np.sin(t * c * 0.2)
        (base / split / f"y_{split}.txt").write_text("\n".join(str(v) for v in y) + "\n")
        for k, name in enumerate(HAR_SIGNALS):
            rows = ["  " + " ".join(f"{v: .7e}" for v in x[i, :, k]) for i in range(n)]
            (base / split / "Inertial Signals" / f"{name}_{split}.txt").write_text("\n".join(rows) + "\n")
    (base / "activity_labels.txt").write_text("1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n4 SITTING\n"
                                              "5 STANDING\n6 LAYING\n")
    if zip_to is not None:
        zip_to.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zip_to, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(base.rglob("*")):
                z.write(p, p.relative_to(root).as_posix())
    return base


W2V_TOPICS = [["king", "queen", "man", "woman", "prince", "princess"], ["paris", "france", "rome", "italy",
               "berlin", "germany"], ["walk", "walking", "swim", "swimming", "run", "running"]]


def synthetic_corpus(seed: int = 0, sentences: int = 400) -> str:
    """Words that co-occur by topic, with filler, in PTB's format (one sentence per line, <unk>, N)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(sentences):
        topic = rng.choice(W2V_TOPICS)
        words = rng.choices(topic, k=5) + rng.sample(FILLER, 3) + ["<unk>", "N"]
        rng.shuffle(words)
        lines.append(" " + " ".join(words) + " ")
    return "\n".join(lines) + "\n"


def synthetic_questions() -> str:
    return (": family\nking queen prince princess\nman woman prince princess\n"
            ": capital-common-countries\nparis france rome italy\nberlin germany paris france\n"
            ": gram5-present-participle\nwalk walking swim swimming\nrun running walk walking\n")


def write_corpora(raw: Path) -> dict[str, Path]:
    """data/raw/{ptb,text8,analogies} with synthetic contents in the real layouts."""
    for d in ("ptb", "text8", "analogies"):
        (raw / d).mkdir(parents=True, exist_ok=True)
    out = {}
    for split, seed in (("train", 0), ("valid", 1), ("test", 2)):
        out[f"ptb.{split}.txt"] = raw / "ptb" / f"ptb.{split}.txt"
        out[f"ptb.{split}.txt"].write_text(synthetic_corpus(seed))
    out["text8"] = raw / "text8" / "text8"
    out["text8"].write_text(" ".join(synthetic_corpus(3).replace("<unk>", "").split()))
    out["questions-words.txt"] = raw / "analogies" / "questions-words.txt"
    out["questions-words.txt"].write_text(synthetic_questions())
    return out


def write_params(workdir: Path, overrides: dict) -> None:
    """``workdir/params.yaml``: the repository's params.yaml with ``overrides`` ({"section.key": value})."""
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for dotted, value in overrides.items():
        *path, key = dotted.split(".")
        node = params
        for p in path:
            node = node[p]
        node[key] = value
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def run_task(workdir: Path, monkeypatch, task: str, overrides: dict | None = None,
             variant: str | None = None) -> dict:
    """Run ``stages.train`` then ``stages.evaluate`` for one task in ``workdir`` (which holds data/raw/...),
    with the repository's params.yaml updated by ``overrides`` ({"section.key": value}); returns the metrics."""
    import json

    write_params(workdir, overrides or {})
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    from stages import evaluate, train

    args = [task] + (["--variant", variant] if variant else [])
    assert train.main(args) == 0
    assert evaluate.main(args) == 0
    return json.loads((workdir / "metrics" / f"{task}{'-' + variant if variant else ''}.json").read_text())


def prepared_mr(root: Path, n_per_class: int = 60) -> Path:
    """<root>/data/prepared/mr from a synthetic MR (3 folds, a dev set of 20): what chapters 6 and 7 read."""
    from dltm.data import prepare_mr

    synthetic_mr(root / "data" / "raw" / "mr", n_per_class=n_per_class)
    out = root / "data" / "prepared" / "mr"
    prepare_mr(root / "data" / "raw" / "mr", out,
               {"encoding": "cp1252", "split_seed": 10, "dev_size": 20, "cv_folds": 3, "cv_seed": 10})
    return out


def synthetic_imdb(raw: Path, n_per_class: int = 40, seed: int = 0) -> Path:
    """aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, UTF-8 with HTML line breaks, as the real archive."""
    rng = random.Random(seed)
    for split in ("train", "test"):
        for name, words, ratings in (("pos", POS_WORDS, (7, 10)), ("neg", NEG_WORDS, (1, 4))):
            folder = raw / "aclImdb" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                toks = rng.choices(FILLER, k=30) + rng.choices(words, k=4)
                rng.shuffle(toks)
                text = (" ".join(toks[:9]) + ". " + " ".join(toks[9:17]) + ".<br /><br />" + " ".join(toks[17:])
                        + " \u2014 caf\u00e9.")  # three sentences: chapter 14's skip-thought needs runs of them
                (folder / f"{i}_{rng.randint(*ratings)}.txt").write_text(text, encoding="utf-8")
    (raw / "aclImdb" / "README").write_text("synthetic\n")
    (raw / "aclImdb" / "imdb.vocab").write_text("\n".join(FILLER) + "\n")
    return raw


FIRST = ("test_pipeline.py",)
"""Test files collected first: the end-to-end run (about 20 minutes) starts at once on one of `make test`'s two
processes (pytest-xdist hands out whole files in collection order with `--no-loadscope-reorder`, as `make test`
runs it; its default reorder, most tests first, started this one about 7 minutes late), and every other file runs
beside it."""


LAST = ("test_zz_jax_suite.py",)
"""Collected last: the JAX pass (a child pytest), on the second process while the end-to-end run goes on."""


def pytest_collection_modifyitems(session, config, items):
    # a stable sort: the rest keep their order
    items.sort(key=lambda item: (item.path.name not in FIRST) + (item.path.name in LAST))


PEOPLE = ["mary", "john", "sandra", "daniel"]
PLACES = ["kitchen", "garden", "office", "hallway", "bedroom", "bathroom"]


def synthetic_babi(raw: Path, n_stories: int, seed: int, split: str) -> None:
    """bAbI task 1's format: people move, "Where is X?" asks where X went last (one supporting fact)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_stories):
        n, where = 0, {}
        for _ in range(5):
            for _ in range(2):
                n += 1
                who, place = rng.choice(PEOPLE), rng.choice(PLACES)
                where[who] = (place, n)
                lines.append(f"{n} {who.capitalize()} moved to the {place}.")
            n += 1
            who = rng.choice(sorted(where))
            lines.append(f"{n} Where is {who.capitalize()}? \t{where[who][0]}\t{where[who][1]}")
    folder = raw / "tasks_1-20_v1-2" / "en"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"qa1_single-supporting-fact_{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def synthetic_babi_tree(raw: Path, n_train: int = 150, n_test: int = 40) -> dict[str, Path]:
    """Every file of the bAbI download under ``raw`` (tasks_1-20_v1-2/...): task 1 at 1k synthetic
    (:func:`synthetic_babi`), every other file one tiny story. Returns {registry file: path}."""
    from dltm import datasets

    synthetic_babi(raw, n_train, 0, "train")
    synthetic_babi(raw, n_test, 1, "test")
    out = {}
    for rel in datasets.get("babi").files:
        path = raw / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("1 Mary moved to the kitchen.\n2 Where is Mary? \tkitchen\t1\n", encoding="utf-8")
        out[rel] = path
    return out


COLORS = ["红色", "蓝色", "绿色", "黄色", "白色", "黑色"]
NAMES = ["小明", "小红", "老王", "张三", "李四"]


def synthetic_cmrc(path: Path, n: int, seed: int) -> None:
    """CMRC's SQuAD-style layout: three facts "X的颜色是C。" per passage, a question about one of them."""
    rng = random.Random(seed)
    data = []
    for k in range(n):
        names, colors = rng.sample(NAMES, 3), rng.sample(COLORS, 3)
        context = "".join(f"{a}的颜色是{c}。" for a, c in zip(names, colors, strict=True))
        i = rng.randrange(3)
        start = context.index(f"{names[i]}的颜色是") + len(f"{names[i]}的颜色是")
        data.append({"id": f"a{k}", "title": "", "paragraphs": [{"id": f"p{k}", "context": context, "qas": [
            {"id": f"{seed}-{k}", "question": f"{names[i]}的颜色是什么？",
             "answers": [{"text": colors[i], "answer_start": start}] * 3}]}]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "v1.0", "data": data}, ensure_ascii=False), encoding="utf-8")
