"""DVC stage ``download@<dataset>``: fetch one registered dataset into ``data/raw/<dataset>/``, verified.

    python -m stages.download mr                    # canonical URLs
    DLTM_DATA_MIRROR=../shared/datasets python -m stages.download mr   # the same files from a local mirror

A dataset that cannot be fetched or fails verification (a ``DatasetError``: the message names the mirror path or
URL at fault) ends in one line ``error: ...`` and exit status 2, through ``dltm.cli.run``.
"""

from __future__ import annotations

import argparse
import sys

from dltm import cli, datasets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=sorted(datasets.REGISTRY))
    ap.add_argument("--mirror", help=f"a local directory laid out like ../shared/datasets "
                                     f"(default: ${datasets.MIRROR_ENV})")
    ap.add_argument("--out", help="target folder (default: data/raw/<dataset>)")
    args = ap.parse_args(argv)
    sums = datasets.fetch(args.dataset, args.out or f"data/raw/{args.dataset}", mirror=args.mirror)
    for name, sha in sums.items():
        print(f"{sha}  {args.dataset}/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
