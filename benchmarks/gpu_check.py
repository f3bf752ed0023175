"""The GPU check (issue 14): the project's own stages on a GPU machine with CUDA JAX or PyTorch, and neither
TensorFlow, MLflow nor DVC.

    python benchmarks/gpu_check.py --data .gpu_data --backend jax --out reports/gpu/h200-jax.json
    python benchmarks/gpu_check.py --data DIR --size tiny --backend jax --out /tmp/x.json     # the CPU test's size

``--data`` holds the datasets laid out as the mirror (``mr/rt-polarity.pos``, ``mr/rt-polarity.neg``,
``ptb/ptb.{train,valid,test}.txt``), copied beforehand into an ignored folder that travels with the checkout.
Nothing is installed or fetched: Keras and the small pure wheels the machine lacks (``ruamel.yaml``, ``namex``,
``optree``) travel as wheels (benchmarks/README.md, "The GPU check").

Each run is ``python -m stages.prepare`` / ``stages.train`` / ``stages.evaluate`` in a scratch workspace (the
checkout's code, ``params.yaml`` with the run's settings, ``data/raw`` linked to ``--data``), with
``run.backend`` set; MLflow is absent, so the stages say once that nothing was logged and go on. In order, while
the time budget (``--budget``, seconds, start-up included) allows:

1. ``ch08_ptb_lm`` at Zaremba et al. (2014)'s non-regularised small settings (target: test perplexity <= 114.5);
2. ``ch07_kim2014`` rand at Kim (2014)'s settings, 25 epochs, one fold (``protocol: holdout``: the book's split);
3. ``ch08_ptb_lm`` at the medium settings for as many epochs as the budget leaves (target 82.7 at 39 epochs);
4. ``ch07_kim2014`` rand with Kim's 10-fold cross-validation, if time is left.

A run that would not fit (by the seconds per epoch of the runs before it) is skipped and says so. Writes JSON
(``--out``): the device, backend and versions, and per run the settings, epochs, seconds per epoch, training
examples (or words) per second and the test metrics. ``--size tiny`` runs the same stages at toy sizes (the
test on CPU, tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ZAREMBA_SMALL = {"hidden_size": 200, "num_layers": 2, "num_steps": 20, "batch_size": 20, "epochs": 13,
                 "dropout": 0.0, "dropout_between_layers": False, "optimizer": "sgd", "learning_rate": 1.0,
                 "clipnorm": 5.0, "lr_decay": 0.5, "lr_decay_after": 4, "loss": "sum_over_steps",
                 "init_scale": 0.1, "stateful": True, "embed_size": None}
ZAREMBA_MEDIUM = {**ZAREMBA_SMALL, "hidden_size": 650, "num_steps": 35, "epochs": 39, "dropout": 0.5,
                  "dropout_between_layers": True, "lr_decay": 0.8333, "lr_decay_after": 6, "init_scale": 0.05}
KIM = {"epochs": 25, "filter_nums": 100, "embed_size": 300, "batch_size": 50}

# (name, task, variant, task overrides, prepare.mr overrides, reference, what the reference is)
RUNS = (
    ("ptb_small", "ch08_ptb_lm", None, ZAREMBA_SMALL, {}, 114.5, "Zaremba et al. 2014, small, test perplexity"),
    ("kim_rand_one_fold", "ch07_kim2014", "rand", {**KIM, "protocol": "holdout"}, {}, 0.761,
     "Kim 2014, CNN-rand on MR, 10-fold accuracy"),
    ("ptb_medium", "ch08_ptb_lm", None, ZAREMBA_MEDIUM, {}, 82.7, "Zaremba et al. 2014, medium, test perplexity"),
    ("kim_rand_10_fold", "ch07_kim2014", "rand", {**KIM, "protocol": "cv"}, {"cv_folds": 10}, 0.761,
     "Kim 2014, CNN-rand on MR, 10-fold accuracy"),
)
BUDGET_FIT = ("ptb_medium",)
"""Runs whose epochs are cut to what the budget leaves (the others run whole or not at all)."""

TINY = {"ch08_ptb_lm": {"hidden_size": 8, "num_steps": 5, "batch_size": 4, "epochs": 2},
        "ch07_kim2014": {"epochs": 1, "filter_nums": 2, "embed_size": 8, "batch_size": 16}}
TINY_RUN = {"max_train_examples": 400, "max_eval_examples": 200}
TINY_MR = {"dev_size": 60}
CPU = {"ch08_ptb_lm": {"epochs": 1}, "ch07_kim2014": {"epochs": 3}}
CPU_RUN = {"max_train_examples": 3000, "max_eval_examples": 0}
"""``--size cpu`` (benchmarks/backends.py): the same models on a slice, for throughput on a CPU."""
SIZES = {"tiny": (TINY, TINY_RUN, TINY_MR), "cpu": (CPU, CPU_RUN, {})}


def plan_epochs(name: str, epochs: int, folds: int, seconds_per_epoch: float | None, left: float) -> int | None:
    """The epochs run ``name`` gets with ``left`` seconds of the budget: all of them while nothing has been
    timed or they fit (with 10% to spare), as many as fit for a run of :data:`BUDGET_FIT`, else None (skip)."""
    if seconds_per_epoch is None:
        return epochs
    fit = int(left * 0.9 / (seconds_per_epoch * folds))
    if fit >= epochs:
        return epochs
    return fit if name in BUDGET_FIT and fit > 0 else None


def estimate(name: str, task: str, settings: dict, timed: dict[str, tuple[str, dict, float]]) -> float | None:
    """Seconds per epoch of run ``name``, from the last run of the same task timed before it (``timed``: run
    name -> (task, settings, seconds per epoch)), scaled by (hidden_size ratio)^2 for the PTB model: the words
    per epoch are the same, the cost of a step grows with the square of the LSTM's width."""
    same = [(s, t) for n, (k, s, t) in timed.items() if k == task]
    if not same:
        return None
    before, seconds = same[-1]
    if "hidden_size" in settings and "hidden_size" in before:
        seconds *= (settings["hidden_size"] / before["hidden_size"]) ** 2
    return seconds


