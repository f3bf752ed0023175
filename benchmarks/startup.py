"""Start-up time of the stages (issue 12): how long a stage takes before it does any work, and what it imports.

- ``stages.train ch02_xor`` and ``stages.evaluate ch02_xor``: a chapter-2 stage (NumPy only), the whole process;
  goal <= 1.5 s.
- ``stages.train ch07_simple_classifier`` up to ``Model.fit``: a Keras stage's overhead before training (imports,
  task lookup, params, the MLflow run, data, the model); goal <= 5 s.
- the same Keras stage on the JAX backend (``KERAS_BACKEND=jax``, issue 14): Keras without TensorFlow.
- ``python -c pass``, ``import mlflow``, ``import keras`` (TensorFlow's and JAX's): the floors those figures
  stand on.

Each checkout runs in a scratch copy (its own git repository, models/ and mlflow.db: nothing of yours is
touched), once untimed to fill the caches and create the MLflow store. Then, ``--repeats`` times, every command
runs once for every checkout in turn, so that checkouts compared are timed under the same load; the median is
reported, as wall seconds and as CPU seconds (user + system: less sensitive to a busy machine). One more run of
each stage under ``python -X importtime`` says whether it imported TensorFlow and names its costliest imports
(top-level imports by cumulative time; a module imported by ``importlib.import_module``, such as a chapter
module, is not listed itself: its own imports are).

    python -m benchmarks.startup                                  # this checkout
    git worktree add /tmp/before <commit>
    python -m benchmarks.startup --source before=/tmp/before --source after=.   # interleaved, same machine

Writes ``benchmarks/results/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "startup.json"
COPY = ("dltm", "stages", "pipelines", "params.yaml", "dvc.yaml")
GOALS = {"train ch02_xor": 1.5, "evaluate ch02_xor": 1.5, "train ch07_simple_classifier to fit()": 5.0,
         "train ch07_simple_classifier to fit() (JAX)": 5.0}

# Runs ``stages.train <task>`` as ``python -m`` does, and ends the process when training starts, printing the
# time. Keras is imported first to patch ``Model.fit``: the stage imports it anyway, so the total is the same.
FIT_DRIVER = """
import os, runpy, sys, time
import dltm
import keras

def fit(*args, **kwargs):
    print(f"FIT {time.time()!r}", flush=True)
    os._exit(0)

