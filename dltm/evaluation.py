"""Classification metrics, the one way every task records its results, and the pictures that go with them
(confusion matrix, training curves)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dltm.io import atomic_path, write_json

if TYPE_CHECKING:
    from dltm.tasks import Context

SPLITS = ("train_", "val_", "test_")


def split_names(metrics: dict[str, Any], split: str = "test", keep: Iterable[str] = ()) -> dict[str, Any]:
    """``metrics`` with each key prefixed by the split it was measured on (``test_accuracy``, ``train_accuracy``),
    the one scheme of the project's metrics files and MLflow runs. Keys that already name a split, and those in
    ``keep`` (checks that are no measurement on a split, e.g. ``matches_book``, ``n_examples``), are kept.

    >>> split_names({"accuracy": 0.8, "n_examples": 10, "val_perplexity": 90.0}, keep=["n_examples"])
    {'test_accuracy': 0.8, 'n_examples': 10, 'val_perplexity': 90.0}
    """
    keep = set(keep)
    return {k if k in keep or k.startswith(SPLITS) else f"{split}_{k}": v for k, v in metrics.items()}


def final_step(ctx: Context) -> int:
    """The MLflow step of a run's results: its last epoch (``run.json``), so that a final ``test_loss`` ends the
    per-epoch ``test_loss`` curve (steps 1..N) instead of starting it at step 0; 0 for a task without epochs."""
    try:
        import json

        epochs = json.loads((ctx.model_dir / "run.json").read_text(encoding="utf-8")).get("epochs", 0)
        return int(epochs) if isinstance(epochs, int) and epochs > 0 else 0
    except (OSError, ValueError):
        return 0


def write_metrics(ctx: Context, metrics: dict[str, Any], split: str = "test", keep: Iterable[str] = ()
                  ) -> dict[str, Any]:
    """Write a task's results to ``metrics/<task>.json`` (DVC's metrics file) and to its MLflow run under the same
    names (:func:`split_names`), with the file as an artifact. Returns the named metrics.

    Raises ``dltm.io.NonFiniteValueError`` (and writes nothing) when a value is NaN or infinite."""
    named = split_names(metrics, split, keep)
    write_json(ctx.metrics_file, named)
    ctx.tracker.log_metrics(named, step=final_step(ctx))
    ctx.tracker.log_artifact(ctx.metrics_file, "metrics")
    return named


def classification_metrics(y_true, y_pred, class_names: list[str]) -> dict[str, float]:
    """Accuracy, and precision / recall / F1 / support per class and macro-averaged."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(y_pred).astype(int).ravel()
    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out: dict[str, float] = {"accuracy": float(accuracy_score(y_true, y_pred)), "n_examples": int(len(y_true))}
    for i, name in enumerate(class_names):
        out[f"precision_{name}"] = float(p[i])
        out[f"recall_{name}"] = float(r[i])
        out[f"f1_{name}"] = float(f[i])
        out[f"support_{name}"] = int(s[i])
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                    zero_division=0)
    out.update(precision_macro=float(mp), recall_macro=float(mr), f1_macro=float(mf))
    return out


def figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **subplots):
    """A new figure (``figsize`` in inches) and its axes, ``Figure.subplots(nrows, ncols, **subplots)``, drawn
    by the Agg canvas.

    Matplotlib's object-oriented API, not ``pyplot``: no global figure state to close, and no pyplot import
    (a third of a second of a chapter-2 stage's start-up, issue 12)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **subplots)


def save_png(fig, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure atomically."""
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return Path(path)


def confusion_matrix_png(y_true, y_pred, class_names: list[str], path: str | os.PathLike, title: str) -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = figure(figsize=(4 + 0.4 * len(class_names), 3.6 + 0.4 * len(class_names)))
    ConfusionMatrixDisplay.from_predictions(
        np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int),
        labels=list(range(len(class_names))), display_labels=class_names, ax=ax, colorbar=False, cmap="Blues",
    )
    ax.set_title(title)
    return save_png(fig, path)


