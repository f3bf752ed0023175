"""dltm: the shared library behind the chapters of 《深度学习与文本挖掘》 on TensorFlow 2.21 / Keras 3.

Every chapter module in ``pipelines/`` imports from here; every DVC stage in ``stages/`` is a thin wrapper
around it. The pieces, each written once:

- ``dltm.datasets``   the dataset registry, verified downloads, the offline mirror
- ``dltm.text``       Kim's clean_str and a tokenizer with the Keras 2 Tokenizer's semantics
- ``dltm.params``     params.yaml, the run-wide caps and settings
- ``dltm.runtime``    seeds, determinism, mixed precision, distribution strategy
- ``dltm.training``   one Keras training loop over tf.data
- ``dltm.evaluation`` classification metrics and the confusion-matrix picture
- ``dltm.tracking``   MLflow, never allowed to lose a finished result
- ``dltm.tasks``      the task registry: task id -> chapter module, book section, reference numbers
- ``dltm.report``     reports/results.md
"""

__version__ = "0.1.0"
