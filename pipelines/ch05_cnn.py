"""Chapter 5: convolutional neural networks (第五章 卷积神经网络, book lines 1941-2635).

- 5.1-5.2 convolution by hand: the 1-D examples, narrow and wide convolution, the output-length formulas,
          2-D convolution shapes and pooling (lines 1941-2190)                       -> ``ch05_conv_numeric``

Each of the book's worked examples is computed twice, by NumPy and by the Keras layer that does it (Conv1D,
Conv2D, MaxPooling2D with fixed weights), and checked against the book's numbers and formulas.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from dltm.evaluation import line_png
from dltm.io import read_json, write_json
from dltm.tasks import Context, Reference, Task

# Example 1 (lines 1958-1972): x(n) = 1 for 0 <= n <= 5, h(n) = 1 for 0 <= n <= 2
x1 = np.ones(6)
h1 = np.ones(3)
BOOK_Y1 = [1, 2, 3, 3, 3, 3, 2, 1]

# Example 2 (lines 1980-1990): a moving average of width m = 3
x2 = np.array([3, 1, 2, 4, 1, 1, 3, 1, 2, 1, 4, 3, 3, 2], dtype=np.float64)
m = 3


def conv_length(m: int, n: int, s: int = 1, wide: bool = False) -> int:
    """The book's formulas (line 1995): l = floor((m - n) / s) + 1, or floor((m + n - 2) / s) + 1 when padded."""
    return (m + n - 2) // s + 1 if wide else (m - n) // s + 1


def keras_conv1d(x: np.ndarray, f: np.ndarray, padding: str) -> np.ndarray:
    """A Conv1D layer with the filter ``f`` as its only weights; ``padding`` is "valid" (narrow) or "wide".

    Keras slides the filter without flipping it (cross-correlation); the book's filters are symmetric."""
    layer = keras.layers.Conv1D(1, len(f), padding="valid", use_bias=False)
    layer.build((None, None, 1))
    layer.set_weights([f.reshape(len(f), 1, 1)])
    inp = x.reshape(1, -1, 1)
    if padding == "wide":  # zero-pad n-1 on both sides, then a narrow convolution
        inp = np.pad(inp, ((0, 0), (len(f) - 1, len(f) - 1), (0, 0)))
    return np.asarray(layer(inp.astype("float32"))).reshape(-1)


def compute() -> dict[str, Any]:
    f = np.full(m, 1.0 / m)
    narrow = np.convolve(x2, f, mode="valid")
    wide = np.convolve(x2, f, mode="full")
    conv2d = keras.layers.Conv2D(2, 3, strides=2, padding="same")  # 5x5x3, 2 filters 3x3x3, stride 2, pad 1
    pool = keras.layers.MaxPooling2D(2)
    slice4 = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype="float32")  # cs231n's
    return {
        "example1_full": np.convolve(x1, h1).tolist(),
        "example1_keras": keras_conv1d(x1, h1, "wide").tolist(),
        "example2_narrow": narrow.tolist(),
        "example2_narrow_keras": keras_conv1d(x2, f, "valid").tolist(),
        "example2_wide": wide.tolist(),
        "example2_wide_keras": keras_conv1d(x2, f, "wide").tolist(),
        "conv2d_5x5x1_3x3_valid": list(keras.layers.Conv2D(1, 3).compute_output_shape((None, 5, 5, 1))[1:]),
        "conv2d_5x5x3_stride2_pad1_2filters": list(conv2d.compute_output_shape((None, 5, 5, 3))[1:]),
        "pool_224x224x64": list(pool.compute_output_shape((None, 224, 224, 64))[1:]),
        "pool_4x4_slice": np.asarray(pool(slice4.reshape(1, 4, 4, 1))).reshape(2, 2).tolist(),
    }


def train_conv_numeric(ctx: Context) -> dict[str, Any]:
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    o = compute()
    write_json(ctx.model_dir / "outputs.json", o)
    # the figures the book's example 2 draws: the sequence and its narrow and wide moving averages
    png = line_png({"x": (np.arange(1, len(x2) + 1), x2),
                    "wide (zero-padded), length 16": (np.arange(1, len(x2) + m), o["example2_wide"]),
                    "narrow (valid), length 12, on top": (np.arange(m, len(x2) + 1), o["example2_narrow"])},
                   ctx.train_dir / "moving_average.png", "example 2: moving average, m = 3",
                   xlabel="t (output aligned to the window's last input)", ylabel="value")
    ctx.tracker.log_artifact(ctx.model_dir / "outputs.json", "samples")
    ctx.tracker.log_artifact(png, "plots")
    return {"train_examples": 0, "epochs": 0}


def evaluate_conv_numeric(ctx: Context) -> dict[str, Any]:
    o = read_json(ctx.model_dir / "outputs.json")
    close = lambda a, b: bool(np.allclose(a, b, atol=1e-5))  # noqa: E731
    checks = {
        "example1_equals_book": o["example1_full"] == BOOK_Y1 and close(o["example1_keras"], BOOK_Y1),
        "narrow_length_formula": len(o["example2_narrow"]) == conv_length(len(x2), m) == 12,
        "wide_length_formula": len(o["example2_wide"]) == conv_length(len(x2), m, wide=True) == 16,
        "narrow_is_moving_average": close(o["example2_narrow"], [x2[i:i + m].mean() for i in range(12)]),
        "keras_conv1d_equals_numpy": close(o["example2_narrow_keras"], o["example2_narrow"])
        and close(o["example2_wide_keras"], o["example2_wide"]),
        "conv2d_shapes": o["conv2d_5x5x1_3x3_valid"] == [3, 3, 1]
        and o["conv2d_5x5x3_stride2_pad1_2filters"] == [3, 3, 2],
        "pooling_224_to_112": o["pool_224x224x64"] == [112, 112, 64],
        "pool_slice_max": o["pool_4x4_slice"] == [[6.0, 8.0], [3.0, 4.0]],
    }
    metrics = {k: float(v) for k, v in checks.items()}
    metrics["checks_passed"] = float(np.mean(list(checks.values())))
    write_json(ctx.metrics_file, metrics)
    write_json(ctx.eval_dir / "outputs.json", o)
    ctx.tracker.log_metrics(metrics)
    return metrics


TASKS = (
    Task("ch05_conv_numeric", "5.1-5.2 (lines 1941-2190)", "convolution and pooling by hand, NumPy beside Keras",
         None, "checks_passed", train_conv_numeric, evaluate_conv_numeric,
         Reference(1.0, "book 5.1: y = 1,2,3,3,3,3,2,1; length formulas; 5x5x3 -> 3x3x2; 224x224x64 -> 112x112x64"),
         notes="the fraction of the book's worked examples that NumPy and Keras reproduce"),
)
