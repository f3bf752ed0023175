"""The Blog Authorship Corpus (Schler et al. 2006) for author profiling (chapter 11.4; issue 16).

The book's PAN 2013 sample is not public, so chapter 11's ``ch11_author_profiling`` predicts a blogger's age
group and gender from the Blog Authorship Corpus instead: one file per blogger,
``blogs/<id>.<gender>.<age>.<industry>.<sign>.xml``, holding ``<date>``/``<post>`` elements (not well-formed
XML: raw ``&``, CRLF line ends, some files not UTF-8). The corpus has three age groups with a gap between them,
13-17, 23-27 and 33-48 (Schler et al.'s "10s", "20s", "30s").

``prepare@authors`` (:func:`prepare_authors`) keeps ``per_cell`` bloggers of each gender x age-group cell, those
whose file names have the smallest sha256 (the rule the offline mirror's 1,500-blogger subset was drawn by,
so the full ``blogs.zip`` and the mirror's subset give the same bloggers), and holds out ``test_per_cell`` of
each cell, drawn at random: the split is **by blogger**, no blogger is on both sides. Each blogger is one
document: their posts in file order, joined by newlines.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dltm import params as P
from dltm.cli import MissingOutputError, UserError
from dltm.io import atomic_path, write_json
from dltm.params import ParamError, require

AGE_GROUPS = {"10s": (13, 17), "20s": (23, 27), "30s": (33, 48)}
"""Schler et al.'s age groups, name -> (youngest, oldest), in years."""
GENDERS = ("female", "male")
PARAMS = {"per_cell": P.POSITIVE_INT, "test_per_cell": P.POSITIVE_INT, "split_seed": P.Int()}
"""What ``prepare.authors`` in params.yaml accepts (dltm.params.validate)."""
FILE_NAME = re.compile(r"^(\d+)\.(male|female)\.(\d+)\.([^.]+)\.([^.]+)\.xml$")
_POST = re.compile(r"<post>(.*?)</post>", re.DOTALL | re.IGNORECASE)
_SPACE = re.compile(r"\s+")


class BlogFileError(UserError, ValueError):
    """A blog file whose name or content is not the corpus' format (a one-line error, naming the file)."""


@dataclass(frozen=True)
class Blogger:
    """One blogger file's name, parsed: ``<id>.<gender>.<age>.<industry>.<sign>.xml``."""

    file: str
    blogger: str
    gender: str
    age: int
    industry: str
    sign: str

    @property
    def age_group(self) -> str:
        return age_group(self.age)


def age_group(age: int) -> str:
    """The age group ("10s", "20s", "30s") of an age in years. Raises BlogFileError for an age in no group (the
    corpus has none: its groups leave out 18-22 and 28-32)."""
    for name, (lo, hi) in AGE_GROUPS.items():
        if lo <= age <= hi:
            return name
    raise BlogFileError(f"age {age} is in no age group of the corpus ({AGE_GROUPS})")


def parse_name(name: str) -> Blogger:
    """The fields of a blogger file's name. Raises BlogFileError naming the file when it does not match."""
    m = FILE_NAME.match(Path(name).name)
    if not m:
        raise BlogFileError(f"{name}: not a blog file name '<id>.<gender>.<age>.<industry>.<sign>.xml'")
    return Blogger(Path(name).name, m[1], m[2], int(m[3]), m[4], m[5])


