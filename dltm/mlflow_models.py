"""Every trained Keras model as an MLflow Model, registered under its task, and served on raw text.

What a training run logs (MLflow 3 logged models, found as ``runs:/<run id>/<name>`` or ``models:/<model id>``),
by :func:`log_models`:

- ``model``: the keras flavor (``mlflow.keras.load_model``; through ``mlflow.pyfunc`` it takes the encoded
  inputs), with a signature read from the model's input and output shapes and an input example.
- ``text_model``, for a model that reads text: a pyfunc that takes **raw text**, with the cleaner, the tokenizer
  and the padding inside (:class:`TextClassifierModel`: labels and probabilities), or the vocabulary
  (:class:`LanguageModelPyfunc`: a continuation of each seed text; params ``length``, ``temperature``, ``seed``),
  or the translator's vocabularies (:class:`TranslatorPyfunc`: the translation of each text; param ``beam``),
  or a reader's vocabulary (:class:`ReaderPyfunc`: the answer span of each (context, question) pair), or a
  collection of documents with a gensim Doc2Vec model (:class:`SearchPyfunc`: the nearest documents of each
  query text; param ``k``).

Both are saved for inference, uncompiled, without optimizer state (``models/<task>/model.keras`` keeps it). A run
that trains several models in itself (chapter 3's housing regressions) names them after their folders
(``model-nn``); a task that trains one model per child run (folds, repeats, comparisons) logs each in its child
run, named the same way (``model-fold_0``).

The ``evaluate`` stage then registers the run's top-level model (:func:`register`): ``text_model`` where there
is one, else ``model``, as a version of the registered model named after the run (the task id, with its variant:
``ch07_kim2014-static``), one version per run, with the run's params and latest metrics on its logged model and
the deciding metric in its tags; the alias ``champion`` follows the best value of the task's metric on the test
split (:func:`lower_is_better` says which way). Runs without a top-level model register nothing: a
cross-validated ``ch07_kim2014`` (each fold's model saw a different 90% and its score describes the protocol,
not one deployable model; a holdout run of the same variant registers), a comparison of several models, a task
without a Keras model.

The pyfuncs import this package (``dltm``, installed by ``pip install -e .``) when they load, so load and serve
them in the project's environment (``mlflow models serve --env-manager local``); their requirements.txt pins
what they import besides. Every call here is guarded as :class:`dltm.tracking.Tracker`'s are: a failure becomes
one entry of the tracker's ``failures`` (one warning when the run ends) and costs only itself, never a DVC output.
"""

import contextlib
import importlib.metadata
import logging
import math
import os
import shutil
import tempfile
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from dltm.cli import UserError
from dltm.inference import DATA_INFO_FILE, MODEL_FILE, TOKENIZER_FILE, VOCAB_FILE, LanguageModel, TextClassifier
from dltm.spans import READER_FILE
from dltm.tasks import lower_is_better
from dltm.tracking import Tracker, tracking_uri
from dltm.translation import TRANSLATOR_FILE

KERAS_MODEL, TEXT_MODEL = "model", "text_model"
"""The names of a run's logged models: the keras flavor, and the pyfunc that takes raw text."""
CHAMPION = "champion"
"""The alias of the version with the best test metric of a registered model."""
METRIC_TAG, VALUE_TAG = "dltm.metric", "dltm.metric_value"
"""Model version tags: the metric that decides the champion (``test_<Task.metric>``) and its value."""
REQUIREMENTS = ("mlflow", "keras", "tensorflow", "numpy", "pandas", "keras-hub", "tensorflow-text", "jieba",
                "gensim")
"""What a logged model needs besides dltm: chapter 12's models hold KerasHub layers, and its WordPiece encoder
tokenizes with TensorFlow Text; chapter 13's reader segments Chinese with jieba; chapter 14's search infers
paragraph vectors with gensim."""


def model_name(base: str, sub: str = "") -> str:
    """The logged model name of a model: ``base``, or ``base-<sub>`` for one of several models of a run."""
    return f"{base}-{sub}" if sub else base


