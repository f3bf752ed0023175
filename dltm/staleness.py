"""Which committed results no longer match the code and params of the checkout (issue 13).

A result is *stale* when the stage that made it would run again: ``dvc status`` reports one of its code or
data dependencies modified, its params changed or its command changed, or a stage upstream of it is stale.
Missing data (a fresh clone that has not pulled: dependencies and outputs reported ``deleted`` or ``not in
cache``) does not make a result stale, so the check needs no data and no DVC remote. A stage that has never run
(no ``dvc.lock`` entry) has no result to be stale.

The figure is DVC's own: :func:`stale_stages` asks ``dvc.repo.Repo.status`` and walks DVC's stage graph, so
it agrees with ``dvc repro`` on what would run.
"""

from __future__ import annotations

import re
from pathlib import Path

STALE_MARK = " (stale)"
SECTION = "## Stale results"


def _reasons(entries: list, not_pulled: set[str] = frozenset()) -> list[str]:
    """The reasons in one stage's ``dvc status`` entry that make it stale (missing data does not: neither a
    dependency DVC reports ``deleted`` nor one of ``not_pulled``)."""
    reasons = []
    for entry in entries:
        if entry == "changed command":
            reasons.append("its command changed")
        elif isinstance(entry, dict):
            for path, change in entry.get("changed deps", {}).items():
                if change in ("modified", "new") and path not in not_pulled:
                    reasons.append(f"{path} {change}")
            for path in entry.get("changed params", {}):
                reasons.append(f"params {path} changed")
    return reasons


def stale_stages(root: str | Path = ".") -> dict[str, str]:
    """Stage name (as ``dvc repro`` names it: ``train@ch07_kim_cnn``) -> why its recorded result is stale.

    Stages downstream of a stale stage are stale as well ("upstream <stage> is stale"). Reads the DVC
    repository at ``root``; raises ``dvc.exceptions.NotDvcRepoError`` outside one."""
    import contextlib

    import networkx as nx
    from dvc.repo import Repo

    with contextlib.chdir(root), Repo(".") as repo:  # DVC names stages relative to the working directory
        status = repo.status()
        graph = repo.index.graph  # edges go from a stage to the stages it depends on
        locked = locked_stages(".")
        by_name = {stage.addressing: stage for stage in graph.nodes}
        outs = {str(out.def_path) for stage in graph.nodes for out in stage.outs}
        stale = {name: "; ".join(reasons) for name, entries in status.items()
                 if name in locked and (reasons := _reasons(entries, not_pulled(outs)))}
        for name in list(stale):
            for downstream in nx.ancestors(graph, by_name[name]):
                if downstream.addressing in locked:
                    stale.setdefault(downstream.addressing, f"upstream {name} is stale")
    order = [stage.addressing for stage in nx.topological_sort(graph.reverse(copy=False))]
    return {name: stale[name] for name in order if name in stale}


def not_pulled(outs: set[str], root: str | Path = ".") -> set[str]:
    """The folders that hold other stages' outputs (``models``, ``plots``, ``data/embeddings``) of which this
    checkout has none: a stage that depends on such a folder (the report) sees it "modified" in a fresh clone,
    where it holds only its committed placeholder (``models/.gitignore``, ``plots/.keep``). That is missing data,
    not a change. ``outs``: every stage's output paths, relative to ``root``."""
    folders = {str(parent) for out in outs for parent in Path(out).parents if str(parent) != "."}
    return {f for f in folders - outs
            if not any((Path(root) / out).exists() for out in outs if out.startswith(f + "/"))}


def locked_stages(root: str | Path = ".") -> set[str]:
    """The stages that dvc.lock records (those that have run), by name."""
    from ruamel.yaml import YAML

    path = Path(root) / "dvc.lock"
    if not path.is_file():
        return set()
    return set((YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}).get("stages", {}))


def result_names(stage_outs: list[str]) -> set[str]:
    """The names of the results (rows of reports/results.md) among a stage's outputs: ``models/<name>``,
    ``metrics/<name>.json``, ``data/embeddings/<name>``."""
    names = set()
    for out in stage_outs:
        m = re.fullmatch(r"(?:models|data/embeddings)/([^/]+)|metrics/([^/]+)\.json", out)
        if m:
            names.add(m.group(1) or m.group(2))
    return names


def stale_results(root: str | Path = ".", stale: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Result name (``ch07_kim_cnn``, ``ch06_glove-ptb``) -> its stale stages (``stale``, by default
    :func:`stale_stages`)."""
    from dvc.repo import Repo

    stale = stale_stages(root) if stale is None else stale
    import contextlib

    with contextlib.chdir(root), Repo(".") as repo:
        outs = {stage.addressing: [str(out.def_path) for out in stage.outs] for stage in repo.index.stages}
    names: dict[str, list[str]] = {}
    for stage in stale:
        for name in result_names(outs.get(stage, [])):
            names.setdefault(name, []).append(stage)
    return names


def mark_report(text: str, stale: dict[str, str], results: dict[str, list[str]]) -> str:
    """reports/results.md with the *Ours* cell of every stale row of its results tables (each table whose header
    has ``Ours``: the chapters' tables) marked ``(stale)``, and a section listing the stale stages and why after
    the first table (the summary); marks of an earlier call are removed first, so the result depends only on
    ``stale``."""
    lines = text.rstrip("\n").split("\n")
    if SECTION in lines:
        end = next((i for i in range(lines.index(SECTION) + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        start = lines.index(SECTION) - 1  # the blank line before it; the one before the next section stays
        lines = lines[:start] + lines[end - 1 if end < len(lines) else end:]
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    after = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    col = None
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            col = None
            continue
        if col is None:  # a table's header
            header = [c.strip() for c in line.strip("|").split("|")]
            col = header.index("Ours") if "Ours" in header else -1
            continue
        if col < 0 or line.startswith("|---"):
            continue
        cells = line.split("|")  # cells[0] is the text before the first "|"
        value = cells[col + 1].rstrip().removesuffix(STALE_MARK)
        if any(c.strip().split(" ")[0] in results for c in cells[1:col + 1]):  # the task, or a headline
            value += STALE_MARK
        cells[col + 1] = value + " "
        lines[i] = "|".join(cells)
    if stale:
        section = ["", SECTION, "",
                   "These results were made by stages that would run again with this checkout's code and params",
                   "(`dvc status`); their rows are marked *(stale)* until `dvc repro` re-runs them.", "",
                   *[f"- `{name}`: {why}" for name, why in stale.items()]]
        lines = lines[:after] + section + lines[after:]
    return "\n".join(lines) + "\n"
