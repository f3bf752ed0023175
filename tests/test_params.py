import pytest

from dltm.params import ParamError, RunSettings, load, section

RUN = {"seed": 1, "max_train_examples": 0, "max_eval_examples": 0, "max_epochs": 0, "mixed_precision": False,
       "distribution": "auto"}


def test_repository_params_parse():
    params = load()
    run = RunSettings.from_params(params)
    assert run.seed == params["run"]["seed"]
    assert section(params, "prepare.mr")["split_seed"] == 10


def test_caps():
    run = RunSettings.from_params({"run": {**RUN, "max_epochs": 2, "max_train_examples": 100}})
    assert run.epochs(10) == 2 and run.epochs(1) == 1
    assert run.cap_train(9662) == 100 and run.cap_eval(50) == 50
    assert RunSettings.from_params({"run": RUN}).epochs(10) == 10


@pytest.mark.parametrize("bad, match", [
    ({"seed": "one"}, r"run\.seed should be an integer, got 'one'"),
    ({"max_epochs": -1}, r"run\.max_epochs should be an integer >= 0, got -1"),
    ({"distribution": "tpu"}, r"run\.distribution should be one of auto, default, mirrored, one_device"),
    ({"mixed_precision": 1}, r"run\.mixed_precision should be true or false, got 1"),
    ({"typo_key": 1}, r"unknown key run\.typo_key; the keys of run are: seed, max_train_examples"),
])
def test_bad_run_settings_name_the_key(bad, match):
    with pytest.raises(ParamError, match=match):
        RunSettings.from_params({"run": {**RUN, **bad}})


def test_missing_section_names_it():
    with pytest.raises(ParamError, match=r"no section 'prepare\.imdb'"):
        section({"prepare": {"mr": {}}}, "prepare.imdb")


# ---- issue 11, items 20-22: every section checked before anything runs, numbers read as DVC reads them ----

import shutil  # noqa: E402

import keras  # noqa: E402

from dltm import cli, tasks  # noqa: E402
from dltm import params as P  # noqa: E402
from stages import train  # noqa: E402

from .conftest import REPO  # noqa: E402


def test_every_task_declares_exactly_its_params_yaml_keys():
    params = load(REPO / "params.yaml")
    for task in tasks.all_tasks().values():
        sec = section(params, task.id)
        assert set(task.params) == set(sec), task.id
        P.validate(task.id, sec, task.params)  # the committed values pass their specs


def test_named_choices_are_what_keras_accepts():
    from dltm.training import optimizer
    from pipelines.ch04_feedforward import ACTIVATIONS, INITIALIZERS

    for name in P.OPTIMIZERS:
        assert isinstance(optimizer(name), keras.optimizers.Optimizer)
    for name in ACTIVATIONS:
        assert callable(keras.activations.get(name))
    for name in INITIALIZERS:
        assert keras.initializers.get(name) is not None


def stage_in(tmp_path, monkeypatch, capsys, edit: dict, argv: list[str]) -> tuple[int, str]:
    """Run ``python -m stages.train <argv>`` as the CLI does, on params.yaml with the task's section updated by
    ``edit`` (as ``dvc exp run -S [+]<task>.<key>=<value>`` writes it); returns (exit status, stderr)."""
    import yaml

    params = load(REPO / "params.yaml")
    if edit:
        params[argv[0]].update(edit)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    monkeypatch.chdir(tmp_path)
    status = cli.run(train.main, argv)
    return status, capsys.readouterr().err


@pytest.mark.parametrize("edit, argv, message", [
    # item 20: a typo of `epochs`, added with `dvc exp run -S +ch07_cnn1d.epoch=5`
    ({"epoch": 5}, ["ch07_cnn1d"], "params.yaml: unknown key ch07_cnn1d.epoch; the keys of ch07_cnn1d are: "
                                   "vocab_size, dropout, optimizer, learning_rate, epochs,"),
    ({"embedsize": 5}, ["ch07_kim2014", "--variant", "rand"], "unknown key ch07_kim2014.embedsize"),
    ({"lerning_rate": 0.1}, ["ch02_xor"], "unknown key ch02_xor.lerning_rate; the keys of ch02_xor are: (none)"),
    # item 21: a misspelt choice, out-of-range numbers, a wrong type
    ({"optimizer": "adamm"}, ["ch07_cnn1d"], "params.yaml: ch07_cnn1d.optimizer should be one of sgd, momentum, "
                                             "nesterov, adagrad, rmsprop, adam, adamw, nadam"),
    ({"dropout": 1.5}, ["ch07_cnn1d"], "params.yaml: ch07_cnn1d.dropout should be a number in [0, 1), got 1.5"),
    ({"kernel_size": -1}, ["ch07_cnn1d"], "params.yaml: ch07_cnn1d.kernel_size should be an integer >= 1, got -1"),
    ({"filter_sizes": [3, 0]}, ["ch07_kim_cnn"], "ch07_kim_cnn.filter_sizes[1] should be an integer >= 1, got 0"),
    ({"epochs": "ten"}, ["ch09_lstm_sentiment"], "ch09_lstm_sentiment.epochs should be an integer >= 1, got 'ten'"),
    ({"masking": 1}, ["ch09_lstm_sentiment"], "ch09_lstm_sentiment.masking should be true or false, got 1"),
    ({"learning_rate": float("nan")}, ["ch03_sine_fit"], "ch03_sine_fit.learning_rate should be null or a number "
                                                         "> 0, got nan"),
    ({"model": {"dropout": 2.0}}, ["ch04_optimizer_comparison"],
     "ch04_optimizer_comparison.model.dropout should be a number in [0, 1), got 2.0"),
    ({"protocol": "loo"}, ["ch07_kim2014", "--variant", "rand"], "ch07_kim2014.protocol should be one of cv, holdout"),
    ({}, ["ch07_nope"], "unknown task 'ch07_nope'; known: ch02_backprop, ch02_perceptron_batch"),
])
def test_a_bad_param_is_one_line_naming_file_key_and_allowed_values(tmp_path, monkeypatch, capsys, edit, argv,
                                                                    message):
    status, err = stage_in(tmp_path, monkeypatch, capsys, edit, argv)
    assert status == cli.EXIT_USER_ERROR
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err