def pip_requirements() -> list[str]:
    """The installed versions of what the logged models import besides dltm, pinned. Given explicitly: MLflow
    would otherwise load each model in a new process to find them out."""
    return [f"{p}=={importlib.metadata.version(p)}" for p in REQUIREMENTS]


def _first_line(e: Exception) -> str:
    text = getattr(e, "message", None) or str(e)
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def _guarded(tracker: Tracker, what: str, fn: Callable[[], Any]) -> Any:
    """``fn()`` while the tracker's run is MLflow's active run; None, and ``what`` with the error in
    ``tracker.failures``, when it fails. (The flavors log to the active run: checking it means a model never goes
    to another run and no run is started for it.)"""
    if not tracker.active:
        tracker.failures.append(what)
        return None
    try:
        active = mlflow.active_run()
        if active is None or active.info.run_id != tracker.run_id:
            raise RuntimeError(f"the active MLflow run is not {tracker.run_name}'s")
        return fn()
    except Exception as e:
        tracker.failures.append(f"{what} ({_first_line(e)})")
        return None


# -- the keras flavor ----------------------------------------------------------------------------------------


def keras_signature(model):
    """The model's signature, with the model's dtypes and shapes; the batch and every free dimension (a
    character model's sequence length) are -1. One input: an unnamed tensor; several (chapter 10's encoder and
    decoder inputs): tensors named as the model's inputs. Raises ValueError for a model with several outputs."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    if len(model.outputs) != 1:
        raise ValueError(f"{model.name}: {len(model.outputs)} outputs; the signature here describes one")

    def spec(t, name=None):
        return TensorSpec(np.dtype(t.dtype), (-1, *(-1 if d is None else int(d) for d in t.shape[1:])), name)

    inputs = [spec(model.inputs[0])] if len(model.inputs) == 1 else [spec(t, _input_name(t)) for t in model.inputs]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([spec(model.outputs[0])]))


def _input_name(t) -> str:
    """A functional model's input name (``encoder_inputs``), as Keras takes it in a dict of inputs."""
    return t.name.split(":")[0]


def keras_example(model, rows: np.ndarray | None = None) -> np.ndarray | dict[str, np.ndarray]:
    """An input example: the first of ``rows`` (inputs of the training data) in the model's input dtype, or
    zeros of the input shape (free dimensions 1). A model with a fixed batch size (a stateful RNN) gets that many
    rows of zeros; one with several inputs gets zeros for each, by name."""
    def zeros(t):
        return np.zeros((t.shape[0] or 1, *(d or 1 for d in t.shape[1:])), dtype=np.dtype(t.dtype))

    if len(model.inputs) > 1:
        return {_input_name(t): zeros(t) for t in model.inputs}
    t = model.inputs[0]
    if rows is None:
        return zeros(t)
    return np.asarray(rows)[:1].astype(np.dtype(t.dtype))


KERAS_OBJECT_MODULES = ("dltm.rnn", "dltm.layers", "dltm.attention", "dltm.self_attention", "dltm.reading")
"""The library modules that register Keras objects (``keras.saving.register_keras_serializable``); the chapter
modules (``dltm.tasks.CHAPTER_MODULES``) register their own (losses, metrics, layers)."""


def register_keras_objects() -> None:
    """Import every module of the project that registers Keras objects, so that ``keras.saving.load_model`` finds
    them: Keras imports the module of a saved object itself only for its own packages (keras, keras_hub), so a
    fresh process that loads a model with dltm's layers (``MeanOverTime``, the attention layers ...) must import
    them first. Call it before ``mlflow.keras.load_model``; the logged models' pyfunc loader calls it."""
    from dltm.tasks import CHAPTER_MODULES

    for name in (*KERAS_OBJECT_MODULES, *CHAPTER_MODULES):
        importlib.import_module(name)


def load_keras_model(model_uri: str):
    """A logged keras-flavor model (``runs:/<id>/model``, ``models:/<name>@champion``) as a ``keras.Model``, in
    any process: :func:`register_keras_objects`, then ``mlflow.keras.load_model``."""
    register_keras_objects()
    return mlflow.keras.load_model(model_uri)