keras.Model.fit = fit
sys.argv = ["stages.train", *sys.argv[1:]]
runpy.run_module("stages.train", run_name="__main__", alter_sys=True)
raise SystemExit("the stage ended without calling Model.fit")
"""

FLOORS = {"python -c pass": ["-c", "pass"], "import mlflow": ["-c", "import mlflow"],
          "import keras": ["-c", "import keras"], "import keras (JAX)": ["-c", "import keras"]}
STAGES = {"train ch02_xor": ["-m", "stages.train", "ch02_xor"],
          "evaluate ch02_xor": ["-m", "stages.evaluate", "ch02_xor"],
          "train ch07_simple_classifier to fit()": ["-c", FIT_DRIVER, "ch07_simple_classifier"],
          "train ch07_simple_classifier to fit() (JAX)": ["-c", FIT_DRIVER, "ch07_simple_classifier"]}
ENV = {name: {"KERAS_BACKEND": "jax"} for name in (*FLOORS, *STAGES) if name.endswith("(JAX)")}
"""The commands timed on the JAX backend (issue 14): ``KERAS_BACKEND=jax``, as ``run.backend: jax`` sets it."""

_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def scratch_copy(source: Path, dest: Path) -> Path:
    """``source``'s code, params.yaml and dvc.yaml in ``dest``, committed to a git repository of its own."""
    for name in COPY:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source / name, dest / name)
    (dest / ".dvc").mkdir()
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "startup benchmark"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)
    return dest


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds from starting ``python <args>`` to its end, or to the ``FIT <time>`` line it prints, and the
    CPU seconds (user + system) the process used."""
    cpu, start = _children_cpu(), time.time()
    r = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    end, cpu = time.time(), _children_cpu() - cpu
    if r.returncode != 0:
        raise SystemExit(f"python {' '.join(args[:3])} failed in {cwd} ({r.returncode}):\n{r.stdout[-2000:]}\n"
                         f"{r.stderr[-3000:]}")
    fit = re.search(r"^FIT (\S+)$", r.stdout, re.M)
    return (float(fit.group(1)) if fit else end) - start, cpu, r


def import_profile(stderr: str, top: int = 6) -> dict:
    """From ``-X importtime``'s output: whether TensorFlow and Keras were imported, and the ``top`` top-level
    imports by cumulative seconds."""
    found = [(m.group(4), int(m.group(2)), len(m.group(3))) for m in _IMPORTTIME.finditer(stderr)]
    names = {name for name, _, _ in found}
    outer = min((indent for _, _, indent in found), default=1)
    heaviest = sorted(((name, us) for name, us, indent in found if indent == outer), key=lambda x: -x[1])[:top]
    return {"tensorflow": "tensorflow" in names, "keras": "keras" in names,
            "top_imports_seconds": {name: round(us / 1e6, 3) for name, us in heaviest}}


def summary(walls: list[float], cpus: list[float]) -> dict:
    return {"wall": round(statistics.median(walls), 2), "cpu": round(statistics.median(cpus), 2),
            "wall_runs": [round(w, 2) for w in walls]}


def commit_of(source: Path) -> str:
    r = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=source, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and (source / ".git").exists() else "not a git checkout"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", action="append", metavar="LABEL=DIR",
                    help="a checkout to time, under a label (repeatable; default: current=<this checkout>)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    sources = {}
    for spec in args.source or [f"current={ROOT}"]:
        label, _, folder = spec.rpartition("=")
        sources[label or "current"] = Path(folder).resolve()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DLTM_VERBOSE")}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="dltm-startup-") as tmp:
        work = {label: scratch_copy(src, Path(tmp) / f"checkout{i}") for i, (label, src) in enumerate(sources.items())}
        first = next(iter(work.values()))
        for cwd in work.values():  # warm-up: caches, the MLflow store, a trained ch02_xor to evaluate
            for name, cmd in (*FLOORS.items(), *STAGES.items()):
                run_once(cmd, cwd, env | ENV.get(name, {}))
        times: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        for _ in range(args.repeats):
            runs = [("floors", name, cmd, first) for name, cmd in FLOORS.items()]
            runs += [(label, name, cmd, cwd) for name, cmd in STAGES.items() for label, cwd in work.items()]
            for label, name, cmd, cwd in runs:
                wall, cpu, _ = run_once(cmd, cwd, env | ENV.get(name, {}))
                times.setdefault((label, name), ([], []))
                times[(label, name)][0].append(wall)
                times[(label, name)][1].append(cpu)
            load.append(os.getloadavg()[0])
        result = {
            "benchmark": "startup",
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.processor() or platform.machine()} x{os.cpu_count()}",
            "python": platform.python_version(),
            "repeats": args.repeats,
            "load_average_1min": [round(x, 2) for x in load],
            "goal_seconds": GOALS,
            "floors": {name: summary(*times[("floors", name)]) for name in FLOORS},
            "checkouts": {},
        }
        for label, cwd in work.items():
            result["checkouts"][label] = {
                "source": str(sources[label]),
                "commit": commit_of(sources[label]),
                "seconds": {name: summary(*times[(label, name)]) for name in STAGES},
                "imports": {name: import_profile(run_once(["-X", "importtime", *cmd], cwd,
                                                          env | ENV.get(name, {}))[2].stderr)
                            for name, cmd in STAGES.items()},
                "stderr of train ch02_xor": run_once(STAGES["train ch02_xor"], cwd, env)[2].stderr,
            }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