def load_yaml(path: Path) -> dict:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def dump_yaml(data: dict, path: Path) -> None:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(data, f)


def workspace(work: Path, data: Path) -> Path:
    """``work`` holding the checkout's dvc.yaml and data/raw/{mr,ptb} linked to ``data``; the code is
    imported from the checkout (PYTHONPATH)."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "dvc.yaml", work / "dvc.yaml")
    raw = work / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, files in (("mr", ("rt-polarity.pos", "rt-polarity.neg")),
                        ("ptb", ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"))):
        for f in files:
            if not (data / name / f).is_file():
                raise SystemExit(f"error: --data {data}: {name}/{f} is missing (lay it out as the mirror)")
        if not (raw / name).exists():
            (raw / name).symlink_to((data / name).resolve(), target_is_directory=True)
    return work


def python_path() -> str:
    """The checkout first, then what PYTHONPATH already holds (e.g. carried wheels)."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


def stage(work: Path, env: dict[str, str], *args: str, timeout: float | None = None) -> float:
    """``python -m stages.<args>`` in ``work``; its output is passed through. Returns the wall seconds; raises
    subprocess.TimeoutExpired after ``timeout`` seconds (the budget's end)."""
    start = time.perf_counter()
    print(f"$ python -m stages.{' '.join(args)}", flush=True)
    proc = subprocess.run([sys.executable, "-m", f"stages.{args[0]}", *args[1:]], cwd=work, env=env,
                          timeout=None if timeout is None else max(timeout, 1.0))
    if proc.returncode:
        raise RuntimeError(f"stages.{' '.join(args)} failed (exit {proc.returncode})")
    return time.perf_counter() - start