def _load_pyfunc(path: str):
    """The pyfunc loader of the logged keras models (their MLmodel's ``python_function`` ``loader_module`` is this
    module): MLflow's own keras loader, after :func:`register_keras_objects`. So ``mlflow.pyfunc.load_model`` and
    ``mlflow models serve`` load a model with the project's layers in a fresh process."""
    from mlflow.keras.load import _load_pyfunc as load

    register_keras_objects()
    return load(path)


def _save_keras(path: str, **kwargs) -> None:
    # mlflow.keras.save_model writes the input example before it creates the model's folder (mlflow#16183, still
    # so in 3.17): create the folder first. Model.log calls this as it would call the flavor's save_model.
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    kwargs.pop("validate_serving_input", None)  # Model.log's own switch, which it also passes on
    os.makedirs(path)
    mlflow.keras.save_model(path=path, **kwargs)
    # the pyfunc flavor loads through _load_pyfunc, which registers the project's Keras objects first
    model = kwargs.get("mlflow_model") or Model.load(os.path.join(path, MLMODEL_FILE_NAME))
    model.flavors[mlflow.pyfunc.FLAVOR_NAME]["loader_module"] = __name__
    model.save(os.path.join(path, MLMODEL_FILE_NAME))


def _save_pyfunc(path: str, **kwargs) -> None:
    kwargs.pop("validate_serving_input", None)  # Model.log's own switch, which it also passes on
    mlflow.pyfunc.save_model(path=path, **kwargs)


_KERAS_FLAVOR = types.SimpleNamespace(__name__="mlflow.keras", save_model=_save_keras)
_PYFUNC_FLAVOR = types.SimpleNamespace(__name__="mlflow.pyfunc", save_model=_save_pyfunc)


def _log_keras(name: str, model, rows: np.ndarray | None, validate: bool = True):
    from mlflow.models import Model

    return Model.log(None, name=name, flavor=_KERAS_FLAVOR, model=model, signature=keras_signature(model),
                     input_example=keras_example(model, rows), pip_requirements=pip_requirements(),
                     validate_serving_input=validate)


# -- raw text in: the pyfuncs --------------------------------------------------------------------------------


def _bad_input(e: UserError) -> MlflowException:
    """A user's mistake as MLflow's invalid-parameter error, which ``mlflow models serve`` answers with 400."""
    return MlflowException.invalid_parameter_value(str(e))


class TextClassifierModel(mlflow.pyfunc.PythonModel):
    """A text classifier that takes raw text: ``predict(["a gorgeous, witty movie"])`` -> a DataFrame with one
    row per text: ``label``, ``probability`` (of that label) and ``probabilities`` ({class: probability}).

    Its artifact ``text_classifier`` is a folder laid out as ``models/<task>/`` (``model.keras``,
    ``tokenizer.json``, ``data_info.json``), read by :class:`dltm.inference.TextClassifier`, as ``stages.predict``
    reads the workspace's. An empty text, or one without a word the model knows, is refused (MLflow's
    INVALID_PARAMETER_VALUE; 400 from a server).
    """

    def __getstate__(self) -> dict:  # MLflow loads the context before it pickles the model: leave that out
        return {k: v for k, v in self.__dict__.items() if k != "classifier"}

    def load_context(self, context) -> None:
        self.classifier = TextClassifier(context.artifacts["text_classifier"])
        self.classifier.model  # noqa: B018 -- load the Keras model now, not on the first request

    def predict(self, context, model_input: list[str], params: dict[str, Any] | None = None):
        try:
            found = self.classifier.predict(list(model_input))
        except UserError as e:
            raise _bad_input(e) from None
        return pd.DataFrame({"label": [p.label for p in found], "probability": [p.probability for p in found],
                             "probabilities": [p.probabilities for p in found]})


