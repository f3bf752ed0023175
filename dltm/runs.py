"""What a training run leaves in ``models/<name>/``, and the check that a folder comes from one run.

Kept free of Keras so that the stages of tasks written in NumPy (chapter 2) never import it: the train stage
stamps every sub-model with the run's ``training_run_id``, the evaluate stage checks the stamps.
"""

from __future__ import annotations

from pathlib import Path

from dltm.cli import MissingOutputError, UserError
from dltm.io import read_json, write_json

MODEL_FILE = "model.keras"
DATA_INFO_FILE = "data_info.json"
RUN_FILE = "run.json"
TRAINING_RUN_KEY = "training_run_id"


class MixedRunError(UserError):
    """A model folder whose sub-models do not all come from the training run its run.json records."""


def sub_model_folders(model_dir: Path) -> list[Path]:
    """The folders under ``model_dir`` (itself included) that hold a model or a data_info.json, hidden ones
    (a writer's scratch) left out."""
    found = {p.parent for name in (MODEL_FILE, DATA_INFO_FILE) for p in model_dir.rglob(name)}
    return sorted(f for f in found if not any(part.startswith(".") for part in f.relative_to(model_dir).parts))


def stamp_training_run(model_dir: Path, run_id: str) -> None:
    """Write ``run_id`` into the data_info.json of every sub-model of ``model_dir`` (creating one beside a
    model that has none, except at the top, where run.json holds the id)."""
    for folder in sub_model_folders(model_dir):
        path = folder / DATA_INFO_FILE
        if path.is_file():
            write_json(path, {**read_json(path), TRAINING_RUN_KEY: run_id})
        elif folder != model_dir:
            write_json(path, {TRAINING_RUN_KEY: run_id})


def check_training_run(model_dir: Path, hint: str) -> str:
    """The training run id of ``model_dir/run.json``, after checking that every sub-model's data_info.json
    carries it. Raises :class:`MissingOutputError` without run.json and :class:`MixedRunError` (with ``hint``,
    the command that retrains) when the folder has no id or mixes models of different runs."""
    run_file = model_dir / RUN_FILE
    if not run_file.is_file():
        raise MissingOutputError(f"{run_file}: missing; {hint}")
    run_id = read_json(run_file).get(TRAINING_RUN_KEY)
    if not run_id:
        raise MixedRunError(f"{run_file}: no {TRAINING_RUN_KEY} (written by an older version, or not by "
                            f"stages.train), so its models cannot be checked to come from one run; {hint}")
    for folder in sub_model_folders(model_dir):
        path = folder / DATA_INFO_FILE
        if not path.is_file():
            if folder == model_dir:
                continue
            got = None
        else:
            got = read_json(path).get(TRAINING_RUN_KEY)
        if got != run_id:
            raise MixedRunError(f"{folder}: from another training run ({TRAINING_RUN_KEY} {got}) than "
                                f"{run_file} ({run_id}): the folder mixes the models of two runs; {hint}")
    return run_id
