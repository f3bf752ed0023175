"""Trained models as MLflow Models: the keras flavor and a raw-text pyfunc per run, the Model Registry and its
champion, predict on runs:/ and models:/ URIs, a fresh process and a model server (127.0.0.1 only)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest

from dltm import cli
from dltm.data import prepare_mr
from dltm.inference import LanguageModel, TextClassifier, sample_words
from dltm.io import read_json
from dltm.mlflow_models import (
    CHAMPION,
    METRIC_TAG,
    VALUE_TAG,
    held_out_metric,
    register,
    update_champion,
)
from dltm.tasks import get, lower_is_better
from dltm.tracking import Tracker
from pipelines import ch08_rnn as ch08
from stages import evaluate, predict

from .conftest import REPO, run_task, synthetic_mr, write_corpora

MR_PREP = {"encoding": "cp1252", "split_seed": 10, "dev_size": 60, "cv_folds": 3, "cv_seed": 10}
TINY_KIM = {"ch07_kim_cnn.filter_nums": 8, "ch07_kim_cnn.embed_size": 16, "ch07_kim_cnn.epochs": 6,
            "ch07_kim_cnn.batch_size": 16}
TEXTS = ["superb brilliant charming film", "awful boring tedious mess", "a gorgeous , witty film"]


@pytest.fixture(scope="module")
def kim(tmp_path_factory):
    """ch07_kim_cnn trained and evaluated on synthetic MR in a folder of its own, with its MLflow store there; the
    working directory and MLFLOW_TRACKING_URI stay so for the module's tests."""
    root = tmp_path_factory.mktemp("kim")
    synthetic_mr(root / "data" / "raw" / "mr", n_per_class=150)
    prepare_mr(root / "data" / "raw" / "mr", root / "data" / "prepared" / "mr", MR_PREP)
    with pytest.MonkeyPatch.context() as mp:
        metrics = run_task(root, mp, "ch07_kim_cnn", TINY_KIM)
        uri = os.environ["MLFLOW_TRACKING_URI"]
        mlflow.set_tracking_uri(uri)
        workspace = root / "models" / "ch07_kim_cnn"
        yield SimpleNamespace(root=root, metrics=metrics, uri=uri, client=mlflow.MlflowClient(uri),
                              workspace=workspace, run_id=read_json(workspace / "run.json")["mlflow_run_id"],
                              expected=predict.predict(workspace, TEXTS))


def logged_models(client, run_id: str) -> dict[str, str]:
    run = client.get_run(run_id)
    return {client.get_logged_model(o.model_id).name: o.model_id for o in run.outputs.model_outputs}


def test_the_synthetic_task_learned(kim):
    """Without it the comparisons below would compare coin flips."""
    assert kim.metrics["test_accuracy"] > 0.8
    assert [label for label, _ in kim.expected[:2]] == ["pos", "neg"]


def test_a_run_logs_a_keras_model_with_signature_and_example_and_a_raw_text_model(kim):
    ids = logged_models(kim.client, kim.run_id)
    assert set(ids) == {"model", "text_model"}
    info = mlflow.models.get_model_info(f"runs:/{kim.run_id}/model")
    doc_length = read_json(kim.workspace / "data_info.json")["doc_length"]
    (inputs,), (outputs,) = info.signature.inputs.inputs, info.signature.outputs.inputs
    assert (inputs.type, inputs.shape) == (np.dtype("int32"), (-1, doc_length))
    assert (outputs.type, outputs.shape) == (np.dtype("float32"), (-1, 1))
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{kim.run_id}/model"))
    example = json.loads((local / "input_example.json").read_text())
    assert np.asarray(example).shape == (1, doc_length)
    saved = local / "data" / "model.keras"  # without optimizer state: a third of the workspace's Adam model
    assert saved.stat().st_size < 0.5 * (kim.workspace / "model.keras").stat().st_size

    keras_model = mlflow.keras.load_model(f"runs:/{kim.run_id}/model")
    clf = TextClassifier(kim.workspace)
    x = clf.encode(TEXTS)
    np.testing.assert_allclose(keras_model.predict(x, verbose=0), clf.model.predict(x, verbose=0), rtol=1e-6)
    text = mlflow.pyfunc.load_model(f"runs:/{kim.run_id}/text_model")
    assert text.metadata.get_input_schema().to_dict() == [{"type": "string", "required": True}]
    got = text.predict(TEXTS)
    assert list(got["label"]) == [label for label, _ in kim.expected]
    np.testing.assert_allclose(got["probability"], [p for _, p in kim.expected], rtol=1e-6)
    assert [sorted(p) for p in got["probabilities"]] == [["neg", "pos"]] * 3
    assert all(abs(sum(p.values()) - 1) < 1e-6 for p in got["probabilities"])
    with pytest.raises(mlflow.exceptions.MlflowException, match="text 2: empty text"):
        text.predict(["a film", " "])


