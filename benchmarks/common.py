"""Helpers for the benchmarks: the MR sentences from data/raw/mr or the mirror, and a result record."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from dltm.data import load_mr_raw

ROOT = Path(__file__).resolve().parents[1]


def mr_dir() -> Path:
    for cand in (ROOT / "data" / "raw" / "mr", Path(os.environ.get("DLTM_DATA_MIRROR", "/nonexistent")) / "mr",
                 ROOT.parent / "shared" / "datasets" / "mr"):
        if (cand / "rt-polarity.pos").is_file():
            return cand
    raise SystemExit("MR not found: run `dvc repro download@mr` or set DLTM_DATA_MIRROR")


def mr_texts() -> tuple[list[str], list[int]]:
    texts, labels = load_mr_raw(mr_dir())
    return texts, labels.tolist()


def record(name: str, result: dict) -> None:
    result = {"benchmark": name, "machine": f"{platform.processor() or platform.machine()} x{os.cpu_count()}",
              **result}
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
