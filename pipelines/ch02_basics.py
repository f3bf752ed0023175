"""Chapter 2: neural-network basics (第二章 神经网络基础, book lines 197-572), in NumPy.

- 2.1   XOR with one hidden layer of hand-set weights (lines 222-238)      -> ``ch02_xor``
- 2.3.1 gradient descent on f(x) = x^2 / 2 (fig 2.10, lines 355-367)    -> picture of ``ch02_perceptron_batch``
- 2.3.2 a linear perceptron learns breakfast prices, full-batch (378-445)  -> ``ch02_perceptron_batch``
        the same by online gradient descent (449-491), and the book's
        SGD discussion: meals bought in fixed proportions                  -> ``ch02_perceptron_online``
- 2.4   backpropagation by hand (514-572), checked against TensorFlow      -> ``ch02_backprop``

Everything here is float64 NumPy, as in the book, so the book's printed weights are reproduced to the last
digit. Variable names follow the book (``eta``, ``ws``, ``train``, ``delta_ws``; ``W``, ``c``, ``w``, ``b``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dltm import params as P
from dltm.evaluation import line_png, scatter_png, write_metrics
from dltm.io import read_json, write_json, write_text
from dltm.params import ParamError, require
from dltm.tasks import Context, Reference, Task

# ------------------------------------------------------------------------------------------------------------
# 2.3.2 Training a perceptron: breakfast prices (the "breakfast" dataset of TASKS.md, written in the book)
#
# Each day: (side dishes, buns, drinks) and the total price. The true prices are [150, 50, 100].
# ------------------------------------------------------------------------------------------------------------

train = (((2, 5, 3), 850), ((1, 4, 7), 1050), ((2, 3, 5), 950), ((3, 6, 9), 1650), ((7, 4, 1), 1350))
TRUE_PRICES = [150.0, 50.0, 100.0]
BOOK_BATCH_RESULT = [149.99854969104385, 50.00249323213941, 99.9987175643975]
BOOK_ONLINE_RESULT = [149.9999854696171, 50.00004609118093, 99.99997795027406]


def perceptron_batch(train, eta: float, ws: list[float], passes: int) -> tuple[list[float], list[list[float]]]:
    """The book's listing: accumulate delta_ws over all meals, then update once per pass."""
    trajectory = [list(ws)]
    for _ in range(passes):
        delta_ws = [0.0] * len(ws)
        for xs, t in train:
            yn = sum(w * x for w, x in zip(ws, xs, strict=True))
            dn = t - yn
            delta_ws = [xi * dn + dw for xi, dw in zip(xs, delta_ws, strict=True)]
        ws = [w + eta * delta_w for w, delta_w in zip(ws, delta_ws, strict=True)]
        trajectory.append(list(ws))
    return ws, trajectory


def perceptron_online(train, eta: float, ws: list[float], epochs: int) -> tuple[list[float], list[list[float]]]:
    """Online gradient descent: update after every meal. Returns the weights after each step."""
    trajectory = [list(ws)]
    for _ in range(epochs):
        for xs, t in train:
            y = sum(w * x for w, x in zip(ws, xs, strict=True))
            delta_ws = [eta * x * (t - y) for x in xs]
            ws = [w + delta_w for w, delta_w in zip(ws, delta_ws, strict=True)]
            trajectory.append(list(ws))
    return ws, trajectory


def collinear_meals(proportions, amounts) -> tuple:
    """Meals always bought in the same proportions, priced at the true prices."""
    meals = [tuple(a * p for p in proportions) for a in amounts]
    return tuple((m, sum(x * w for x, w in zip(m, TRUE_PRICES, strict=True))) for m in meals)


def _perceptron_settings(p: dict[str, Any], where: str, steps_key: str) -> dict[str, Any]:
    ws = p.get("initial_weights")
    if not (isinstance(ws, list) and len(ws) == 3 and all(isinstance(w, (int, float)) for w in ws)):
        raise ParamError(f"params.yaml: {where}.initial_weights should be a list of 3 numbers, got {ws!r}")
    return {"eta": require(p, "eta", float, where), "ws": [float(w) for w in ws],
            steps_key: require(p, steps_key, int, where)}


def _save_weights(ctx: Context, ws: list[float], trajectory: list[list[float]], extra: dict | None = None):
    write_json(ctx.model_dir / "weights.json", {"ws": ws, **(extra or {})})
    rows = ["step,w_side,w_bun,w_drink"] + [f"{i},{a!r},{b!r},{c!r}" for i, (a, b, c) in enumerate(trajectory)]
    write_text(ctx.train_dir / "weights.csv", "\n".join(rows) + "\n")
    steps = np.arange(len(trajectory))
    traj = np.asarray(trajectory)
    png = line_png({name: (steps, traj[:, i]) for i, name in enumerate(["side dish", "bun", "drink"])},
                   ctx.train_dir / "weights.png", f"{ctx.task.id}: weights converge to the prices",
                   xlabel="update", ylabel="weight (price)", hlines=TRUE_PRICES)
    ctx.tracker.log_artifact(ctx.model_dir / "weights.json", "model")
    ctx.tracker.log_artifact(png, "plots")


