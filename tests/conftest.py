"""Shared fixtures: the repository root, the dataset mirror (when present), synthetic MR files."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
