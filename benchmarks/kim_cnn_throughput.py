"""Training throughput of the pipeline's Kim CNN against a plain Keras script of the same model.

    python -m benchmarks.kim_cnn_throughput [--epochs 2] [--rounds 2]

"pipeline": ``pipelines.ch07_text_cnn.build_kim_cnn`` fed by ``dltm.training.make_dataset`` (tf.data), as
``dvc repro train@ch07_kim_cnn`` runs it. "plain": the book's listing written out with Keras layers and
``model.fit(x, y, batch_size=32)`` on NumPy arrays. Same MR data, same shapes, same batch size. Each round
trains one warm-up epoch (not timed: graph tracing) and then ``--epochs`` timed epochs for each model, in
alternating order. The ratio is pipeline examples/s over plain examples/s (median over rounds).
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np
from keras import layers

from benchmarks.common import mr_texts, record
from dltm.runtime import seed_everything
from dltm.text import Tokenizer, pad_post
from dltm.training import make_dataset
from pipelines.ch07_text_cnn import build_kim_cnn

VOCAB, EMBED, SIZES, FILTERS, BATCH = 10000, 50, (3, 4, 5), 10, 32


def plain_keras_model(m: int) -> keras.Model:
    """The book's cnn-text.py model, as a reader would type it from the listing."""
    inputs = keras.Input((m,))
    hidden = layers.Embedding(input_dim=VOCAB, output_dim=EMBED)(inputs)
    reshape = layers.Reshape((m, EMBED, 1))(hidden)
    pooled_output = []
    for fsize in SIZES:
        conv = layers.Conv2D(filters=FILTERS, kernel_size=(fsize, EMBED), activation="relu", padding="valid")(reshape)
        pool = layers.MaxPool2D(pool_size=(m - fsize + 1, 1))(conv)
        drop = layers.Dropout(0.5)(pool)
        pooled_output.append(layers.Reshape((FILTERS,))(drop))
    output = layers.Dense(1, activation="sigmoid")(layers.Concatenate()(pooled_output))
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def timed_fit(fit, epochs: int, n: int) -> float:
    fit(1)  # warm-up: tracing and first-epoch allocation
    start = time.perf_counter()
    fit(epochs)
    return n * epochs / (time.perf_counter() - start)


def run_pipeline(x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> float:
    seed_everything(seed)
    model = build_kim_cnn(x.shape[1], VOCAB, EMBED, SIZES, FILTERS)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    ds = make_dataset(x, y, BATCH, shuffle_seed=seed)
    return timed_fit(lambda e: model.fit(ds, epochs=e, verbose=0, shuffle=False), epochs, len(x))


def run_plain(x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> float:
    seed_everything(seed)
    model = plain_keras_model(x.shape[1])
    return timed_fit(lambda e: model.fit(x, y, batch_size=BATCH, epochs=e, verbose=0), epochs, len(x))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    texts, labels = mr_texts()
    t = Tokenizer(num_words=VOCAB)
    t.fit_on_texts(texts)
    x = pad_post(t.texts_to_sequences(texts))
    y = np.asarray(labels, dtype=np.int32)
    m = x.shape[1]
    ours, plain = [], []
    for r in range(args.rounds):
        runs = [(ours, run_pipeline), (plain, run_plain)]
        for out, fn in runs if r % 2 == 0 else runs[::-1]:
            out.append(fn(x, y, r, args.epochs))
    result = {
        "examples": len(x), "doc_length": int(m), "epochs_timed": args.epochs, "rounds": args.rounds,
        "pipeline_examples_per_second": round(statistics.median(ours), 1),
        "plain_examples_per_second": round(statistics.median(plain), 1),
        "ratio": round(statistics.median(ours) / statistics.median(plain), 3),
    }
    record("kim_cnn_throughput", result)
    return result


if __name__ == "__main__":
    main()