def gradient_descent(x: float, eta: float, steps: int) -> np.ndarray:
    """Fig 2.10 (lines 360-367): minimise f(x) = x^2 / 2, whose derivative is f'(x) = x, by x <- x - eta f'(x)."""
    xs = [x]
    for _ in range(steps):
        x = x - eta * x
        xs.append(x)
    return np.asarray(xs)


def gradient_descent_png(ctx: Context, eta: float = 0.3, steps: int = 8):
    """The book's figure 2.10 with data: the curve and the steps taken from x = 1 and from x = -1."""
    grid = np.linspace(-1.2, 1.2, 121)
    series = {"f(x) = x^2 / 2": (grid, grid**2 / 2)}
    for x0 in (1.0, -1.0):
        xs = gradient_descent(x0, eta, steps)
        series[f"steps from x = {x0:+g} (eta {eta})"] = (xs, xs**2 / 2)
    return line_png(series, ctx.train_dir / "gradient_descent.png", "gradient descent on f(x) = x^2 / 2",
                    xlabel="x", ylabel="f(x)")


def train_perceptron_batch(ctx: Context) -> dict[str, Any]:
    s = _perceptron_settings(ctx.params, ctx.task.id, "passes")
    ws, trajectory = perceptron_batch(train, s["eta"], s["ws"], s["passes"])
    _save_weights(ctx, ws, trajectory)
    ctx.tracker.log_artifact(gradient_descent_png(ctx), "plots")
    return {"train_examples": len(train), "epochs": s["passes"]}


def train_perceptron_online(ctx: Context) -> dict[str, Any]:
    s = _perceptron_settings(ctx.params, ctx.task.id, "epochs")
    ws, trajectory = perceptron_online(train, s["eta"], s["ws"], s["epochs"])
    first_step = trajectory[1]
    # the book's discussion: the same algorithm when every meal has the same proportions
    proportions = ctx.params.get("collinear_proportions", [1, 2, 1])
    collinear = collinear_meals(proportions, [1, 2, 3, 1.5, 2.5])
    ws_c, traj_c = perceptron_online(collinear, s["eta"], s["ws"], s["epochs"])
    _save_weights(ctx, ws, trajectory, {"first_step": first_step, "collinear_ws": ws_c})
    err = lambda tr: [float(np.abs(np.asarray(w) - TRUE_PRICES).max()) for w in tr]  # noqa: E731
    png = line_png({"five varied meals": (np.arange(len(trajectory)), err(trajectory)),
                    f"meals in proportions {proportions}": (np.arange(len(traj_c)), err(traj_c))},
                   ctx.train_dir / "collinear.png", "online GD: largest price error per update",
                   xlabel="update", ylabel="max |w - true price|", logy=True)
    ctx.tracker.log_artifact(png, "plots")
    return {"train_examples": len(train), "epochs": s["epochs"]}


def evaluate_perceptron(ctx: Context, book: list[float]) -> dict[str, Any]:
    saved = read_json(ctx.model_dir / "weights.json")
    ws = saved["ws"]
    metrics: dict[str, Any] = {
        "matches_book": float(ws == book),
        "max_abs_error_vs_true_prices": float(np.abs(np.asarray(ws) - TRUE_PRICES).max()),
        "w_side": ws[0], "w_bun": ws[1], "w_drink": ws[2],
    }
    if "first_step" in saved:
        metrics["first_step_matches_book"] = float(saved["first_step"] == [70.0, 100.0, 80.0])
        metrics["collinear_max_abs_error"] = float(np.abs(np.asarray(saved["collinear_ws"]) - TRUE_PRICES).max())
    write_json(ctx.eval_dir / "weights.json", {"ours": ws, "book": book})
    return write_metrics(ctx, metrics, keep=metrics)  # checks against the book, no split


# ------------------------------------------------------------------------------------------------------------
# 2.1 XOR: a hidden layer h = max(0, W^T x + c), y = w^T h + b with the book's hand-set weights
# ------------------------------------------------------------------------------------------------------------

X_XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y_XOR = np.array([0, 1, 1, 0], dtype=np.float64)
W = np.array([[1, 1], [1, 1]], dtype=np.float64)
c = np.array([0, -1], dtype=np.float64)
w = np.array([1, -2], dtype=np.float64)
b = 0.0


