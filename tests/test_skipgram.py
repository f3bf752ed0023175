"""skipgrams() and make_sampling_table() with Keras 2's semantics (book 6.3)."""

import itertools

import numpy as np
import pytest

from dltm.skipgram import make_sampling_table, positive_pairs, skipgram_batches, skipgram_chunks, skipgrams
from dltm.text import Tokenizer

SENTENCE = "The quick brown fox jumped over the lazy dog."


def legacy():
    return pytest.importorskip("keras.src.legacy.preprocessing.sequence")


def test_the_books_toy_sentence_window_1():
    t = Tokenizer()
    t.fit_on_texts([SENTENCE])
    seq = t.texts_to_sequences([SENTENCE])[0]
    couples, labels = skipgrams(seq, len(t.word_index) + 1, window_size=1, negative_samples=0, shuffle=False)
    words = {i: w for w, i in t.word_index.items()}
    pairs = [(words[a], words[b]) for a, b in couples]
    assert pairs[:4] == [("the", "quick"), ("quick", "the"), ("quick", "brown"), ("brown", "quick")]
    assert ("fox", "jumped") in pairs and ("lazy", "dog") in pairs and len(pairs) == 2 * (len(seq) - 1)
    assert labels.tolist() == [1] * len(pairs)
    ref_couples, _ = legacy().skipgrams(seq, len(t.word_index) + 1, window_size=1, negative_samples=0,
                                        shuffle=False)
    assert couples.tolist() == ref_couples


@pytest.mark.parametrize("window", [1, 2, 4])
def test_positives_equal_the_legacy_function_with_zeros_in_the_sequence(window):
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 30, 300)  # about 1 in 30 is the non-word 0
    ours, _ = skipgrams(seq, 30, window_size=window, negative_samples=0, shuffle=False)
    ref, _ = legacy().skipgrams(seq.tolist(), 30, window_size=window, negative_samples=0, shuffle=False)
    assert ours.tolist() == ref
    assert 0 not in ours


def test_negatives_count_targets_and_uniform_contexts():
    rng = np.random.default_rng(1)
    seq = rng.integers(1, 50, 20_000)
    couples, labels = skipgrams(seq, 50, window_size=2, negative_samples=0.5, seed=3)
    pos, neg = couples[labels == 1], couples[labels == 0]
    assert len(neg) == int(len(pos) * 0.5)
    # targets of negatives are the positives' targets, each used at most once per pass
    assert np.all(np.bincount(neg[:, 0], minlength=50) <= np.bincount(pos[:, 0], minlength=50))
    # contexts uniform on 1..49: a chi-square test at the 0.1% level
    counts = np.bincount(neg[:, 1], minlength=50)[1:]
    expected = len(neg) / 49
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert counts.min() > 0 and chi2 < 85.4  # chi2(48) 99.9% quantile
    assert labels.sum() == len(pos) and not np.all(labels[:-1] >= labels[1:])  # shuffled, not sorted


def test_shuffle_is_seeded_and_categorical_labels():
    seq = np.arange(1, 200) % 17 + 1
    a = skipgrams(seq, 20, seed=5)
    b = skipgrams(seq, 20, seed=5)
    c = skipgrams(seq, 20, seed=6)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    _, cat = skipgrams(seq, 20, seed=5, categorical=True)
    assert np.array_equal(cat[:, 1], a[1]) and np.all(cat.sum(axis=1) == 1)


def test_sampling_table_matches_the_legacy_formula_and_subsamples_frequent_words():
    np.testing.assert_allclose(make_sampling_table(1000), legacy().make_sampling_table(1000), rtol=1e-12)
    table = make_sampling_table(5000)
    assert np.all(np.diff(table[1:]) >= 0) and table[1] < 0.01 and make_sampling_table(20_000)[-1] == 1.0
    rng = np.random.default_rng(2)
    seq = rng.integers(1, 5000, 200_000)
    seq[::4] = 1  # the most frequent word
    couples, _ = skipgrams(seq, 5000, window_size=1, negative_samples=0, sampling_table=table, seed=0)
    kept_share = np.mean(couples[:, 0] == 1) / 0.25
    assert kept_share < 5 * table[1] + 0.01  # rank-1 targets are kept with probability table[1]
    rare = seq[seq > 4000]
    assert np.isin(rare, couples[:, 0]).mean() > 0.95  # rare words are (almost) always kept


def test_chunks_lose_no_pair_at_the_cuts_and_batches_are_exact():
    rng = np.random.default_rng(3)
    seq = rng.integers(1, 40, 1000)
    full = positive_pairs(seq, 2)
    chunks = list(skipgram_chunks(seq, 40, 2, 0.0, None, seed=0, chunk_tokens=128, repeat=False))
    got = np.concatenate([np.stack([t, c], 1) for t, c, _ in chunks])
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, full.tolist()))
    batches = list(skipgram_batches(iter(chunks), 64))
    assert all(len(b[0]) == 64 for b in batches) and len(batches) == len(full) // 64


def test_dataset_streams_batches_of_targets_contexts_labels():
    from dltm.skipgram import skipgram_dataset

    seq = np.random.default_rng(4).integers(1, 30, 500)
    ds = skipgram_dataset(seq, 30, 1, 1.0, None, batch_size=32, seed=0, chunk_tokens=100)
    (t, c), y = next(iter(ds))  # tf.data on TensorFlow, a generator on the other backends: the same batches
    assert t.shape == (32, 1) and c.shape == (32, 1) and set(np.unique(np.asarray(y))) <= {0.0, 1.0}
    assert len(list(itertools.islice(iter(ds), 200))) == 200  # repeats pass after pass


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"word indices must be in \[0, 5\)"):
        skipgrams([1, 2, 7], 5)
    with pytest.raises(ValueError, match="vocabulary_size must be >= 2"):
        skipgrams([1], 1)