def device_info(backend: str) -> dict[str, str]:
    """The accelerator the backend sees and the versions, asked in a child process (as the stages run)."""
    code = ("import json, keras, dltm.runtime as r; m = r.machine(); "
            "print(json.dumps({**m, 'devices': keras.distribution.list_devices()}))")
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": python_path()}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"error: Keras with the {backend} backend does not start:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def result(work: Path, task: str, variant: str | None) -> dict:
    name = f"{task}-{variant}" if variant else task
    metrics = json.loads((work / "metrics" / f"{name}.json").read_text())
    run = json.loads((work / "models" / name / "run.json").read_text())
    keep = ("epochs", "train_seconds", "seconds_per_epoch", "examples_per_second", "words_per_second",
            "train_examples")
    return {"run": {k: run[k] for k in keep if k in run},
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="mr/ and ptb/ laid out as the mirror")
    ap.add_argument("--backend", choices=("jax", "torch", "tensorflow"), default="jax")
    ap.add_argument("--out", type=Path, required=True, help="the JSON to write")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for everything (default 450)")
    ap.add_argument("--size", choices=("gpu", "cpu", "tiny"), default="gpu",
                    help="gpu: the settings above; cpu: a slice, for throughput; tiny: toy sizes (the test)")
    ap.add_argument("--runs", nargs="*", default=[r[0] for r in RUNS], help="a subset of the runs, in order")
    ap.add_argument("--work", type=Path, help="the scratch workspace (default: a temporary folder)")
    args = ap.parse_args(argv)
    unknown = set(args.runs) - {r[0] for r in RUNS}
    if unknown:
        ap.error(f"--runs: unknown {', '.join(sorted(unknown))} (have {', '.join(r[0] for r in RUNS)})")
    start = time.perf_counter()
    work = workspace(args.work or Path(tempfile.mkdtemp(prefix="gpu_check-")), args.data)
    env = {**os.environ, "KERAS_BACKEND": args.backend, "PYTHONPATH": python_path(), "PYTHONUNBUFFERED": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    base = load_yaml(ROOT / "params.yaml")
    base["run"]["backend"] = args.backend
    if args.size in SIZES:
        base["run"].update(SIZES[args.size][1])
        base["prepare"]["mr"].update(SIZES[args.size][2])
    report = {"benchmark": "gpu_check", "date": datetime.date.today().isoformat(), "size": args.size,
              "backend": args.backend, "machine": device_info(args.backend), "host": platform.node(),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True).stdout.strip() or "unknown",
              "budget_seconds": args.budget, "runs": {}, "skipped": {}}
    timed: dict[str, tuple[str, dict, float]] = {}
    prepared: dict[str, object] = {}
    for name, task, variant, overrides, prepare, reference, what in RUNS:
        if name not in args.runs:
            continue
        params = json.loads(json.dumps(base))
        settings = {**overrides, **(SIZES[args.size][0].get(task, {}) if args.size in SIZES else {})}
        left = args.budget - (time.perf_counter() - start)
        folds = prepare.get("cv_folds", 1) if settings.get("protocol") == "cv" else 1
        guess = estimate(name, task, settings, timed)
        epochs = plan_epochs(name, int(settings["epochs"]), folds, guess, left)
        if epochs is None:
            report["skipped"][name] = (f"{settings['epochs']} epochs x {folds} fold(s) at about {guess:.1f} "
                                       f"s/epoch do not fit in the {left:.0f} s left")
            print(f"skip {name}: {report['skipped'][name]}", flush=True)
            continue
        settings["epochs"] = epochs
        params[task].update(settings)
        params["prepare"]["mr"].update(prepare)
        dump_yaml(params, work / "params.yaml")
        seconds = 0.0
        stage_args = [task] + (["--variant", variant] if variant else [])
        try:
            if task == "ch07_kim2014" and prepared.get("mr") != params["prepare"]["mr"]:
                seconds += stage(work, env, "prepare", "mr", timeout=left)
                prepared["mr"] = params["prepare"]["mr"]
            train_seconds = stage(work, env, "train", *stage_args, timeout=left - seconds)
            seconds += train_seconds + stage(work, env, "evaluate", *stage_args, timeout=left - seconds - train_seconds)
        except subprocess.TimeoutExpired:
            report["skipped"][name] = f"stopped at the end of the budget ({args.budget:.0f} s), {epochs} epochs planned"
            print(f"stop {name}: {report['skipped'][name]}", flush=True)
            break
        got = result(work, task, variant)
        per_epoch = got["run"].get("train_seconds", train_seconds) / max(epochs * folds, 1)
        timed[name] = (task, settings, per_epoch)
        report["runs"][name] = {"task": task, "variant": variant, "settings": settings, **got,
                                "seconds_per_epoch": round(per_epoch, 3), "wall_seconds": round(seconds, 1),
                                "reference": reference, "reference_is": what}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")  # after every run: a cut-off run keeps the rest
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"gpu_check: {len(report['runs'])} run(s), {len(report['skipped'])} skipped, "
          f"{report['wall_seconds']} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
