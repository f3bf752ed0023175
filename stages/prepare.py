"""DVC stage ``prepare@<dataset>``: tokenize, pad and split ``data/raw/<dataset>/`` into
``data/prepared/<dataset>/``, with the settings of ``params.yaml: prepare.<dataset>``.

``prepare@custom`` reads your own file instead, from ``prepare.custom.path`` (README, "Bring your own data")."""

from __future__ import annotations

import argparse
import json
import sys

from dltm import cli
from dltm import params as P
from dltm.data import PREPARERS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset", choices=sorted(PREPARERS))
    args = ap.parse_args(argv)
    settings = P.section(P.load(), f"prepare.{args.dataset}")
    source = P.require(settings, "path", str, "prepare.custom") if args.dataset == "custom" \
        else f"data/raw/{args.dataset}"
    info = PREPARERS[args.dataset](source, f"data/prepared/{args.dataset}", settings)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