class LanguageModelPyfunc(mlflow.pyfunc.PythonModel):
    """A language model that takes seed texts: ``predict(["ROMEO:"], params={"length": 100})`` -> a DataFrame
    with ``seed_text`` and ``generated`` (what follows it: characters, or words joined by spaces) per text.

    Params: ``length`` (characters or words), ``temperature`` (0: greedy) and ``seed`` (the same seed, the same
    text), with the defaults of :attr:`DEFAULTS`, which the signature shows. Its artifact ``language_model`` is a
    folder with ``model.keras`` and ``vocab.json``, read by :class:`dltm.inference.LanguageModel`. A seed text it
    cannot read, or a bad param, is refused (INVALID_PARAMETER_VALUE; 400 from a server).
    """

    DEFAULTS = {"length": {"characters": 100, "words": 20}, "temperature": 0.8, "seed": 1}

    def __getstate__(self) -> dict:  # MLflow loads the context before it pickles the model: leave that out
        return {k: v for k, v in self.__dict__.items() if k != "lm"}

    def load_context(self, context) -> None:
        self.lm = LanguageModel(context.artifacts["language_model"])
        self.lm.model  # noqa: B018 -- load the Keras model now, not on the first request

    def predict(self, context, model_input: list[str], params: dict[str, Any] | None = None):
        p = {**self.defaults(self.lm.unit), **(params or {})}
        try:
            generated = [self.lm.generate(text, p["length"], p["temperature"], p["seed"]) for text in model_input]
        except UserError as e:
            raise _bad_input(e) from None
        return pd.DataFrame({"seed_text": list(model_input), "generated": generated})

    @classmethod
    def defaults(cls, unit: str) -> dict[str, Any]:
        """The default params of a model that generates ``unit`` ('characters' or 'words')."""
        return {"length": cls.DEFAULTS["length"][unit], "temperature": cls.DEFAULTS["temperature"],
                "seed": cls.DEFAULTS["seed"]}


class TranslatorPyfunc(mlflow.pyfunc.PythonModel):
    """An encoder-decoder that takes raw text: ``predict(["How are you?"], params={"beam": 3})`` -> a DataFrame
    with ``source`` and ``translation`` per text. Params: ``beam`` (1: greedy, the book's decoding; K: beam search
    of K hypotheses) and ``length_alpha`` (beam scores ``log p / length ** alpha``), defaults :attr:`DEFAULTS`.
    Its artifact ``translator`` is a folder with ``model.keras`` and ``translator.json``, read by
    :func:`dltm.translation.load_translator`. An empty text or a beam below 1 is refused (INVALID_PARAMETER_VALUE;
    400 from a server)."""

    DEFAULTS = {"beam": 1, "length_alpha": 1.0}

    def __getstate__(self) -> dict:  # MLflow loads the context before it pickles the model: leave that out
        return {k: v for k, v in self.__dict__.items() if k != "translator"}

    def load_context(self, context) -> None:
        from dltm.translation import load_translator

        self.translator = load_translator(context.artifacts["translator"])

    def predict(self, context, model_input: list[str], params: dict[str, Any] | None = None):
        p = {**self.DEFAULTS, **(params or {})}
        texts = list(model_input)
        try:
            out = self.translator.translate(texts, beam=int(p["beam"]), alpha=float(p["length_alpha"]))
        except UserError as e:
            raise _bad_input(e) from None
        return pd.DataFrame({"source": texts, "translation": out})


