"""What the train stage of a model with a custom training loop writes and logs, in one place.

``models/<task>/`` (``model.keras``, the task's own JSON files, ``summary.txt``) in one rename; the curves in
``plots/<task>/train/`` (``history.csv`` for ``dvc plots``, ``history.png``); to the run: the training time, the
model summary, the MLflow Models (:func:`dltm.mlflow_models.log_models`) and the curves.

Every model trained outside ``dltm.training.train_classifier`` saves through it: chapter 8's language models,
chapters 10-11's encoder-decoders (``dltm.translation.save_translator``), chapter 12's BERT, chapter 13's span
reader and chapter 14's skip-thought encoder.
"""

from __future__ import annotations

from typing import Any

from dltm.evaluation import history_png
from dltm.io import atomic_path, write_json
from dltm.tasks import Context
from dltm.training import MODEL_FILE, model_summary, write_history_csv


def save_trained(ctx: Context, model, files: dict[str, Any], history: dict[str, list[float]], seconds: float,
                 title: str, rows=None, texts: dict[str, str] | None = None,
                 metrics: dict[str, float] | None = None) -> None:
    """Write ``model`` (as ``model.keras``), ``files`` ({name: JSON-able value}) and ``texts`` ({name: UTF-8
    text}, e.g. a WordPiece vocab.txt) to ``ctx.model_dir`` in one rename, the curves ``history`` ({train_loss:
    [...], ...}; a ``learning_rate`` schedule goes to the CSV, not the picture) to ``ctx.train_dir``, and log them
    to ``ctx.tracker`` with ``train_seconds`` and ``metrics``; ``rows``: the MLflow keras model's input example (a
    batch of the model's inputs)."""
    summary = model_summary(model)
    with atomic_path(ctx.model_dir) as tmp:
        tmp.mkdir(parents=True)
        model.save(tmp / MODEL_FILE)
        for name, value in files.items():
            write_json(tmp / name, value)
        for name, text in (texts or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / "summary.txt").write_text(summary, encoding="utf-8")
    write_history_csv(history, ctx.train_dir / "history.csv")
    history_png({k: v for k, v in history.items() if k != "learning_rate"}, ctx.train_dir / "history.png", title)
    tr = ctx.tracker
    tr.log_metrics({"train_seconds": seconds, **(metrics or {})})
    tr.log_text(summary, "model_summary.txt")
    if tr.active:
        from dltm import mlflow_models

        mlflow_models.log_models(tr, ctx.model_dir, rows)
    tr.log_artifact(ctx.train_dir / "history.csv", "plots")
    tr.log_artifact(ctx.train_dir / "history.png", "plots")
