import keras
import numpy as np
import pytest

from dltm.params import ParamError
from pipelines.ch07_text_cnn import build_cnn1d, build_kim_cnn, build_simple_classifier, kim_cnn_settings


def test_simple_classifier_matches_the_book():
    model = build_simple_classifier(vocab_size=15, max_length=4, embed_size=8)
    assert model.count_params() == 15 * 8 + 32 + 1
    assert model.output_shape == (None, 1)


def test_kim_cnn_layers_and_parameters():
    m, v, k, n = 56, 10000, 50, 10
    model = build_kim_cnn(m, vocab_size=v, embed_size=k, filter_sizes=(3, 4, 5), filter_nums=n)
    convs = sum(h * k * n + n for h in (3, 4, 5))
    assert model.count_params() == v * k + convs + 3 * n + 1
    assert model.get_layer("hidden2").output.shape == (None, 3 * n)
    assert model.get_layer("pool_4").output.shape == (None, 1, 1, n)
    out = model(np.zeros((2, m), dtype="int32"))
    assert out.shape == (2, 1)


def test_kim_cnn_100_filters_is_a_param():
    s = kim_cnn_settings({"vocab_size": 100, "embed_size": 8, "filter_sizes": [3, 4, 5],
                          "filter_nums": 100, "dropout": 0.5})
    model = build_kim_cnn(20, **s)
    assert model.get_layer("hidden2").output.shape == (None, 300)


@pytest.mark.parametrize("bad, match", [({"conv": "3d"}, "ch07_kim_cnn.conv must be 2d or 1d"),
                                        ({"filter_sizes": [3, "x"]}, "filter_sizes")])
def test_kim_cnn_settings_are_checked(bad, match):
    p = {"vocab_size": 100, "embed_size": 8, "filter_sizes": [3], "filter_nums": 2,
         "dropout": 0.5, **bad}
    with pytest.raises(ParamError, match=match):
        kim_cnn_settings(p)


def test_cnn1d_matches_keras_imdb_cnn():
    model = build_cnn1d(56, vocab_size=5000, embedding_dims=50, filters=250, kernel_size=3, hidden_dims=250)
    expected = 5000 * 50 + (3 * 50 * 250 + 250) + (250 * 250 + 250) + 251
    assert model.count_params() == expected


def test_models_survive_a_keras_file_round_trip(tmp_path):
    model = build_kim_cnn(12, vocab_size=30, embed_size=6, filter_sizes=(2, 3), filter_nums=3)
    x = np.random.RandomState(0).randint(0, 30, size=(4, 12)).astype("int32")
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
