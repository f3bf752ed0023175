"""Skip-gram pair generation: dltm.skipgram.skipgrams against Keras 2's pure-Python ``skipgrams``.

    python -m benchmarks.skipgram_throughput [--tokens 1000000] [--window 1] [--negatives 1.0]

Both turn the same corpus of word indices (Zipf-distributed over a 50,000-word vocabulary, as the book's text8
setup) into (target, context) pairs with negative sampling. The positive pairs are checked to be identical
(unshuffled); the ratio is legacy time / our time. Target from issue 4: at least 10x on a million tokens.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from keras.src.legacy.preprocessing.sequence import skipgrams as legacy_skipgrams

from benchmarks.common import record
from dltm.skipgram import skipgrams


def zipf_corpus(tokens: int, vocab: int, seed: int = 0) -> np.ndarray:
    ranks = np.arange(1, vocab)
    p = 1.0 / ranks
    return np.random.default_rng(seed).choice(ranks, size=tokens, p=p / p.sum())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--negatives", type=float, default=1.0)
    args = ap.parse_args(argv)
    seq = zipf_corpus(args.tokens, args.vocab)
    as_list = seq.tolist()

    ours_pos, _ = skipgrams(seq, args.vocab, args.window, negative_samples=0, shuffle=False)
    ref_pos, _ = legacy_skipgrams(as_list[:20_000], args.vocab, args.window, negative_samples=0, shuffle=False)
    head = skipgrams(seq[:20_000], args.vocab, args.window, negative_samples=0, shuffle=False)[0]
    assert head.tolist() == ref_pos, "positive pairs differ from the legacy function"

    start = time.perf_counter()
    couples, labels = skipgrams(seq, args.vocab, args.window, args.negatives, shuffle=True, seed=0)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    ref_couples, ref_labels = legacy_skipgrams(as_list, args.vocab, args.window, args.negatives, shuffle=True,
                                               seed=0)
    legacy = time.perf_counter() - start
    assert len(couples) == len(ref_couples) and int(labels.sum()) == int(sum(ref_labels)) == len(ours_pos)
    result = {
        "tokens": args.tokens, "vocab": args.vocab, "window": args.window, "negative_samples": args.negatives,
        "pairs": len(couples), "ours_seconds": round(ours, 3), "legacy_seconds": round(legacy, 3),
        "ours_pairs_per_second": round(len(couples) / ours), "legacy_pairs_per_second": round(len(couples) / legacy),
        "ratio": round(legacy / ours, 1), "same_positive_pairs": True,
    }
    record("skipgram_throughput", result)
    return result


if __name__ == "__main__":
    main()
