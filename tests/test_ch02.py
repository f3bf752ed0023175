import numpy as np
import pytest

from dltm.params import RunSettings, load
from dltm.tasks import Context, get
from dltm.tracking import Tracker
from pipelines import ch02_basics as ch02


def test_batch_perceptron_reproduces_every_printed_digit():
    ws, trajectory = ch02.perceptron_batch(ch02.train, 0.005, [50, 50, 50], 500)
    assert ws == ch02.BOOK_BATCH_RESULT
    assert len(trajectory) == 501


def test_online_perceptron_reproduces_the_book_and_its_first_step():
    ws, trajectory = ch02.perceptron_online(ch02.train, 1 / 35.0, [50, 50, 50], 100)
    assert ws == ch02.BOOK_ONLINE_RESULT
    assert trajectory[1] == [70.0, 100.0, 80.0]  # prediction 500, error 350, delta [20, 50, 30]


def test_collinear_meals_fit_the_totals_but_not_the_prices():
    meals = ch02.collinear_meals([1, 2, 1], [1, 2, 3, 1.5, 2.5])
    ws, _ = ch02.perceptron_online(meals, 1 / 35.0, [50, 50, 50], 100)
    for xs, t in meals:
        assert abs(sum(w * x for w, x in zip(ws, xs, strict=True)) - t) < 1e-6
    assert np.abs(np.asarray(ws) - ch02.TRUE_PRICES).max() > 10


def test_xor_hidden_layer_matches_the_book():
    h, y = ch02.xor_network(ch02.X_XOR)
    assert h.tolist() == [[0, 0], [1, 0], [1, 0], [2, 1]]
    assert y.tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_backprop_gradients_equal_each_backends_autodiff(backend):
    pytest.importorskip(backend, reason=f"{backend} is not installed")
    p = ch02.init_mlp(4, seed=5)
    ours = ch02.backprop(p, ch02.X_XOR, ch02.Y_XOR)
    theirs = ch02.autodiff_gradients(p, ch02.X_XOR, ch02.Y_XOR, backend=backend)
    for k in p:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-10, atol=1e-12)
    # and a finite difference on one weight, independent of both
    eps = 1e-6
    plus = {k: v.copy() for k, v in p.items()}
    plus["W1"][0, 1] += eps
    numeric = (ch02.loss(plus, ch02.X_XOR, ch02.Y_XOR) - ch02.loss(p, ch02.X_XOR, ch02.Y_XOR)) / eps
    assert abs(numeric - ours["W1"][0, 1]) < 1e-5


@pytest.mark.parametrize("task_id", ["ch02_xor", "ch02_perceptron_batch", "ch02_perceptron_online",
                                     "ch02_backprop"])
def test_chapter_2_tasks_run_at_their_params(tmp_path, task_id):
    task = get(task_id)
    params = load()[task_id]
    ctx = Context(task, params, RunSettings(seed=1), Tracker("x", "y"), root=tmp_path)
    task.train(ctx)
    metrics = task.evaluate(ctx)
    assert metrics[task.metric] == 1.0, metrics
    if task_id == "ch02_perceptron_online":
        assert metrics["first_step_matches_book"] == 1.0 and metrics["collinear_max_abs_error"] > 10
    if task_id == "ch02_backprop":
        assert metrics["max_abs_gradient_difference_vs_autodiff"] < 1e-10
    assert list((tmp_path / "plots" / task_id / "train").glob("*.png"))


def test_gradient_descent_of_fig_2_10_moves_against_the_derivative():
    from pipelines.ch02_basics import gradient_descent

    right, left = gradient_descent(1.0, 0.3, 8), gradient_descent(-1.0, 0.3, 8)
    assert right[1] == 0.7 and left[1] == -0.7  # x - eta * f'(x), f'(x) = x
    assert np.all(np.diff(right**2 / 2) < 0) and np.allclose(right, -left) and abs(right[-1]) < 0.06
