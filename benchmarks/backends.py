"""Kim's CNN on MR and the PTB language model on each Keras backend this machine has, in one run (issue 14).

    python -m benchmarks.backends                    # every backend installed: tensorflow, jax, torch
    python -m benchmarks.backends --backends tensorflow jax

Each backend runs ``benchmarks/gpu_check.py --size cpu`` (the project's stages: ``ch07_kim2014`` rand, one
fold, 3 epochs, and ``ch08_ptb_lm`` at Zaremba's small settings, 1 epoch, both on the first 3000 training
examples / rows of the real data), one backend after the other on the same machine, so the rows compare. The
data come from ``$DLTM_DATA_MIRROR`` or ``../shared/datasets`` (``mr/``, ``ptb/``). Writes
``benchmarks/results/backends.json``, which the report's "Backends" section shows, and prints the table. The
ratio is each backend's training throughput over TensorFlow's (the reference, measured in the same run).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "backends.json"
BACKENDS = ("tensorflow", "jax", "torch")
RUNS = {"kim_rand_one_fold": ("test_accuracy", "examples_per_second"),
        "ptb_small": ("test_perplexity", "words_per_second")}


def mirror() -> Path:
    """``$DLTM_DATA_MIRROR`` (dltm.datasets.mirror_dir), else ``../shared/datasets`` beside the checkout."""
    from dltm.datasets import mirror_dir

    found = mirror_dir() or ROOT.parent / "shared" / "datasets"
    if not (found / "mr").is_dir() or not (found / "ptb").is_dir():
        raise SystemExit(f"error: no mr/ and ptb/ under {found}: set DLTM_DATA_MIRROR to the dataset mirror")
    return found


def installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


def rows(results: dict[str, dict]) -> list[dict]:
    """One row per (run, backend): the test metric, training throughput, seconds per epoch and the ratio of
    the throughput to TensorFlow's."""
    out = []
    for run, (metric, rate_key) in RUNS.items():
        ref = results.get("tensorflow", {}).get("runs", {}).get(run, {}).get("run", {}).get(rate_key)
        for backend, report in results.items():
            r = report.get("runs", {}).get(run)
            if not r:
                continue
            rate = r["run"].get(rate_key)
            out.append({"run": run, "task": r["task"] + (f"-{r['variant']}" if r["variant"] else ""),
                        "backend": backend, "metric": metric, "value": r["metrics"].get(metric),
                        "throughput": rate, "throughput_unit": rate_key, "seconds_per_epoch": r["seconds_per_epoch"],
                        "ratio_to_tensorflow": round(rate / ref, 3) if rate and ref else None})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", nargs="*", default=[b for b in BACKENDS if installed(b)])
    args = ap.parse_args(argv)
    data = mirror()
    results = {}
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.json"
            proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--data", str(data),
                                   "--size", "cpu", "--backend", backend, "--out", str(out), "--budget", "3000",
                                   "--runs", *RUNS, "--work", str(Path(tmp) / "work")])
            if proc.returncode:
                raise SystemExit(f"error: the {backend} backend failed (above)")
            results[backend] = json.loads(out.read_text())
    table = rows(results)
    machine = next(iter(results.values()))["machine"] if results else {}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"benchmark": "backends", "date": datetime.date.today().isoformat(),
                               "host_cpu": machine.get("host_cpu"), "keras": machine.get("keras"),
                               "versions": {b: r["machine"].get(b) for b, r in results.items()},
                               "settings": "benchmarks/gpu_check.py --size cpu", "rows": table}, indent=2) + "\n")
    print(f"{'run':<20} {'backend':<11} {'metric':<16} {'value':>8} {'throughput':>12} {'s/epoch':>8} {'ratio':>6}")
    for r in table:
        value = "-" if r["value"] is None else f"{r['value']:.4f}"
        rate = "-" if r["throughput"] is None else f"{r['throughput']:,.0f}"
        print(f"{r['run']:<20} {r['backend']:<11} {r['metric']:<16} {value:>8} {rate:>12} "
              f"{r['seconds_per_epoch']:>8.1f} {r['ratio_to_tensorflow'] or '-':>6}")
    print(f"-> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
