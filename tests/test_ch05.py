import numpy as np

from dltm.params import RunSettings
from dltm.tasks import Context, get
from dltm.tracking import Tracker
from pipelines import ch05_cnn as ch05


def test_output_length_formulas():
    assert ch05.conv_length(14, 3) == 12 and ch05.conv_length(14, 3, wide=True) == 16
    assert ch05.conv_length(7, 3, s=2) == 3 and ch05.conv_length(6, 3, s=2) == 2


def test_keras_conv1d_with_fixed_weights_equals_numpy():
    f = np.array([0.2, 0.5, 0.3])
    x = np.arange(8, dtype=float)
    np.testing.assert_allclose(ch05.keras_conv1d(x, f[::-1], "valid"), np.convolve(x, f, "valid"), rtol=1e-6)
    np.testing.assert_allclose(ch05.keras_conv1d(x, f[::-1], "wide"), np.convolve(x, f, "full"), rtol=1e-6)


def test_every_worked_example_passes(tmp_path):
    task = get("ch05_conv_numeric")
    ctx = Context(task, {}, RunSettings(), Tracker("x", "y"), root=tmp_path)
    task.train(ctx)
    metrics = task.evaluate(ctx)
    assert metrics["checks_passed"] == 1.0, metrics
