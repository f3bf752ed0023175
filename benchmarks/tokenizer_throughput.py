"""Tokenizer throughput on MR: dltm.text.Tokenizer against the legacy Keras 2 Tokenizer (same output).

    python -m benchmarks.tokenizer_throughput [--repeats 5]

Both fit on all 10,662 cleaned MR sentences and encode them; the ratio is legacy time / our time
(>= 1 means ours is at least as fast). Best of ``--repeats`` runs each, interleaved.
"""

from __future__ import annotations

import argparse
import time

from keras.src.legacy.preprocessing.text import Tokenizer as LegacyTokenizer

from benchmarks.common import mr_texts, record
from dltm.text import Tokenizer


def run_once(cls, texts):
    start = time.perf_counter()
    t = cls(num_words=10000)
    t.fit_on_texts(texts)
    seqs = t.texts_to_sequences(texts)
    return time.perf_counter() - start, t, seqs


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    texts, _ = mr_texts()
    ours_t, legacy_t = [], []
    for _ in range(args.repeats):
        dt, ours, ours_seqs = run_once(Tokenizer, texts)
        ours_t.append(dt)
        dt, legacy, legacy_seqs = run_once(LegacyTokenizer, texts)
        legacy_t.append(dt)
    assert ours.word_index == legacy.word_index and ours_seqs == legacy_seqs, "outputs differ"
    words = sum(len(s.split()) for s in texts)
    result = {
        "sentences": len(texts), "tokens": words,
        "ours_seconds": round(min(ours_t), 4), "legacy_seconds": round(min(legacy_t), 4),
        "ours_tokens_per_second": round(words / min(ours_t)), "legacy_tokens_per_second": round(words / min(legacy_t)),
        "ratio": round(min(legacy_t) / min(ours_t), 2), "same_output": True,
    }
    record("tokenizer_throughput", result)
    return result


if __name__ == "__main__":
    main()