def test_evaluate_registers_one_version_per_run_with_its_metrics_and_params(kim, monkeypatch):
    versions = kim.client.search_model_versions("name = 'ch07_kim_cnn'")
    assert [(str(v.version), v.run_id) for v in versions] == [("1", kim.run_id)]
    assert str(kim.client.get_model_version_by_alias("ch07_kim_cnn", CHAMPION).version) == "1"
    key, value = held_out_metric(get("ch07_kim_cnn").metric, kim.metrics)
    assert versions[0].tags[METRIC_TAG] == key == "test_accuracy"
    assert float(versions[0].tags[VALUE_TAG]) == value == kim.metrics["test_accuracy"]
    logged = kim.client.get_logged_model(logged_models(kim.client, kim.run_id)["text_model"])
    assert versions[0].source == f"models:/{logged.model_id}"
    assert logged.params["ch07_kim_cnn.filter_nums"] == "8" and logged.params["run.seed"] == "1"
    assert {m.key: m.value for m in logged.metrics}["test_accuracy"] == value
    # the logged model's page shows it registered (the tag mlflow.register_model writes)
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": "ch07_kim_cnn", "version": "1"}]

    assert evaluate.main(["ch07_kim_cnn"]) == 0  # the same run again: its version, not a new one
    assert [str(v.version) for v in kim.client.search_model_versions("name = 'ch07_kim_cnn'")] == ["1"]
    again = kim.client.get_logged_model(logged.model_id)
    assert json.loads(again.tags["mlflow.modelVersions"]) == [{"name": "ch07_kim_cnn", "version": "1"}]

    def down(*args, **kwargs):
        raise ConnectionError("registry down")

    monkeypatch.setattr(mlflow.MlflowClient, "search_model_versions", down)
    (kim.root / "metrics" / "ch07_kim_cnn.json").unlink()
    with pytest.warns(UserWarning, match=r"registering ch07_kim_cnn \(ConnectionError: registry down\)"):
        assert evaluate.main(["ch07_kim_cnn"]) == 0  # a failed registration costs only itself
    assert read_json(kim.root / "metrics" / "ch07_kim_cnn.json")["test_accuracy"] == kim.metrics["test_accuracy"]


def test_a_run_without_a_top_level_model_registers_nothing(kim):
    with Tracker("ch99", "no_model") as tr:
        assert register(tr, "ch99_nothing", "accuracy", {"test_accuracy": 0.9}) is None
    assert not tr.failures
    assert kim.client.search_registered_models("name = 'ch99_nothing'") == []


@pytest.mark.parametrize("metric, values, champion", [("test_accuracy", [0.7, 0.8, 0.8, 0.75], "2"),
                                                       ("test_perplexity", [120.0, 90.0, 95.0, 90.0], "2"),
                                                       ("test_bits_per_character", [2.1, 1.9, 2.5, 1.8], "4")])
def test_the_champion_follows_the_best_test_metric_either_way(kim, metric, values, champion):
    name = f"champion_{metric}"
    source = logged_models(kim.client, kim.run_id)["model"]
    kim.client.create_registered_model(name)
    for value in values:
        v = kim.client.create_model_version(name, f"models:/{source}", model_id=source)
        kim.client.set_model_version_tag(name, v.version, METRIC_TAG, metric)
        kim.client.set_model_version_tag(name, v.version, VALUE_TAG, repr(value))
        update_champion(kim.client, name, metric)
    assert str(kim.client.get_model_version_by_alias(name, CHAMPION).version) == champion
    tied = [str(i) for i, v in enumerate(values, 1) if v == values[int(champion) - 1] and str(i) != champion]
    if tied:  # an equal version does not take the alias from the champion, whichever it is
        kim.client.set_registered_model_alias(name, CHAMPION, tied[0])
        assert update_champion(kim.client, name, metric) == tied[0]


def test_metric_names_and_directions():
    assert held_out_metric("accuracy", {"accuracy": 0.7}) == ("test_accuracy", 0.7)
    assert held_out_metric("accuracy", {"test_accuracy": 0.7, "accuracy": 0.1}) == ("test_accuracy", 0.7)
    assert held_out_metric("test_perplexity", {"test_perplexity": 91.0}) == ("test_perplexity", 91.0)
    assert held_out_metric("lstm_accuracy", {"lstm_accuracy_mean": 0.7}) is None
    assert held_out_metric("accuracy", {"accuracy": float("nan")}) is None
    assert [lower_is_better(m) for m in ("test_perplexity", "bits_per_character", "test_loss", "test_mse",
                                         "val_cross_entropy", "test_mse_nn", "train_mse_to_sine")] == [True] * 7
    # whole words only: no metric that merely contains "mse" or "loss" inside another word
    assert [lower_is_better(m) for m in ("test_accuracy", "test_f1_macro", "accuracy_mean", "test_glossary_f1",
                                         "test_bleu")] == [False] * 5