def history_png(history: dict[str, list[float]], path: str | os.PathLike, title: str,
                log_loss: bool = False) -> Path:
    """One panel per measure (loss, accuracy, perplexity, ...) with a line per split, labelled by what it was
    measured on: ``train_*``, ``val_*`` (a validation split held out of the training data) and ``test_*`` (the
    test split watched each epoch); markers only for short runs. Keys without a split prefix count as train."""
    measures: dict[str, dict[str, list[float]]] = {}
    for key, values in history.items():
        split, _, measure = key.partition("_") if key.startswith(SPLITS) else ("train", "", key)
        measures.setdefault(measure, {})[split] = values
    labels = {"train": "train", "val": "validation split", "test": "test split"}
    fig, axes = figure(1, len(measures), figsize=(4.2 * len(measures), 3.4), squeeze=False)
    for ax, (measure, splits) in zip(axes[0], measures.items(), strict=True):
        for split, values in splits.items():
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, marker="o" if len(epochs) <= 50 else None, label=labels.get(split, split))
        if log_loss and "loss" in measure:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(measure)
        ax.legend()
    fig.suptitle(title)
    return save_png(fig, path)


def line_png(series: dict[str, tuple], path: str | os.PathLike, title: str, xlabel: str, ylabel: str,
             hlines: list[float] | None = None, logy: bool = False) -> Path:
    """Several named (x, y) curves on one axis, with optional reference lines."""
    fig, ax = figure(figsize=(6, 3.8))
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name)
    for h in hlines or []:
        ax.axhline(h, color="grey", linestyle=":", linewidth=1)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return save_png(fig, path)


def scatter_png(points, colors: list[str], path: str | os.PathLike, title: str, labels: tuple[str, str]) -> Path:
    """2-D points drawn as the book's black and white dots."""
    points = np.asarray(points)
    fig, ax = figure(figsize=(3.6, 3.6))
    ax.scatter(points[:, 0], points[:, 1], c=colors, edgecolors="black", s=120)
    ax.set(title=title, xlabel=labels[0], ylabel=labels[1])
    ax.margins(0.25)
    return save_png(fig, path)


def predicted_vs_actual_png(panels: dict[str, tuple], path: str | os.PathLike, title: str) -> Path:
    """The book's 1xN regression picture (3.3.3): predicted against actual per model, with the diagonal."""
    fig, axes = figure(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (name, (pred, actual)) in zip(axes[0], panels.items(), strict=True):
        pred, actual = np.ravel(pred), np.ravel(actual)
        ax.scatter(pred, actual, s=10)
        lo, hi = float(min(pred.min(), actual.min())), float(max(pred.max(), actual.max()))
        ax.plot([lo, hi], [lo, hi], color="red", linewidth=1)
        ax.set(title=name, xlabel="predicted", ylabel="actual")
    fig.suptitle(title)
    return save_png(fig, path)


def translation_scores(hypotheses: list[str], references: list[str], tokenize: str = "zh") -> dict[str, Any]:
    """Corpus BLEU and chrF of ``hypotheses`` against one reference each, by sacreBLEU (Post 2018), with
    sacreBLEU's signatures (what the numbers mean: tokenizer, smoothing, version), and the exact-match rate.

    ``tokenize``: sacreBLEU's BLEU tokenizer, ``zh`` for Chinese (each CJK character a token), ``13a`` for
    English or French. BLEU and chrF are in 0-100, ``exact_match`` in 0-1. Raises ValueError when the two
    lists differ in length or are empty."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"translation_scores needs as many hypotheses as references, at least one; got "
                         f"{len(hypotheses)} and {len(references)}")
    bleu, chrf = BLEU(tokenize=tokenize), CHRF()
    b, c = bleu.corpus_score(hypotheses, [references]), chrf.corpus_score(hypotheses, [references])
    return {"bleu": float(b.score), "chrf": float(c.score),
            "exact_match": float(np.mean([h.strip() == r.strip() for h, r in zip(hypotheses, references,
                                                                                    strict=True)])),
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


def cjk_font() -> str | None:
    """The name of an installed font with Chinese glyphs (Noto Sans CJK, Source Han, WenQuanYi, SimHei, Microsoft
    YaHei, PingFang), or None: for the Chinese tokens of chapters 10 and 13's pictures."""
    from matplotlib import font_manager

    wanted = ("Noto Sans CJK", "Noto Serif CJK", "Source Han", "WenQuanYi", "SimHei", "Microsoft YaHei", "PingFang",
              "Heiti", "AR PL")
    for f in font_manager.fontManager.ttflist:
        if f.name.startswith(wanted):
            return f.name
    return None