class ReaderPyfunc(mlflow.pyfunc.PythonModel):
    """An extractive reader (chapter 13.3) that takes (context, question) pairs: ``predict(pd.DataFrame(
    {"context": [...], "question": [...]}))`` -> a DataFrame with ``answer`` (a span of the context), ``score``
    (p_start x p_end) and ``start`` (the answer's first character in the context) per row. Its artifact
    ``reader`` is a folder with ``model.keras`` and ``reader.json``, read by :class:`dltm.spans.SpanReader`. A
    row without both columns, or with an empty text, is refused (INVALID_PARAMETER_VALUE; 400 from a server)."""

    def __getstate__(self) -> dict:  # MLflow loads the context before it pickles the model: leave that out
        return {k: v for k, v in self.__dict__.items() if k != "reader"}

    def load_context(self, context) -> None:
        from dltm.spans import SpanReader

        self.reader = SpanReader(context.artifacts["reader"])
        self.reader.model  # noqa: B018 -- load the Keras model now, not on the first request

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        frame = pd.DataFrame(model_input)
        missing = [c for c in ("context", "question") if c not in frame.columns]
        if missing:
            raise _bad_input(UserError(f"the input needs the columns context and question; missing: "
                                       f"{', '.join(missing)}"))
        try:
            found = self.reader.answer(list(zip(frame["context"], frame["question"], strict=True)))
        except UserError as e:
            raise _bad_input(e) from None
        return pd.DataFrame({"answer": [a.answer for a in found], "score": [a.score for a in found],
                             "start": [a.start for a in found]})


def _log_reader(name: str, folder: Path, validate: bool = True):
    from mlflow.models import Model

    from dltm.io import read_json

    example = read_json(folder / READER_FILE).get("example") or {}
    frame = pd.DataFrame({"context": [str(example.get("context") or "北京是中国的首都。")],
                          "question": [str(example.get("question") or "中国的首都是哪里？")]})
    return Model.log(None, name=name, flavor=_PYFUNC_FLAVOR, python_model=ReaderPyfunc(),
                     artifacts={"reader": str(folder)}, input_example=frame,
                     pip_requirements=pip_requirements(), validate_serving_input=validate)


class SearchPyfunc(mlflow.pyfunc.PythonModel):
    """A document search (chapter 14) that takes query texts: ``predict(["a tense thriller"], params={"k": 5})``
    -> a DataFrame with ``k`` rows per query, best first: ``query``, ``rank``, ``similarity`` (cosine),
    ``label``, ``name`` and ``text`` (its first 160 characters) of each document. Its artifact ``search`` is the
    folder :func:`dltm.retrieval.open_searcher` reads (models/<task>/search/: paragraph vectors or
    skip-thought vectors). An empty query, or one without a known word, is refused (INVALID_PARAMETER_VALUE;
    400 from a server)."""

    DEFAULTS = {"k": 10}

    def __getstate__(self) -> dict:  # MLflow loads the context before it pickles the model: leave that out
        return {k: v for k, v in self.__dict__.items() if k != "searcher"}

    def load_context(self, context) -> None:
        from dltm.retrieval import open_searcher

        self.searcher = open_searcher(context.artifacts["search"])

    def predict(self, context, model_input: list[str], params: dict[str, Any] | None = None):
        from dltm.retrieval import describe

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame({"query": list(model_input)})
        column = "query" if "query" in frame.columns else frame.columns[0]
        k = int((params or {}).get("k", self.DEFAULTS["k"]))
        rows = []
        if k < 1:
            raise _bad_input(UserError(f"k must be at least 1, got {k}"))
        try:
            for query in frame[column].astype(str):
                rows += [{"query": query, **row} for row in describe(self.searcher.search(query, k))]
        except UserError as e:
            raise _bad_input(e) from None
        return pd.DataFrame(rows, columns=["query", "rank", "similarity", "label", "name", "text"])


def log_searcher(tracker: Tracker, folder: Path, example: str, validate: bool = True) -> Any:
    """Log ``folder`` (a :func:`dltm.retrieval.open_searcher` folder) as the run's ``text_model``:
    :class:`SearchPyfunc`, with ``example`` as its input example. Guarded: a failure is one entry of
    ``tracker.failures``. Returns MLflow's ModelInfo, or None."""
    from mlflow.models import Model

    def log():
        return Model.log(None, name=TEXT_MODEL, flavor=_PYFUNC_FLAVOR, python_model=SearchPyfunc(),
                         artifacts={"search": str(folder)}, input_example=([example], SearchPyfunc.DEFAULTS),
                         pip_requirements=pip_requirements(), validate_serving_input=validate)

    with _quiet_logging():
        return _guarded(tracker, f"logged model {TEXT_MODEL}", log)


