"""The DVC stages, thin and generic over task ids: ``python -m stages.train ch07_kim_cnn``.

``dltm`` is imported first, so that TensorFlow's start-up is quiet in every stage (``DLTM_VERBOSE=1`` brings its
messages back) and a stage imports Keras only when its task needs it.
"""

import dltm  # noqa: F401
