import yaml

from dltm import tasks
from dltm.params import load

from .conftest import REPO


def test_tasks_params_and_dvc_yaml_agree():
    registry = tasks.all_tasks()
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    in_dvc = {}
    for var in dvc["vars"]:
        in_dvc.update(var.get("tasks", {}))
    assert set(in_dvc) == set(registry)
    params = load(REPO / "params.yaml")
    for task_id, task in registry.items():
        assert task_id in params, f"params.yaml has no section {task_id}"
        assert in_dvc[task_id]["module"] == task.experiment
        if task.dataset:
            assert in_dvc[task_id]["data"] == f"data/prepared/{task.dataset}"
        assert task.section and task.metric and task.reference is not None


def test_task_ids_are_those_of_tasks_md():
    md = REPO.parent / "shared" / "book" / "TASKS.md"
    if md.is_file():
        text = md.read_text(encoding="utf-8")
        for task_id in tasks.all_tasks():
            assert f"`{task_id}`" in text
