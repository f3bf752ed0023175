"""DVC stage ``report``: write reports/results.md from every task's metrics and run record, keeping the run records in
reports/runs/ and the pictures it shows in reports/figures/ (models/ and plots/ are DVC's; the report, the records
and the figures are committed, so the report regenerates where models/ and plots/ are not: see
:data:`dltm.report.RUNS`).

``python -m stages.report --stale`` (``make stale``, and ``.ci/run`` before the tests) is not a stage: it asks
DVC which committed results no longer match the checkout's code and params (:mod:`dltm.staleness`), prints
them, and marks their rows in reports/results.md *(stale)*. It needs no data: run it in a fresh clone. The
report stage itself writes no marks (while ``dvc repro`` runs, DVC's status cannot be asked), and a file marked
stale differs from what dvc.lock records, so ``dvc repro`` rewrites it once the stale stages have re-run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dltm import cli, tasks
from dltm.io import write_text

REPORT = Path("reports/results.md")


def mark_stale(report: Path = REPORT) -> int:
    """Print the stale stages and mark their rows in ``report``; returns how many results are stale."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.lock import LockError

    from dltm import staleness

    try:
        stale = staleness.stale_stages()
    except NotDvcRepoError as e:
        raise cli.UserError(f"--stale: {e}") from None
    except LockError as e:  # a `dvc repro` (or another DVC command) is running in this checkout
        busy = str(e).split(", it is being blocked by")[0]
        raise cli.UserError(f"--stale: DVC is busy in this checkout ({busy}, by another DVC command such as "
                            "`dvc repro`): run it again when that ends") from None
    results = staleness.stale_results(stale=stale)
    for stage, why in stale.items():
        print(f"stale: {stage}: {why}")
    if report.is_file():
        text = report.read_text(encoding="utf-8")
        marked = staleness.mark_report(text, stale, results)
        if marked != text:
            write_text(report, marked)
    print(f"{len(results)} result(s) stale, {len(stale)} stage(s) would run again"
          + (f"; their rows in {report} are marked (stale)" if results and report.is_file() else "")
          if stale else "no stale results: dvc.lock matches this checkout's code and params")
    return len(results)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stale", action="store_true",
                    help="list the stale results and mark them in reports/results.md (needs no data)")
    args = ap.parse_args(argv)
    if args.stale:
        mark_stale()
        return 0
    from dltm.report import FIGURES, RUNS, write_report

    text, sources = write_report(list(tasks.all_tasks().values()))
    counts = {s: sum(1 for v in sources.values() if v == s) for s in ("workspace", "kept", "missing")}
    print(f"report: {REPORT} ({text.count(chr(10))} lines); run records in reports/{RUNS}/ and pictures in "
          f"reports/{FIGURES}/: {counts['workspace']} from this workspace, {counts['kept']} kept (metrics "
          f"unchanged), {counts['missing']} missing")
    missing = sorted(n for n, v in sources.items() if v == "missing")
    if missing:
        print(f"no run record for {', '.join(missing)}: their metrics changed or are new, and their run.json is "
              "not in this workspace (`dvc pull`, or `dvc repro` their stages); their provenance shows '-'")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
