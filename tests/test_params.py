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
    ({"seed": "one"}, r"run\.seed should be int"),
    ({"max_epochs": -1}, r"run\.max_epochs must be >= 0"),
    ({"distribution": "tpu"}, r"run\.distribution"),
    ({"mixed_precision": 1}, r"run\.mixed_precision should be bool"),
    ({"typo_key": 1}, r"unknown key\(s\) in run: typo_key"),
])
def test_bad_run_settings_name_the_key(bad, match):
    with pytest.raises(ParamError, match=match):
        RunSettings.from_params({"run": {**RUN, **bad}})


def test_missing_section_names_it():
    with pytest.raises(ParamError, match=r"no section 'prepare\.imdb'"):
        section({"prepare": {"mr": {}}}, "prepare.imdb")