def _log_translator(name: str, folder: Path, validate: bool = True):
    from mlflow.models import Model

    from dltm.io import read_json

    example = str(read_json(folder / TRANSLATOR_FILE).get("example") or "Hi.")
    return Model.log(None, name=name, flavor=_PYFUNC_FLAVOR, python_model=TranslatorPyfunc(),
                     artifacts={"translator": str(folder)}, input_example=([example], TranslatorPyfunc.DEFAULTS),
                     pip_requirements=pip_requirements(), validate_serving_input=validate)


def _log_text_classifier(name: str, folder: Path, validate: bool = True):
    from mlflow.models import Model

    return Model.log(None, name=name, flavor=_PYFUNC_FLAVOR, python_model=TextClassifierModel(),
                     artifacts={"text_classifier": str(folder)}, input_example=[TextClassifier(folder).example_text()],
                     pip_requirements=pip_requirements(), validate_serving_input=validate)


def _log_language_model(name: str, folder: Path, validate: bool = True):
    from mlflow.models import Model

    lm = LanguageModel(folder)  # the input example's params become the signature's defaults
    return Model.log(None, name=name, flavor=_PYFUNC_FLAVOR, python_model=LanguageModelPyfunc(),
                     artifacts={"language_model": str(folder)},
                     input_example=([lm.example_seed()], LanguageModelPyfunc.defaults(lm.unit)),
                     pip_requirements=pip_requirements(), validate_serving_input=validate)


def servable_copy(model_dir: Path, dest: Path) -> tuple[Path, Any]:
    """``dest/<model_dir name>/`` laid out as ``model_dir``, for inference: ``model.keras`` loaded uncompiled and
    saved again (no optimizer state: a third of the size with Adam; Keras 3 ignores ``include_optimizer`` for a
    ``.keras`` file), and the files that read text beside it (tokenizer.json, data_info.json, vocab.json).
    Returns the folder and the uncompiled model."""
    from dltm.training import load_keras_model

    model = load_keras_model(model_dir / MODEL_FILE, compile=False)
    folder = dest / model_dir.name
    folder.mkdir()
    model.save(folder / MODEL_FILE)
    for name in (TOKENIZER_FILE, DATA_INFO_FILE, VOCAB_FILE, TRANSLATOR_FILE, READER_FILE):
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, folder / name)
    return folder, model


def log_models(tracker: Tracker, model_dir: Path, rows: np.ndarray | None = None, sub: str = "") -> dict[str, Any]:
    """Log the model that training saved in ``model_dir`` to the tracker's run as MLflow Models: ``model`` (the
    keras flavor, with :func:`keras_signature` and :func:`keras_example` of ``rows``, inputs of the training
    data) and, where ``model_dir`` holds what reads text, ``text_model``: :class:`TextClassifierModel` beside a
    tokenizer.json, :class:`LanguageModelPyfunc` beside a vocab.json. ``sub`` names one of several models of the
    run (``model-<sub>``, ``text_model-<sub>``).

    Logs a :func:`servable_copy`. Returns {name: MLflow's ModelInfo} of what was logged; what could not be is
    one entry each in ``tracker.failures``.
    """
    import keras

    interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()  # MLflow checks a model by predicting its input example with
    try:  # Keras' default verbosity: a progress bar on the stage's console otherwise
        return _log_models(tracker, model_dir, rows, sub)
    finally:
        if interactive:
            keras.config.enable_interactive_logging()


