"""Batches of NumPy arrays for ``Model.fit``/``evaluate``/``predict`` on any Keras backend (issue 14).

On TensorFlow the input pipelines are tf.data (:func:`dataset`): shuffling, batching and prefetching in
TensorFlow's runtime, as the book's code and the throughput benchmark use. On JAX and PyTorch the same arrays go
through :class:`ArrayBatches`, a ``keras.utils.PyDataset``: the same batches, in an order drawn from a seeded
NumPy generator (so the two backends shuffle differently, and each is repeatable). TensorFlow is imported only
when the backend is TensorFlow.

``x`` may be one array or a tuple/list of arrays (a model with several inputs), ``y`` one array; all share
their first axis (the examples).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np


def _take(structure: Any, index: np.ndarray | slice) -> Any:
    if isinstance(structure, (tuple, list)):
        return type(structure)(_take(a, index) for a in structure)
    return structure[index]


def _length(structure: Any) -> int:
    return len(structure[0]) if isinstance(structure, (tuple, list)) else len(structure)


class ArrayBatches(keras.utils.PyDataset):
    """``(x, y)`` in batches of ``batch_size`` (the last one smaller), reshuffled
    before every epoch when ``shuffle_seed`` is given (``numpy.random.default_rng(shuffle_seed)``), else in
    order. ``transform(x_batch, y_batch) -> (x_batch, y_batch)`` is applied to each batch (e.g. one-hot
    encoding that would not fit in memory for the whole set). ``prebatched=True``: ``x`` and ``y`` are already
    batches, shape (n_batches, batch, ...), served one per step in order (``batch_size`` is ignored).

    ``len()`` is the number of batches per epoch. Raises ValueError when x and y differ in length."""

    def __init__(self, x: Any, y: np.ndarray | None, batch_size: int, shuffle_seed: int | None = None,
                 transform: Callable[[Any, Any], tuple[Any, Any]] | None = None, prebatched: bool = False):
        super().__init__()
        n = _length(x)
        if y is not None and len(y) != n:
            raise ValueError(f"x has {n} examples but y has {len(y)}")
        self.x, self.y, self.n = x, y, n
        self.batch_size = 1 if prebatched else int(batch_size)
        self.prebatched, self.transform = prebatched, transform
        self.rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        self.order = self.rng.permutation(n) if self.rng is not None else None

    def __len__(self) -> int:
        if self.prebatched:
            return self.n
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, i: int):
        if self.prebatched:
            index: np.ndarray | slice | int = i if self.order is None else int(self.order[i])
        else:
            start = i * self.batch_size
            index = slice(start, start + self.batch_size) if self.order is None \
                else self.order[start:start + self.batch_size]
        xb = _take(self.x, index)
        yb = None if self.y is None else self.y[index]
        if self.transform is not None:
            xb, yb = self.transform(xb, yb)
        return (xb, yb) if yb is not None else (xb,)

    def on_epoch_end(self) -> None:
        if self.rng is not None:
            self.order = self.rng.permutation(self.n)


def dataset(x: Any, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None,
            transform: Callable[[Any, Any], tuple[Any, Any]] | None = None, prebatched: bool = False):
    """The input every task trains from, on the current backend: a tf.data pipeline (shuffle with
    ``shuffle_seed``, reshuffled each epoch -> batch -> ``transform`` -> prefetch) on TensorFlow, else
    :class:`ArrayBatches` with the same arguments. ``transform`` must then be written with ``keras.ops`` or
    TensorFlow ops on TensorFlow (it runs inside tf.data's graph) and with NumPy elsewhere: pass
    ``transform=(tf_fn, numpy_fn)`` for the two."""
    tf_transform, np_transform = transform if isinstance(transform, tuple) else (transform, transform)
    if keras.backend.backend() != "tensorflow":
        return ArrayBatches(x, y, batch_size, shuffle_seed, np_transform, prebatched)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((tuple(x) if isinstance(x, list) else x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(_length(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    if not prebatched:
        ds = ds.batch(batch_size)
    if tf_transform is not None:
        ds = ds.map(tf_transform, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def num_batches(ds) -> int:
    """Batches per epoch of a :func:`dataset` (tf.data's cardinality, or ``len``)."""
    return len(ds) if isinstance(ds, keras.utils.PyDataset) else int(ds.cardinality())


def steps_of(ids: np.ndarray) -> np.ndarray:
    """The length of each post-padded id sequence (n, T): the position after its last non-zero id."""
    nonzero = ids != 0
    return np.where(nonzero.any(axis=1), ids.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)


class LengthBuckets(keras.utils.PyDataset):
    """Batches of examples of similar length, each cut to its own longest sequence: for sequence-to-sequence
    training, where padding every batch to the longest sentence of the corpus would spend most of the work on
    padding (chapter 10's Anki pairs: median 7 words, longest 34).

    ``x``: a list of post-padded id arrays (n, T_k) (encoder and decoder inputs), ``y``: ids (n, T) trimmed
    like ``x[tie_y_to]`` (the decoder's targets, one step ahead of its inputs, share its length). Examples are
    sorted by their lengths (ties in a random order), cut into batches of ``batch_size``, and the batches served
    in a random order, both drawn again before every epoch from ``numpy.random.default_rng(shuffle_seed)``;
    ``shuffle_seed`` None: sorted, in order (for validation). Pass :meth:`for_fit` to ``Model.fit``: on
    TensorFlow a tf.data pipeline whose lengths are unknown dimensions (traced once; Keras' own PyDataset
    adapter fixes them from the first batch), elsewhere the PyDataset itself (JAX compiles each length once).

    Raises ValueError when the arrays differ in their number of examples."""

    def __init__(self, x: list[np.ndarray], y: np.ndarray, batch_size: int, shuffle_seed: int | None = None,
                 tie_y_to: int = -1):
        super().__init__()
        if any(len(a) != len(y) for a in x):
            raise ValueError(f"x and y differ in their number of examples: {[len(a) for a in x]} and {len(y)}")
        self.x, self.y, self.batch_size, self.tie = list(x), y, int(batch_size), tie_y_to
        self.steps = [steps_of(a) for a in self.x]
        self.rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        self._draw()

    def _draw(self) -> None:
        n = len(self.y)
        order = self.rng.permutation(n) if self.rng is not None else np.arange(n)
        key = np.lexsort([s[order] for s in self.steps])  # the last array (the decoder's) first, then the others
        order = order[key]
        self.batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.rng is not None:
            self.batches = [self.batches[i] for i in self.rng.permutation(len(self.batches))]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        index = self.batches[i]
        cut = [max(1, int(s[index].max())) for s in self.steps]
        xb = tuple(a[index, :c] for a, c in zip(self.x, cut, strict=True))
        return xb, self.y[index, :cut[self.tie]]

    def on_epoch_end(self) -> None:
        if self.rng is not None:
            self._draw()

    def for_fit(self):
        """What ``Model.fit`` takes on the current backend (see the class docstring)."""
        if keras.backend.backend() != "tensorflow":
            return self
        import tensorflow as tf

        def batches():
            for i in range(len(self)):
                yield self[i]
            self.on_epoch_end()

        spec = (tuple(tf.TensorSpec((None, None), a.dtype) for a in self.x), tf.TensorSpec((None, None), self.y.dtype))
        ds = tf.data.Dataset.from_generator(batches, output_signature=spec)
        return ds.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)
