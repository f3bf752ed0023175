"""Skip-gram pairs with negative sampling, as Keras 2's ``skipgrams`` and ``make_sampling_table`` made them
(book 6.3), vectorised in NumPy and streamed through tf.data (a Python generator on JAX and PyTorch).

Keras 3 dropped ``keras.preprocessing.sequence.skipgrams``. The semantics kept here:

- index 0 is not a word: it is never a target or a context (the book's UNK is 0, so UNK is skipped);
- positives: for each kept position i and each j in [i - window_size, i + window_size], j != i, the couple
  ``[sequence[i], sequence[j]]`` with label 1, ordered by i then j;
- ``sampling_table[w]`` is the probability of keeping target w (word2vec's subsampling of frequent words);
- negatives: ``int(len(positives) * negative_samples)`` couples ``[target, uniform(1, V - 1)]`` with label 0,
  their targets taken in turn from a shuffled copy of the positives' targets;
- ``shuffle``: couples and labels shuffled together with ``seed``.

The random streams are NumPy's, not Python's ``random``, so shuffled output is not the same permutation as
Keras 2's; the pairs, counts and distributions are (tests/test_skipgram.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def make_sampling_table(size: int, sampling_factor: float = 1e-5) -> np.ndarray:
    """p(keep word of rank i) = min(1, sqrt(sampling_factor / frequency(i))), with Zipf's law for frequency:
    1 / frequency(rank) ~ rank * (ln(rank) + gamma) + 1/2 - 1 / (12 rank). Entry 0 (not a word) uses rank 1."""
    gamma = 0.577
    rank = np.arange(size, dtype=np.float64)
    rank[0] = 1
    inv_fq = rank * (np.log(rank) + gamma) + 0.5 - 1.0 / (12.0 * rank)
    f = sampling_factor * inv_fq
    return np.minimum(1.0, np.sqrt(f))


def positive_pairs(sequence: np.ndarray, window_size: int, keep: np.ndarray | None = None,
                   start: int = 0, stop: int | None = None) -> np.ndarray:
    """The (target, context) couples of the targets at positions [start, stop), in Keras 2's order.

    Contexts may lie outside [start, stop): that is what lets a long corpus be cut into chunks without losing
    the pairs that cross a cut. ``keep`` masks the targets (subsampling)."""
    seq = np.asarray(sequence)
    n = len(seq)
    stop = n if stop is None else min(stop, n)
    centers = np.arange(start, stop)
    ok = seq[centers] != 0
    if keep is not None:  # aligned with positions [start, stop)
        ok &= keep
    centers = centers[ok]
    offsets = np.array([d for d in range(-window_size, window_size + 1) if d != 0], dtype=np.int64)
    j = centers[:, None] + offsets[None, :]                     # (targets, 2 * window) positions, j ascending
    valid = (j >= 0) & (j < n)
    valid[valid] &= seq[j[valid]] != 0
    i = np.broadcast_to(centers[:, None], j.shape)
    return np.stack([seq[i[valid]], seq[j[valid]]], axis=1)     # row-major: by i, then by j


def with_negatives(positives: np.ndarray, vocabulary_size: int, negative_samples: float,
                   rng: np.random.Generator, shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Positive couples plus ``int(len * negative_samples)`` negatives ``[target, uniform(1, V - 1)]``, their
    targets taken in turn from a shuffled copy of the positives' targets; labels 1 / 0; optionally shuffled."""
    n_neg = int(len(positives) * negative_samples) if negative_samples > 0 and len(positives) else 0
    couples, labels = positives, np.ones(len(positives), dtype=np.int64)
    if n_neg:
        words = rng.permutation(positives[:, 0])
        negatives = np.stack([words[np.arange(n_neg) % len(words)], rng.integers(1, vocabulary_size, n_neg)],
                             axis=1)
        couples = np.concatenate([positives, negatives])
        labels = np.concatenate([labels, np.zeros(n_neg, dtype=np.int64)])
    if shuffle:
        order = rng.permutation(len(couples))
        couples, labels = couples[order], labels[order]
    return couples, labels