def _log_models(tracker: Tracker, model_dir: Path, rows: np.ndarray | None, sub: str) -> dict[str, Any]:
    logged: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        copy = _guarded(tracker, f"logged models of {model_dir}", lambda: servable_copy(Path(model_dir), Path(tmp)))
        if copy is None:
            return logged
        folder, model = copy
        keras_name, text_name = model_name(KERAS_MODEL, sub), model_name(TEXT_MODEL, sub)
        # MLflow reloads a logged model to serve its input example (seconds each): the run's own model is
        # checked so; one of several (folds, repeats) is written the same way, unchecked, to keep a 10-fold run fast
        validate = not sub
        logs = {keras_name: lambda: _log_keras(keras_name, model, rows, validate)}
        if (folder / TOKENIZER_FILE).is_file():
            logs[text_name] = lambda: _log_text_classifier(text_name, folder, validate)
        elif (folder / VOCAB_FILE).is_file():
            logs[text_name] = lambda: _log_language_model(text_name, folder, validate)
        elif (folder / TRANSLATOR_FILE).is_file():
            logs[text_name] = lambda: _log_translator(text_name, folder, validate)
        elif (folder / READER_FILE).is_file():
            logs[text_name] = lambda: _log_reader(text_name, folder, validate)
        with _quiet_logging():
            for name, log in logs.items():
                info = _guarded(tracker, f"logged model {name}", log)
                if info is not None:
                    logged[name] = info
    return logged


@contextlib.contextmanager
def _quiet_logging():
    """No console output while MLflow logs a model: it predicts the input example through Keras (a progress bar
    on stdout) and warns that a ``python_model`` object is pickled (ours hold no state: the class is all that
    is pickled, a few hundred bytes)."""
    import keras

    was = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    pyfunc_log = logging.getLogger("mlflow.pyfunc")  # the CloudPickle warning is a log record, not a warning
    level = pyfunc_log.level
    pyfunc_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*python_model.*")
            warnings.filterwarnings("ignore", message=".*[Cc]loud[Pp]ickle.*")
            yield
    finally:
        pyfunc_log.setLevel(level)
        if was:
            keras.config.enable_interactive_logging()


def load_text_classifier(uri: str) -> TextClassifier:
    """The :class:`~dltm.inference.TextClassifier` inside the ``text_model`` at ``uri`` (``runs:/<run id>/
    text_model``, ``models:/<task>@champion``, ``models:/<task>/<version>``), loaded through ``mlflow.pyfunc``
    from the project's tracking store (:func:`dltm.tracking.tracking_uri`).

    Raises UserError for a URI MLflow cannot load (no such run, model, version or alias) and for a model that is
    not a text classifier's ``text_model``.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri())
    try:
        loaded = mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as e:
        raise UserError(f"{uri}: cannot load it from {tracking_uri()} ({_first_line(e)})") from None
    try:
        inner = loaded.unwrap_python_model()
    except MlflowException:
        inner = None
    if not isinstance(inner, TextClassifierModel):
        flavors = ", ".join(sorted(loaded.metadata.flavors))
        raise UserError(f"{uri}: not a text classifier's {TEXT_MODEL} (its flavors: {flavors}); predict takes "
                        f"runs:/<run id>/{TEXT_MODEL} or models:/<task>@{CHAMPION} of a text classifier")
    return inner.classifier


# -- the Model Registry --------------------------------------------------------------------------------------


def held_out_metric(task_metric: str, metrics: dict[str, Any]) -> tuple[str, float] | None:
    """(``test_<metric>``, its value): the task's metric in the evaluate stage's ``metrics``, found as
    ``test_<metric>``, else under its bare name (metrics files name held-out results either way while they move
    to ``test_*``); None when it is not there as a finite number."""
    base = task_metric.removeprefix("test_")
    for key in (f"test_{base}", base):
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return f"test_{base}", float(value)
    return None


def register(tracker: Tracker, name: str, task_metric: str, metrics: dict[str, Any]) -> str | None:
    """Register the top-level model of the tracker's run as a version of the registered model ``name``, and move
    the alias ``champion`` to the best version of ``name`` by the task's metric on the test split.

    The ``evaluate`` stage calls it with the task's ``metric`` and the metrics its evaluation returned. It
    registers ``text_model`` where the run has one, else ``model``, and nothing when the run has neither (the
    module docstring says which runs those are). The run's latest metrics are linked to the logged model (its
    params were copied to it when it was logged), so that the version shows both. Evaluating the same run again
    updates its version rather than adding one. Returns the version; None when there is nothing to register, and
    when MLflow fails (then with one entry in ``tracker.failures``).
    """
    if not tracker.active:
        tracker.failures.append(f"registering {name}")
        return None
    try:
        return _register(mlflow.MlflowClient(tracking_uri()), tracker, name, task_metric, metrics)
    except Exception as e:
        tracker.failures.append(f"registering {name} ({_first_line(e)})")
        return None


def _link_run_metrics(client, run, model_id: str) -> None:
    """Log the run's latest value of each metric again, with the same timestamp and step, linked to the logged
    model ``model_id`` (MLflow keeps one row per identical metric in the run; the machine's ``system/*`` are
    left out)."""
    from mlflow.entities import Metric

    latest = []
    for key in run.data.metrics:
        if key.startswith("system/"):
            continue
        history = client.get_metric_history(run.info.run_id, key)
        if history:
            m = max(history, key=lambda m: (m.step, m.timestamp))
            latest.append(Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id, run_id=run.info.run_id))
    for start in range(0, len(latest), 1000):
        client.log_batch(run.info.run_id, metrics=latest[start:start + 1000])


def _link_version(client, model_id: str, name: str, version: str) -> None:
    """Record ``name`` version ``version`` on the logged model (its ``mlflow.modelVersions`` tag), which the
    logged model's page reads for its "Registered" field, as ``mlflow.register_model`` does; MlflowClient's
    ``create_model_version`` (used here for the tracker's own store, not the global one) leaves it out."""
    import json

    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    existing = client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS)
    versions = json.loads(existing) if existing else []
    entry = {"name": name, "version": version}
    if entry not in versions:
        client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*versions, entry])})