def test_predict_takes_a_task_a_runs_uri_or_a_models_uri(kim, capsys):
    capsys.readouterr()
    assert predict.main(["ch07_kim_cnn", *TEXTS]) == 0
    want = capsys.readouterr().out
    for uri in ("models:/ch07_kim_cnn@champion", "models:/ch07_kim_cnn/1", f"runs:/{kim.run_id}/text_model"):
        assert predict.main([uri, *TEXTS]) == 0
        assert capsys.readouterr().out == want, uri
    for argv, expected in [
        (["models:/ch07_nope@champion", "x"], f"error: models:/ch07_nope@champion: cannot load it from {kim.uri} ("),
        ([f"runs:/{kim.run_id}/model", "a film"], f"error: runs:/{kim.run_id}/model: not a text classifier's "
                                                  f"text_model (its flavors: keras, python_function)"),
        (["models:/ch07_kim_cnn@champion", "a film", "  "], "error: text 2: empty text, nothing to classify"),
        (["models:/ch07_kim_cnn@champion", "zzz qqq"], "error: text 1: no word of 'zzz qqq' is in the model's"),
    ]:
        assert cli.run(predict.main, argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(expected), (argv, err)


def test_a_fresh_process_loads_the_champion_with_the_installed_package_only(kim, tmp_path):
    script = ("import json, sys, mlflow; from pathlib import Path\n"
              "m = mlflow.pyfunc.load_model('models:/ch07_kim_cnn@champion')\n"
              f"out = m.predict({TEXTS!r})\n"
              f"print(json.dumps({{'repo_on_path': any(Path(p or '.').resolve() == Path({str(REPO)!r}) "
              "for p in sys.path), 'labels': list(out['label']), 'p': list(out['probability'])}))\n")
    env = {**os.environ, "MLFLOW_TRACKING_URI": kim.uri, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["repo_on_path"] is False
    assert got["labels"] == [label for label, _ in kim.expected]
    np.testing.assert_allclose(got["p"], [p for _, p in kim.expected], rtol=1e-5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_mlflow_models_serve_answers_a_json_request_of_texts(kim, tmp_path):
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": kim.uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # uvicorn
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 -- closed below, whatever happens
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/ch07_kim_cnn@champion",
                               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                              cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no /ping answer in 180 s: " + (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        status, body = post(f"{base}/invocations", {"inputs": TEXTS})
        assert status == 200, body
        assert [p["label"] for p in body["predictions"]] == [label for label, _ in kim.expected]
        np.testing.assert_allclose([p["probability"] for p in body["predictions"]], [p for _, p in kim.expected],
                                   rtol=1e-5)
        status, body = post(f"{base}/invocations", {"inputs": ["a film", ""]})
        assert status == 400 and "text 2: empty text" in body["message"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
        log.close()


# ---- language models: a seed text in ------------------------------------------------------------------------

CHAR_TEXT = "the cat sat on the mat. the dog sat on the log. " * 60
SMALL_CHAR = {"ch08_char_rnn.hidden_size": 32, "ch08_char_rnn.seq_length": 10, "ch08_char_rnn.stride": 3,
              "ch08_char_rnn.epochs": 3, "ch08_char_rnn.batch_size": 32, "ch08_char_rnn.learning_rate": 0.01,
              "ch08_char_rnn.sample_every": 0, "ch08_char_rnn.sample_chars": 10}


def test_the_char_rnn_text_model_continues_a_seed_text_as_generate_does(tmp_path, monkeypatch):
    (tmp_path / "data" / "raw" / "charlm").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "charlm" / "input.txt").write_text(CHAR_TEXT, encoding="utf-8")
    metrics = run_task(tmp_path, monkeypatch, "ch08_char_rnn", SMALL_CHAR)
    run_id = read_json(tmp_path / "models" / "ch08_char_rnn" / "run.json")["mlflow_run_id"]
    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert set(logged_models(client, run_id)) == {"model", "text_model"}
    info = mlflow.models.get_model_info(f"runs:/{run_id}/model")
    (inputs,) = info.signature.inputs.inputs  # any number of characters
    assert (inputs.type, inputs.shape) == (np.dtype("float32"), (-1, -1, 14))

    text_model = mlflow.pyfunc.load_model(f"models:/ch08_char_rnn@{CHAMPION}")
    assert text_model.metadata.get_params_schema().to_dict() == [
        {"name": "length", "type": "long", "default": 100, "shape": None},
        {"name": "temperature", "type": "double", "default": 0.8, "shape": None},
        {"name": "seed", "type": "long", "default": 1, "shape": None}]
    got = text_model.predict(["the dog ", "the cat "], params={"length": 15, "temperature": 0.5, "seed": 2})
    model, vocab = ch08.load_char_model(tmp_path / "models" / "ch08_char_rnn")
    want = [ch08.sample(model, vocab["ix_to_char"], seed, 15, 0.5, 2, window=10) for seed in ("the dog ", "the cat ")]
    assert list(got["generated"]) == want and list(got["seed_text"]) == ["the dog ", "the cat "]
    with pytest.raises(mlflow.exceptions.MlflowException, match="characters the model's corpus lacks: 'Q'"):
        text_model.predict(["QQ"])
    version = client.get_model_version_by_alias("ch08_char_rnn", CHAMPION)  # lower is better
    assert version.tags[METRIC_TAG] == "test_bits_per_character"
    assert float(version.tags[VALUE_TAG]) == metrics["test_bits_per_character"]


SMALL_PTB = {"ch08_ptb_lm.hidden_size": 16, "ch08_ptb_lm.num_steps": 5, "ch08_ptb_lm.batch_size": 8,
             "ch08_ptb_lm.epochs": 1, "ch08_ptb_lm.learning_rate": 0.01, "ch08_ptb_lm.stateful": True,
             "run.max_train_examples": 400, "run.max_eval_examples": 80}


def test_the_stateful_ptb_text_model_continues_seed_words(tmp_path, monkeypatch):
    write_corpora(tmp_path / "data" / "raw")
    run_task(tmp_path, monkeypatch, "ch08_ptb_lm", SMALL_PTB)
    run_id = read_json(tmp_path / "models" / "ch08_ptb_lm" / "run.json")["mlflow_run_id"]
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model"))
    assert np.asarray(json.loads((local / "input_example.json").read_text())).shape == (8, 5)  # the fixed batch
    text_model = mlflow.pyfunc.load_model(f"runs:/{run_id}/text_model")
    greedy = {"length": 6, "temperature": 0.0}
    got = text_model.predict(["King walking zzz", "paris"], params=greedy)
    lm = LanguageModel(tmp_path / "models" / "ch08_ptb_lm")
    want = " ".join(sample_words(lm.model, lm.vocab, ["king", "walking", "zzz"], 6, 0.0))
    assert got["generated"][0] == want and len(want.split()) == 6 and set(want.split()) <= set(lm.vocab)
    sampled = text_model.predict(["paris"], params={"length": 8, "seed": 3})["generated"][0]
    assert sampled == text_model.predict(["paris"], params={"length": 8, "seed": 3})["generated"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(mlflow.exceptions.MlflowException, match="the seed text is empty"):
            text_model.predict([" "])


def test_a_fresh_process_loads_a_keras_model_with_the_projects_layers(tmp_path):
    """The keras flavor of a model with dltm's layers (MeanOverTime) loads in a process that never imported dltm:
    through pyfunc (the MLmodel's loader registers the project's Keras objects) and through
    dltm.mlflow_models.load_keras_model."""
    import keras

    from dltm.mlflow_models import _log_keras
    from dltm.rnn import MeanOverTime

    inputs = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(30, 4, mask_zero=True)(inputs)
    outputs = keras.layers.Dense(2)(MeanOverTime()(x))
    model = keras.Model(inputs, outputs)
    rows = np.array([[3, 4, 5, 0, 0, 0], [7, 8, 9, 10, 11, 0]], dtype="int32")
    uri, before = f"sqlite:///{tmp_path / 'mlflow.db'}", mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=mlflow.MlflowClient(uri).create_experiment("layers")):
            info = _log_keras("model", model, rows)
    finally:
        mlflow.set_tracking_uri(before)
    assert info.flavors["python_function"]["loader_module"] == "dltm.mlflow_models"
    script = ("import json, sys, mlflow, numpy as np\n"
              f"rows = np.array({rows.tolist()!r}, dtype='int32')\n"
              "assert not any(m == 'dltm' or m.startswith('dltm.') for m in sys.modules)\n"
              f"out = mlflow.pyfunc.load_model({info.model_uri!r}).predict(rows)\n"
              "from dltm.mlflow_models import load_keras_model\n"
              f"again = load_keras_model({info.model_uri!r}).predict(rows, verbose=0)\n"
              "print(json.dumps([np.asarray(out).tolist(), np.asarray(again).tolist()]))\n")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    out, again = json.loads(done.stdout.strip().splitlines()[-1])
    expected = model.predict(rows, verbose=0)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    np.testing.assert_allclose(again, expected, rtol=1e-5)