def skipgrams(sequence, vocabulary_size: int, window_size: int = 4, negative_samples: float = 1.0,
              shuffle: bool = True, categorical: bool = False, sampling_table: np.ndarray | None = None,
              seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Keras 2's ``skipgrams``, vectorised: returns ``couples`` (n, 2) int64 and ``labels`` (n,) or (n, 2)."""
    rng = np.random.default_rng(seed)
    seq = np.asarray(sequence, dtype=np.int64)
    if seq.ndim != 1:
        raise ValueError(f"skipgrams: sequence must be 1-D word indices, got shape {seq.shape}")
    if vocabulary_size < 2:
        raise ValueError(f"skipgrams: vocabulary_size must be >= 2, got {vocabulary_size}")
    if len(seq) and (seq.min() < 0 or seq.max() >= vocabulary_size):
        raise ValueError(f"skipgrams: word indices must be in [0, {vocabulary_size}), found "
                         f"{seq.min()}..{seq.max()}")
    keep = None
    if sampling_table is not None:
        keep = np.asarray(sampling_table)[seq] >= rng.random(len(seq))
    couples, labels = with_negatives(positive_pairs(seq, window_size, keep), vocabulary_size, negative_samples,
                                     rng, shuffle)
    if categorical:
        labels = np.stack([1 - labels, labels], axis=1)
    return couples, labels


def skipgram_chunks(sequence: np.ndarray, vocabulary_size: int, window_size: int, negative_samples: float,
                    sampling_table: np.ndarray | None, seed: int, chunk_tokens: int = 200_000,
                    repeat: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Shuffled (targets, contexts, labels) for successive chunks of the corpus, pass after pass.

    Only one chunk's pairs are in memory at a time; pairs that cross a chunk boundary are kept. Each chunk
    of each pass draws its own subsampling, negatives and order from (seed, pass, chunk)."""
    seq = np.asarray(sequence, dtype=np.int64)
    epoch = 0
    while True:
        for k, start in enumerate(range(0, len(seq), chunk_tokens)):
            rng = np.random.default_rng([seed, epoch, k])
            stop = min(start + chunk_tokens, len(seq))
            keep = None
            if sampling_table is not None:
                keep = np.asarray(sampling_table)[seq[start:stop]] >= rng.random(stop - start)
            pos = positive_pairs(seq, window_size, keep, start, stop)
            if not len(pos):
                continue
            couples, labels = with_negatives(pos, vocabulary_size, negative_samples, rng)
            yield couples[:, 0], couples[:, 1], labels.astype(np.float32)
        epoch += 1
        if not repeat:
            return


def skipgram_batches(chunks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]], batch_size: int
                     ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cut a stream of chunks into batches of exactly ``batch_size``, carrying the remainder over."""
    carry: list[np.ndarray] | None = None
    for chunk in chunks:
        if carry is not None:
            chunk = tuple(np.concatenate([a, b]) for a, b in zip(carry, chunk, strict=True))
        n = len(chunk[0]) // batch_size * batch_size
        for i in range(0, n, batch_size):
            yield tuple(a[i:i + batch_size] for a in chunk)
        carry = [a[n:] for a in chunk]


def model_inputs(target: np.ndarray, context: np.ndarray, label: np.ndarray):
    """One batch as the word2vec model of book 6.3 takes it: ``((target, context), label)``, the words as
    (batch, 1) columns, the labels float32."""
    return (target[:, None], context[:, None]), label.astype(np.float32)


def shuffled_pair_batches(target: np.ndarray, context: np.ndarray, label: np.ndarray, batch_size: int,
                          seed: int):
    """Endless batches of :func:`model_inputs` over the pairs given, reshuffled every pass, whole batches only
    (the book's in-memory pairs, 6.3): tf.data on TensorFlow, a Python generator on the other backends
    (``numpy.random.default_rng(seed)``). Feed to ``Model.fit`` with ``steps_per_epoch``."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((target, context, label.astype(np.float32)))
        ds = ds.shuffle(len(label), seed=seed).repeat().batch(batch_size, drop_remainder=True)
        return ds.map(lambda t, c, y: ((t[:, None], c[:, None]), y)).prefetch(tf.data.AUTOTUNE)

    def gen():
        rng = np.random.default_rng(seed)
        while True:
            order = rng.permutation(len(label))
            for s in range(0, len(order) - batch_size + 1, batch_size):
                k = order[s:s + batch_size]
                yield model_inputs(target[k], context[k], label[k])

    return gen()


def skipgram_dataset(sequence: np.ndarray, vocabulary_size: int, window_size: int, negative_samples: float,
                     sampling_table: np.ndarray | None, batch_size: int, seed: int,
                     chunk_tokens: int = 200_000, repeat: bool = True):
    """Batches of :func:`model_inputs` over the whole corpus (the book drew its batches from the first 50,000
    pairs only), generated chunk by chunk: memory stays at one chunk's pairs. A tf.data pipeline on TensorFlow
    (generated in a background thread, prefetched), a Python generator on the other backends."""
    import keras

    def gen():
        yield from skipgram_batches(skipgram_chunks(sequence, vocabulary_size, window_size, negative_samples,
                                                    sampling_table, seed, chunk_tokens, repeat), batch_size)

    if keras.backend.backend() != "tensorflow":
        return (model_inputs(t, c, y) for t, c, y in gen())
    import tensorflow as tf

    spec = (tf.TensorSpec([batch_size], tf.int64), tf.TensorSpec([batch_size], tf.int64),
            tf.TensorSpec([batch_size], tf.float32))
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
    return ds.map(lambda t, c, y: ((t[:, None], c[:, None]), y)).prefetch(tf.data.AUTOTUNE)