def _register(client, tracker: Tracker, name: str, task_metric: str, metrics: dict[str, Any]) -> str | None:
    run = client.get_run(tracker.run_id)
    outputs = run.outputs.model_outputs if run.outputs else []
    logged = {m.name: m for m in (client.get_logged_model(o.model_id) for o in outputs)}
    model = logged.get(TEXT_MODEL) or logged.get(KERAS_MODEL)
    if model is None:
        return None
    _link_run_metrics(client, run, model.model_id)
    try:
        client.create_registered_model(name, description=f"dltm: the models of {name}; {CHAMPION}: the best "
                                                         f"test_{task_metric.removeprefix('test_')}")
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    mine = client.search_model_versions(f"name = '{name}' and run_id = '{run.info.run_id}'")
    if mine:
        version = mine[0]
    else:
        version = client.create_model_version(name, f"models:/{model.model_id}", run_id=run.info.run_id,
                                              model_id=model.model_id)
        _link_version(client, model.model_id, name, str(version.version))
    found = held_out_metric(task_metric, metrics)
    if found is None:
        tracker.failures.append(f"the {CHAMPION} of {name}: no {task_metric} among the metrics, so version "
                                f"{version.version} is not compared")
        return str(version.version)
    client.set_model_version_tag(name, version.version, METRIC_TAG, found[0])
    client.set_model_version_tag(name, version.version, VALUE_TAG, repr(found[1]))
    update_champion(client, name, found[0])
    return str(version.version)


def update_champion(client, name: str, metric: str) -> str | None:
    """Point ``<name>@champion`` at the best of the versions tagged with ``metric``. The champion stays unless
    another version is strictly better; among equals the earliest wins. Returns the champion's version (None when
    no version has ``metric``)."""
    scored = [(float(v.tags[VALUE_TAG]), int(v.version)) for v in client.search_model_versions(f"name = '{name}'")
              if v.tags.get(METRIC_TAG) == metric and VALUE_TAG in v.tags]
    if not scored:
        return None
    sign = 1.0 if lower_is_better(metric) else -1.0
    best_value, best = min(scored, key=lambda s: (sign * s[0], s[1]))
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if (current is not None and current.tags.get(METRIC_TAG) == metric
            and float(current.tags.get(VALUE_TAG, "nan")) == best_value):
        return str(current.version)
    client.set_registered_model_alias(name, CHAMPION, str(best))
    return str(best)
