"""DVC stage ``report``: write reports/results.md from every task's metrics and run record."""

from __future__ import annotations

import sys

from dltm import cli, tasks
from dltm.io import write_text
from dltm.report import build


def main(argv: list[str] | None = None) -> int:
    text = build(list(tasks.all_tasks().values()))
    write_text("reports/results.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