def test_a_duplicate_key_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "params.yaml").write_text("run: {seed: 1}\nch02_xor: {}\nch02_xor: {}\n")
    monkeypatch.chdir(tmp_path)
    assert cli.run(train.main, ["ch02_xor"]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: params.yaml: not valid YAML") and "ch02_xor" in err and err.count("\n") == 1


def test_nested_sections_are_checked(tmp_path):
    spec = pipelines_params("ch04_optimizer_comparison")
    with pytest.raises(ParamError, match=r"ch04_optimizer_comparison\.model\.dropout should be a number in "
                                         r"\[0, 1\), got 2\.0"):
        P.validate("ch04_optimizer_comparison", {"model": {"dropout": 2.0}}, spec)
    with pytest.raises(ParamError, match=r"unknown key ch04_optimizer_comparison\.model\.dropuot"):
        P.validate("ch04_optimizer_comparison", {"model": {"dropuot": 0.2}}, spec)
    with pytest.raises(ParamError, match=r"optimizers\[1\] should be one of sgd"):
        P.validate("ch04_optimizer_comparison", {"optimizers": ["adam", "adamm"]}, spec)


def pipelines_params(task_id: str) -> dict:
    return tasks.get(task_id).params


def test_numbers_are_read_as_dvc_reads_them(tmp_path):
    """Item 22: YAML 1.2, as DVC's ruamel.yaml reads params.yaml (PyYAML's YAML 1.1 read `2e-2` as a string)."""
    path = tmp_path / "params.yaml"
    path.write_text("t:\n  learning_rate: 2e-2\n  big: 1e3\n  tiny: 5E-4\n  dropout: .5\n  switch: true\n")
    sec = section(load(path), "t")
    assert sec == {"learning_rate": 0.02, "big": 1000.0, "tiny": 0.0005, "dropout": 0.5, "switch": True}
    spec = P.keys("learning_rate", "dropout", big=P.POSITIVE_INT, tiny=P.Float(), switch=P.BOOL)
    with pytest.raises(ParamError, match=r"t\.big should be an integer >= 1, got 1000\.0"):
        P.validate("t", sec, spec)
    assert P.validate("t", {k: v for k, v in sec.items() if k != "big"}, spec)["learning_rate"] == 0.02


def test_dvc_reads_the_same_numbers(tmp_path):
    from dvc.utils.serialize import load_yaml

    path = tmp_path / "params.yaml"
    path.write_text("t:\n  learning_rate: 2e-2\n  n: 1_000\n  flag: yes\n  none: null\n")
    assert load(path) == load_yaml(str(path))


def test_a_broken_params_file_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "params.yaml").write_text("run: {seed: 1\n")
    monkeypatch.chdir(tmp_path)
    assert cli.run(train.main, ["ch02_xor"]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: params.yaml: not valid YAML") and err.count("\n") == 1


def test_every_prepare_section_is_declared_and_checked(tmp_path, monkeypatch, capsys):
    from stages import prepare
    from stages.prepare import PREPARE_PARAMS, PREPARERS

    params = load(REPO / "params.yaml")
    assert set(PREPARE_PARAMS) == set(PREPARERS)
    for dataset, spec in PREPARE_PARAMS.items():
        assert set(spec) == set(section(params, f"prepare.{dataset}")), dataset
    params["prepare"]["mr"]["dev_size"] = -5
    params["prepare"]["custom"]["testsize"] = 0.2
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    for argv, message in ((["mr"], "params.yaml: prepare.mr.dev_size should be an integer >= 1, got -5"),
                          (["custom"], "params.yaml: unknown key prepare.custom.testsize; the keys of prepare.custom "
                                       "are: path, text_field")):
        assert cli.run(prepare.main, argv) == cli.EXIT_USER_ERROR
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
