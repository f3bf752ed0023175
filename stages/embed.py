"""DVC stage ``embed@<task>-<corpus>``: train word vectors (chapter 6) on a prepared corpus.

``python -m stages.embed ch06_gensim_skipgram --variant ptb`` writes ``data/embeddings/<task>-<corpus>/``
(``vectors.txt`` in the word2vec text format, ``run.json``; the Keras model for ``ch06_word2vec_keras``) and
opens the MLflow run that ``evaluate_embedding@<task>-<corpus>`` completes. Chapter 7 reads the vectors.
It is ``stages.train`` for the tasks whose outputs are embeddings.
"""

from __future__ import annotations

import sys

from dltm import cli
from stages import train


def main(argv: list[str] | None = None) -> int:
    return train.main(argv, stage="embed")


if __name__ == "__main__":
    sys.exit(cli.run(main))