def xor_network(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.maximum(0, x @ W + c)
    return h, h @ w + b


def train_xor(ctx: Context) -> dict[str, Any]:
    write_json(ctx.model_dir / "weights.json", {"W": W.tolist(), "c": c.tolist(), "w": w.tolist(), "b": b})
    h, _ = xor_network(X_XOR)
    colors = {0.0: "white", 1.0: "black"}
    scatter_png(X_XOR, [colors[v] for v in Y_XOR], ctx.train_dir / "input_space.png",
                "XOR in the input space (fig 2.2a)", ("x1", "x2"))
    scatter_png(h, [colors[v] for v in Y_XOR], ctx.train_dir / "hidden_space.png",
                "XOR in the hidden space (fig 2.3)", ("h1", "h2"))
    for name in ("input_space.png", "hidden_space.png"):
        ctx.tracker.log_artifact(ctx.train_dir / name, "plots")
    return {"train_examples": 4, "epochs": 0}


def evaluate_xor(ctx: Context) -> dict[str, Any]:
    h, y = xor_network(X_XOR)
    metrics = {
        "hidden_matches_book": float(h.tolist() == [[0, 0], [1, 0], [1, 0], [2, 1]]),
        "accuracy": float(np.mean(y == Y_XOR)),
    }
    write_json(ctx.eval_dir / "outputs.json", {"x": X_XOR.tolist(), "h": h.tolist(), "y": y.tolist()})
    return write_metrics(ctx, metrics, split="train", keep=["hidden_matches_book"])  # XOR's 4 points


# ------------------------------------------------------------------------------------------------------------
# 2.4 Backpropagation by hand: a 2-H-1 sigmoid network, E = 1/2 sum (t - y)^2, on XOR
# ------------------------------------------------------------------------------------------------------------


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def init_mlp(hidden: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    return {"W1": rng.normal(0, 1, (2, hidden)), "b1": np.zeros(hidden),
            "W2": rng.normal(0, 1, (hidden, 1)), "b2": np.zeros(1)}


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = sigmoid(x @ p["W1"] + p["b1"])
    return h, sigmoid(h @ p["W2"] + p["b2"])


def loss(p: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray) -> float:
    return float(0.5 * np.sum((t.reshape(-1, 1) - forward(p, x)[1]) ** 2))


def backprop(p: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """dE/dθ by the chain rule, layer by layer, as section 2.4 derives it."""
    h, y = forward(p, x)
    delta_out = -(t.reshape(-1, 1) - y) * y * (1 - y)  # dE/dz2
    delta_hidden = (delta_out @ p["W2"].T) * h * (1 - h)  # dE/dz1
    return {"W2": h.T @ delta_out, "b2": delta_out.sum(0), "W1": x.T @ delta_hidden, "b1": delta_hidden.sum(0)}


def train_backprop(ctx: Context) -> dict[str, Any]:
    where = ctx.task.id
    eta = require(ctx.params, "eta", float, where)
    epochs = ctx.run.epochs(require(ctx.params, "epochs", int, where))
    p = init_mlp(require(ctx.params, "hidden", int, where), ctx.run.seed)
    losses = []
    for _ in range(epochs):
        grads = backprop(p, X_XOR, Y_XOR)
        p = {k: v - eta * grads[k] for k, v in p.items()}
        losses.append(loss(p, X_XOR, Y_XOR))
    write_json(ctx.model_dir / "weights.json", {k: v.tolist() for k, v in p.items()})
    every = max(1, epochs // 200)
    write_text(ctx.train_dir / "history.csv",
               "epoch,train_loss\n" + "".join(f"{i + 1},{losses[i]:.6g}\n" for i in range(0, epochs, every)))
    png = line_png({"E = 1/2 sum (t - y)^2": (np.arange(1, epochs + 1), losses)}, ctx.train_dir / "loss.png",
                   "backpropagation on XOR", xlabel="epoch", ylabel="loss", logy=True)
    ctx.tracker.log_artifact(png, "plots")
    return {"train_examples": 4, "epochs": epochs}


def autodiff_gradients(p: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray,
                       backend: str | None = None) -> dict[str, np.ndarray]:
    """The same gradients by automatic differentiation, in float64, for the check: TensorFlow's GradientTape,
    ``jax.grad`` or ``torch.autograd``, whichever is the run's Keras backend (``backend``, by default
    ``KERAS_BACKEND``, which ``run.backend`` sets; TensorFlow when unset)."""
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def error(vs):
            h = jax.nn.sigmoid(x @ vs["W1"] + vs["b1"])
            y = jax.nn.sigmoid(h @ vs["W2"] + vs["b2"])
            return 0.5 * jnp.sum((t.reshape(-1, 1) - y) ** 2)

        x64 = jax.enable_x64(True) if hasattr(jax, "enable_x64") else jax.experimental.enable_x64()
        with x64:  # float64 here only, not for the rest of the process
            grads = jax.grad(error)({k: jnp.asarray(v, dtype=jnp.float64) for k, v in p.items()})
            return {k: np.asarray(g) for k, g in grads.items()}
    if backend == "torch":
        import torch

        vs = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
        xt, tt = torch.tensor(x, dtype=torch.float64), torch.tensor(t.reshape(-1, 1), dtype=torch.float64)
        h = torch.sigmoid(xt @ vs["W1"] + vs["b1"])
        y = torch.sigmoid(h @ vs["W2"] + vs["b2"])
        (0.5 * torch.sum((tt - y) ** 2)).backward()
        return {k: v.grad.numpy() for k, v in vs.items()}
    import tensorflow as tf

    vs = {k: tf.Variable(v, dtype=tf.float64) for k, v in p.items()}
    with tf.GradientTape() as tape:
        h = tf.sigmoid(x @ vs["W1"] + vs["b1"])
        y = tf.sigmoid(h @ vs["W2"] + vs["b2"])
        e = 0.5 * tf.reduce_sum((t.reshape(-1, 1) - y) ** 2)
    return {k: g.numpy() for k, g in zip(vs, tape.gradient(e, list(vs.values())), strict=True)}


def evaluate_backprop(ctx: Context) -> dict[str, Any]:
    p = {k: np.asarray(v, dtype=np.float64) for k, v in read_json(ctx.model_dir / "weights.json").items()}
    ours, theirs = backprop(p, X_XOR, Y_XOR), autodiff_gradients(p, X_XOR, Y_XOR)
    start = init_mlp(require(ctx.params, "hidden", int, ctx.task.id), ctx.run.seed)
    ours0, theirs0 = backprop(start, X_XOR, Y_XOR), autodiff_gradients(start, X_XOR, Y_XOR)
    diff = max(float(np.abs(a[k] - bb[k]).max()) for a, bb in ((ours, theirs), (ours0, theirs0)) for k in a)
    _, y = forward(p, X_XOR)
    metrics = {"accuracy": float(np.mean((y.ravel() > 0.5) == Y_XOR)), "loss": loss(p, X_XOR, Y_XOR),
               "max_abs_gradient_difference_vs_autodiff": diff}
    write_json(ctx.eval_dir / "outputs.json", {"y": y.ravel().tolist()})
    return write_metrics(ctx, metrics, split="train", keep=["max_abs_gradient_difference_vs_autodiff"])


PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch02_xor": {},
    "ch02_perceptron_batch": P.keys("eta", "initial_weights", passes=P.POSITIVE_INT),
    "ch02_perceptron_online": P.keys("eta", "initial_weights", "epochs",
                                     collinear_proportions=P.List(P.Float(0.0, low_open=True))),
    "ch02_backprop": P.keys("eta", "epochs", hidden=P.POSITIVE_INT),
}

TASKS = (
    Task("ch02_xor", "2.1 (lines 222-238)", "XOR with a hand-set hidden layer", None, "train_accuracy",
         train_xor, evaluate_xor, Reference(1.0, "book 2.1: h={(0,0),(1,0),(1,0),(2,1)}, y={0,1,1,0}"),
         notes="the hidden layer's values equal the book's (hidden_matches_book)", run_params=()),
    Task("ch02_perceptron_batch", "2.3.2 (lines 378-445)", "perceptron, full-batch gradient descent", None,
         "matches_book", train_perceptron_batch, lambda ctx: evaluate_perceptron(ctx, BOOK_BATCH_RESULT),
         Reference(1.0, "book 2.3.2 prints [149.99854969104385, 50.00249323213941, 99.9987175643975]"),
         notes="1.0 means the weights equal the book's printed float64 values to every digit", run_params=()),
    Task("ch02_perceptron_online", "2.3.2 (lines 449-491)", "perceptron, online gradient descent", None,
         "matches_book", train_perceptron_online, lambda ctx: evaluate_perceptron(ctx, BOOK_ONLINE_RESULT),
         Reference(1.0, "book 2.3.2 prints [149.9999854696171, 50.00004609118093, 99.99997795027406]"),
         notes="also checks the first step [70, 100, 80]; collinear_max_abs_error is the book's SGD "
         "discussion: meals in fixed proportions never reveal the prices", run_params=()),
    Task("ch02_backprop", "2.4 (lines 514-572)", "backpropagation in NumPy, checked against autodiff", None,
         "train_accuracy", train_backprop, evaluate_backprop,
         Reference(None, "no number in the book; gradients must equal autodiff's (the run's Keras backend)"),
         notes="max_abs_gradient_difference_vs_autodiff is the gradient check on the start and final weights",
         run_params=("seed",)),
)