def read_posts(path: str | os.PathLike) -> list[str]:
    """The posts of a blogger file, in file order, each with HTML entities decoded and its whitespace runs
    collapsed to one space; empty posts left out. A file is read as UTF-8, or as Latin-1 where it is not UTF-8
    (some of the corpus' files). Raises BlogFileError, naming the file, for a file with no ``<post>``."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    posts = [_SPACE.sub(" ", html.unescape(p)).strip() for p in _POST.findall(text)]
    if not _POST.search(text):
        raise BlogFileError(f"{path}: no <post> element: not a blog file of the corpus")
    return [p for p in posts if p]


def select(bloggers: list[Blogger], per_cell: int) -> list[Blogger]:
    """``per_cell`` bloggers of each gender x age-group cell: those whose file names have the smallest sha256
    hex digest (the offline mirror's rule), sorted by file name. Raises ParamError when a cell has fewer."""
    cells: dict[tuple[str, str], list[Blogger]] = {}
    for b in bloggers:
        cells.setdefault((b.gender, b.age_group), []).append(b)
    chosen: list[Blogger] = []
    for gender in GENDERS:
        for group in AGE_GROUPS:
            cell = cells.get((gender, group), [])
            if len(cell) < per_cell:
                raise ParamError(f"params.yaml: prepare.authors.per_cell is {per_cell}, but the corpus has "
                                 f"{len(cell)} {gender} bloggers in their {group}")
            cell.sort(key=lambda b: hashlib.sha256(b.file.encode()).hexdigest())
            chosen += cell[:per_cell]
    return sorted(chosen, key=lambda b: b.file)


def split_by_blogger(bloggers: list[Blogger], test_per_cell: int, seed: int) -> tuple[list[Blogger], list[Blogger]]:
    """(train, test): ``test_per_cell`` bloggers of each gender x age-group cell drawn at random
    (``numpy.random.default_rng(seed)``, cells in a fixed order) for the test split, the rest for training; each
    list sorted by file name. Raises ParamError when a cell would have no blogger left to train on."""
    rng = np.random.default_rng(seed)
    test: list[Blogger] = []
    for gender in GENDERS:
        for group in AGE_GROUPS:
            cell = sorted((b for b in bloggers if (b.gender, b.age_group) == (gender, group)), key=lambda b: b.file)
            if not 0 < test_per_cell < len(cell):
                raise ParamError(f"params.yaml: prepare.authors.test_per_cell must be between 1 and "
                                 f"{len(cell) - 1} ({len(cell)} {gender} bloggers in their {group}), got "
                                 f"{test_per_cell}")
            test += [cell[i] for i in rng.choice(len(cell), size=test_per_cell, replace=False)]
    held = {b.file for b in test}
    return [b for b in bloggers if b.file not in held], sorted(test, key=lambda b: b.file)


def prepare_authors(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any]) -> dict[str, Any]:
    """``prepare@authors``: the bloggers of :func:`select`, split by :func:`split_by_blogger`, as ``train.jsonl``
    and ``test.jsonl`` (one blogger a line: blogger, gender, age, age_group, industry, sign, posts, text) and
    info.json. Raises MissingOutputError when ``raw_dir/blogs`` is missing, BlogFileError for a file that is not
    the corpus' format."""
    where = "prepare.authors"
    per_cell, test_per_cell = require(params, "per_cell", int, where), require(params, "test_per_cell", int, where)
    seed = require(params, "split_seed", int, where)
    folder = Path(raw_dir) / "blogs"
    if not folder.is_dir():
        raise MissingOutputError(f"{folder}: missing; run `dvc repro download@authors`")
    bloggers = [parse_name(p.name) for p in sorted(folder.glob("*.xml"))]
    train, test = split_by_blogger(select(bloggers, per_cell), test_per_cell, seed)
    info: dict[str, Any] = {"dataset": "authors", "bloggers_in_corpus": len(bloggers), "train": len(train),
                            "test": len(test)}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for name, group in (("train", train), ("test", test)):
            words = 0
            with open(tmp / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as f:
                for b in group:
                    posts = read_posts(folder / b.file)
                    text = "\n".join(posts)
                    words += len(text.split())
                    f.write(json.dumps({"blogger": b.blogger, "gender": b.gender, "age": b.age,
                                        "age_group": b.age_group, "industry": b.industry, "sign": b.sign,
                                        "posts": len(posts), "text": text}, ensure_ascii=False) + "\n")
            info[f"{name}_words"] = words
            info[f"{name}_cells"] = dict(sorted(Counter(f"{b.gender}/{b.age_group}" for b in group).items()))
        write_json(tmp / "info.json", info)
    return info


def load_authors(prepared_dir: str | os.PathLike, split: str) -> list[dict[str, Any]]:
    """The bloggers of ``split`` (train or test) of ``prepare@authors``, one dict each (see
    :func:`prepare_authors`). Raises MissingOutputError when it was not prepared."""
    path = Path(prepared_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro prepare_authors` first")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]
