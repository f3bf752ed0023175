"""dltm.batches.LengthBuckets: batches of similar lengths, each cut to its longest sequence."""

from __future__ import annotations

import numpy as np

from dltm.batches import LengthBuckets, steps_of


def test_length_buckets_cut_each_batch_to_its_longest_sequence_and_serve_every_example_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 12, size=50)
    enc = np.zeros((50, 12), np.int32)
    dec = np.zeros((50, 14), np.int32)
    for i, n in enumerate(lengths):
        enc[i, :n] = i + 1  # the example's number, to find it again
        dec[i, :n + 2] = 7
    target = np.zeros_like(dec)
    target[:, :-1] = dec[:, 1:]
    assert steps_of(enc).tolist() == lengths.tolist()
    batches = LengthBuckets([enc, dec], target, batch_size=8, shuffle_seed=3, tie_y_to=1)
    for _ in range(2):  # two epochs: every example once each, batches redrawn
        seen = []
        for i in range(len(batches)):
            (e, d), t = batches[i]
            assert e.shape[1] == steps_of(e).max() and d.shape[1] == steps_of(d).max() == t.shape[1]
            assert (steps_of(e).max() - steps_of(e).min()) <= 3  # similar lengths together
            seen += (e[:, 0] - 1).tolist()
        assert sorted(seen) == list(range(50))
        batches.on_epoch_end()
