"""How long DVC takes to say there is nothing to do, on a fresh clone that pulled its results (issue 13).

    python -m benchmarks.dvc_noop --repo PATH --remote URL [--repeats 3]

Clones ``--repo`` (a git repository of this pipeline whose results were pushed to ``--remote``, e.g. by
``.ci/repro``), pulls the outputs and the run-cache, then times, ``--repeats`` times each and in turn:
``dvc repro`` with nothing changed (goal: under 5 s; the output must say no stage ran), ``dvc status`` and,
as the reference measured in the same run, ``dvc --version`` (DVC's own start-up). Medians, wall seconds.
Writes ``benchmarks/results/dvc_noop.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "dvc_noop.json"
GOAL_SECONDS = 5.0
COMMANDS = {"dvc repro (nothing changed)": ["repro"], "dvc status": ["status"], "dvc --version": ["--version"]}


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(["dvc", *args], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"error: dvc {' '.join(args)} failed in {cwd}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return seconds, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, help="the git repository to clone")
    ap.add_argument("--remote", required=True, help="the DVC remote its results were pushed to")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    tmp = Path(tempfile.mkdtemp(prefix="dvc_noop-"))
    try:
        clone = tmp / "clone"
        subprocess.run(["git", "clone", "-q", args.repo, str(clone)], check=True)
        subprocess.run(["dvc", "remote", "add", "--local", "--force", "--default", "bench", args.remote],
                       cwd=clone, check=True, capture_output=True)
        pull_seconds, _ = timed(["pull", "--run-cache", "--allow-missing"], clone)
        stages = len(subprocess.run(["dvc", "stage", "list"], cwd=clone, capture_output=True, text=True,
                                    check=True).stdout.splitlines())
        runs: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.repeats):
            for name, cmd in COMMANDS.items():
                seconds, out = timed(cmd, clone)
                if cmd == ["repro"] and "Running stage" in out:
                    raise SystemExit(f"error: dvc repro ran stages in a pulled clone:\n{out[-2000:]}")
                runs[name].append(round(seconds, 2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    medians = {name: round(statistics.median(v), 2) for name, v in runs.items()}
    ref = medians["dvc --version"]
    result = {"benchmark": "dvc_noop", "date": datetime.date.today().isoformat(), "stages": stages,
              "repeats": args.repeats, "pull_seconds": round(pull_seconds, 1), "goal_seconds": GOAL_SECONDS,
              "seconds": medians, "runs": runs,
              "ratio_to_dvc_version": {n: round(v / ref, 2) for n, v in medians.items() if ref}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for name, v in medians.items():
        print(f"{name:<28} {v:6.2f} s   ({result['ratio_to_dvc_version'].get(name, '-')} x dvc --version)")
    print(f"{stages} stages; pull {pull_seconds:.1f} s; goal for dvc repro: < {GOAL_SECONDS} s "
          f"-> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
