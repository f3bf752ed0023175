"""bAbI question answering (Weston et al. 2015, "Towards AI-Complete Question Answering"), for chapter 13.

A bAbI file is a run of stories. Each line is ``N text``; N restarts at 1 with each story. A statement line is
a sentence of the story; a question line is ``N question<TAB>answer<TAB>supporting line numbers``, asked about
the statements before it in its story. :func:`parse_babi` reads a file into :class:`Story` objects, checking
that format line by line (a bad line is an error naming the file and the line).

The ``prepare@babi`` stage (``python -m stages.prepare babi``, params ``prepare.babi``) writes one folder per
run of ``prepare.babi.tasks`` into data/prepared/babi/: ``qa1-1k/`` holds task 1 with the 1k training set,
``qa1-10k/`` with the 10k set (the test set is the same 1,000 questions in both). Each holds ``train.json`` and
``test.json`` (stories as lists of token lists, each question with the number of statements it follows, its
answer and its supporting facts as statement indices) and ``info.json``. Tokens are lower-cased words; the
full stops and question marks are dropped (they end every sentence and carry nothing).

:func:`vectorize` turns stories into the arrays chapter 13's models read: for each question, the last
``memory_size`` statements before it as word ids (the memory), the question's ids and the answer's class.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dltm import params as P
from dltm.cli import MissingOutputError, UserError
from dltm.io import atomic_path, read_json, write_json

TASK_NAMES = {1: "single-supporting-fact", 2: "two-supporting-facts", 3: "three-supporting-facts",
              4: "two-arg-relations", 5: "three-arg-relations", 6: "yes-no-questions", 7: "counting",
              8: "lists-sets", 9: "simple-negation", 10: "indefinite-knowledge", 11: "basic-coreference",
              12: "conjunction", 13: "compound-coreference", 14: "time-reasoning", 15: "basic-deduction",
              16: "basic-induction", 17: "positional-reasoning", 18: "size-reasoning", 19: "path-finding",
              20: "agents-motivations"}
"""The 20 tasks of bAbI v1.2, by number, as their files name them."""
SIZES = {"1k": "en", "10k": "en-10k"}
"""Training-set size -> the folder of ``tasks_1-20_v1-2/`` that holds it."""
RUN = re.compile(r"qa([1-9]|1[0-9]|20)-(1k|10k)")
"""A run of a task: ``qa<task>-<size>``, e.g. ``qa1-10k``."""
PAD, UNKNOWN = 0, 1
"""Word id 0 pads; 1 stands for a word the training stories never use."""

PARAMS = {"tasks": P.List(P.STR)}
"""``prepare.babi``: the runs to prepare (``qa1-10k``, ``qa1-1k``, ...); each has a train and an evaluate stage
per chapter-13 model (dvc.yaml's matrix reads this list)."""


@dataclass
class Question:
    """A question asked after the first ``after`` statements of its story."""

    after: int
    question: list[str]
    answer: str
    supporting: list[int]
    """Indices (0-based) of the statements that answer it."""


@dataclass
class Story:
    statements: list[list[str]] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def tokenize(text: str) -> list[str]:
    """Lower-cased words: 'Where is Mary?' -> ['where', 'is', 'mary']."""
    return re.findall(r"[a-z0-9]+", text.lower())


def parse_run(run: str) -> tuple[int, str]:
    """'qa3-1k' -> (3, '1k'). Raises UserError naming the form for anything else."""
    m = RUN.fullmatch(run)
    if not m:
        raise UserError(f"bAbI run {run!r}: expected qa<1-20>-<1k|10k>, e.g. qa1-10k")
    return int(m.group(1)), m.group(2)


def babi_file(root: str | os.PathLike, run: str, split: str) -> Path:
    """The file of ``run``'s ``split`` (train or test) under ``root`` (data/raw/babi)."""
    task, size = parse_run(run)
    return (Path(root) / "tasks_1-20_v1-2" / SIZES[size]
            / f"qa{task}_{TASK_NAMES[task]}_{split}.txt")


def parse_babi(path: str | os.PathLike) -> list[Story]:
    """The stories of one bAbI file. Raises MissingOutputError when it is missing and UserError naming the file
    (and line) for a file that is not UTF-8 or holds no question, a line that is not ``N text``, a number that
    does not continue its story, a question line without three tab-separated fields, or a supporting fact that
    is not an earlier statement of the story."""
    path = Path(path)
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@babi` first")
    stories: list[Story] = []
    line_to_statement: dict[int, int] = {}
    expected = 1
    try:
        with open(path, encoding="utf-8", newline="\n") as f:
            lines = list(f)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e})") from None
    for number, line in enumerate(lines, 1):
        where = f"{path}, line {number}"
        m = re.fullmatch(r"(\d+) (.*)", line.rstrip("\n"))
        if not m:
            raise UserError(f"{where}: expected 'N text', got {line[:60]!r}")
        n, text = int(m.group(1)), m.group(2)
        if n == 1:
            stories.append(Story())
            line_to_statement = {}
        elif not stories:
            raise UserError(f"{where}: a story starts at line number 1, got {n}")
        elif n != expected:
            raise UserError(f"{where}: line number {n} does not follow {expected - 1}")
        expected = n + 1
        story = stories[-1]
        if "\t" not in text:
            line_to_statement[n] = len(story.statements)
            story.statements.append(tokenize(text))
            continue
        parts = text.split("\t")
        if len(parts) != 3 or not parts[1].strip():
            raise UserError(f"{where}: a question line needs 'question<TAB>answer<TAB>supporting facts'")
        try:
            supporting = [line_to_statement[int(s)] for s in parts[2].split()]
        except (KeyError, ValueError):
            raise UserError(f"{where}: supporting facts {parts[2]!r} are not earlier statements") from None
        story.questions.append(Question(len(story.statements), tokenize(parts[0]), parts[1].strip(),
                                        supporting))
    if not any(st.questions for st in stories):
        raise UserError(f"{path}: no question in it (bAbI's lines: 'N statement' or 'N question<TAB>answer<TAB>"
                        f"supporting facts')")
    return stories


def questions(stories: list[Story]) -> int:
    return sum(len(s.questions) for s in stories)


def _to_json(stories: list[Story]) -> list[dict[str, Any]]:
    return [{"statements": [" ".join(s) for s in st.statements],
             "questions": [{"after": q.after, "question": " ".join(q.question), "answer": q.answer,
                            "supporting": q.supporting} for q in st.questions]} for st in stories]


def prepare_babi(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any]) -> dict[str, Any]:
    """Parse each run of ``params["tasks"]`` from ``raw_dir`` (data/raw/babi) into ``out_dir``/<run>/."""
    runs = P.require(params, "tasks", list, "prepare.babi")
    for run in runs:
        parse_run(run)
    if len(set(runs)) != len(runs):
        raise UserError("prepare.babi.tasks: a run is listed twice")
    summary: dict[str, Any] = {}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for run in runs:
            (tmp / run).mkdir()
            info: dict[str, Any] = {"run": run, "task": parse_run(run)[0], "name": TASK_NAMES[parse_run(run)[0]]}
            for split in ("train", "test"):
                source = babi_file(raw_dir, run, split)
                stories = parse_babi(source)
                write_json(tmp / run / f"{split}.json", _to_json(stories))
                info[split] = {"file": source.name, "stories": len(stories), "questions": questions(stories),
                               "max_statements": max(len(s.statements) for s in stories)}
            write_json(tmp / run / "info.json", info)
            summary[run] = {split: info[split]["questions"] for split in ("train", "test")}
    return summary


def load_stories(prepared: str | os.PathLike, run: str, split: str) -> list[Story]:
    """The stories of ``split`` of a prepared run (data/prepared/babi/<run>/<split>.json). Raises
    MissingOutputError naming the stage when the run was not prepared."""
    path = Path(prepared) / run / f"{split}.json"
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; list {run} in params.yaml prepare.babi.tasks and run "
                                 f"`dvc repro prepare@babi`")
    return [Story([s.split() for s in st["statements"]],
                  [Question(q["after"], q["question"].split(), q["answer"], q["supporting"])
                   for q in st["questions"]]) for st in read_json(path)]


@dataclass
class BabiData:
    """Arrays for one split: ``memories`` (n, memory_size, sentence_length) word ids, the most recent statement
    last and empty slots (all 0) first; ``queries`` (n, sentence_length); ``answers`` (n,) class ids (-1: an
    answer the training set never gives); ``supporting`` the supporting facts' slots in ``memories`` per
    question (a fact older than the memory is left out)."""

    memories: np.ndarray
    queries: np.ndarray
    answers: np.ndarray
    supporting: list[list[int]]


@dataclass
class BabiVocabulary:
    """Word ids (0 pad, 1 unknown, then the training stories' words) and answer classes (the training answers,
    sorted), with the shapes :func:`vectorize` pads to."""

    words: list[str]
    answers: list[str]
    memory_size: int
    sentence_length: int
    story_words: int
    """The most words the memories of a training question hold (the story as one word sequence: babi_rnn)."""

    @classmethod
    def build(cls, stories: list[Story], memory_size: int) -> BabiVocabulary:
        """From the training stories: every word, every answer, the longest sentence or question, the longest
        story (its last ``memory_size`` statements) in words."""
        words, answers, longest, story_words = set(), set(), 1, 1
        for st in stories:
            for s in st.statements:
                words.update(s)
                longest = max(longest, len(s))
            for q in st.questions:
                words.update(q.question)
                answers.add(q.answer)
                longest = max(longest, len(q.question))
                recent = st.statements[max(0, q.after - memory_size):q.after]
                story_words = max(story_words, sum(len(s) for s in recent))
        return cls(["<pad>", "<unk>", *sorted(words)], sorted(answers), memory_size, longest, story_words)

    def to_json(self) -> dict[str, Any]:
        return {"words": self.words, "answers": self.answers, "memory_size": self.memory_size,
                "sentence_length": self.sentence_length, "story_words": self.story_words}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BabiVocabulary:
        return cls(d["words"], d["answers"], int(d["memory_size"]), int(d["sentence_length"]),
                   int(d["story_words"]))

    def ids(self, tokens: list[str]) -> list[int]:
        index = self._index()
        return [index.get(t, UNKNOWN) for t in tokens][:self.sentence_length]

    def _index(self) -> dict[str, int]:
        if not hasattr(self, "_word_index"):
            self._word_index = {w: i for i, w in enumerate(self.words)}
        return self._word_index


def story_sequences(data: BabiData, story_words: int) -> np.ndarray:
    """The memories of each question as one word sequence, (n, story_words): the filled slots' words in order,
    padding dropped, the last ``story_words`` kept, aligned right (0s first)."""
    out = np.zeros((len(data.memories), story_words), np.int32)
    for i, memory in enumerate(data.memories):
        ids = memory[memory != 0][-story_words:]
        if len(ids):
            out[i, -len(ids):] = ids
    return out


def vectorize(stories: list[Story], vocab: BabiVocabulary) -> BabiData:
    """Every question of ``stories`` as arrays (see :class:`BabiData`); words past ``sentence_length`` are cut."""
    n = questions(stories)
    m, length = vocab.memory_size, vocab.sentence_length
    memories = np.zeros((n, m, length), np.int32)
    queries = np.zeros((n, length), np.int32)
    answers = np.full(n, -1, np.int32)
    answer_index = {a: i for i, a in enumerate(vocab.answers)}
    supporting: list[list[int]] = []
    i = 0
    for st in stories:
        encoded = [vocab.ids(s) for s in st.statements]
        for q in st.questions:
            first = max(0, q.after - m)
            recent = encoded[first:q.after]
            offset = m - len(recent)  # empty slots first, the latest statement last
            for slot, ids in enumerate(recent, offset):
                memories[i, slot, :len(ids)] = ids
            query = vocab.ids(q.question)
            queries[i, :len(query)] = query
            answers[i] = answer_index.get(q.answer, -1)
            supporting.append([s - first + offset for s in q.supporting if s >= first])
            i += 1
    return BabiData(memories, queries, answers, supporting)
