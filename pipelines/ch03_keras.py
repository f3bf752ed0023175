"""Chapter 3: Keras (第三章 Keras, book lines 574-1266).

The book's sections, in order, and the task ids that run them:

- 3.2.5 chapter 2's breakfast prices as a Keras Dense(1) model (lines 888-916)  -> ``ch03_breakfast_keras``
- 3.3.1 a binary MLP on UCI Ionosphere (918-1054)                            -> ``ch03_ionosphere_mlp``
- 3.3.2 a 3-class MLP on Iris, and predicting one flower (1056-1116)         -> ``ch03_iris_mlp``
- 3.3.3 regression on Boston housing: NN against SVR and LinearRegression
        (1118-1214), plus standardized features and tuned models            -> ``ch03_boston_regression``
- 3.3.4 fitting a noisy sine curve with a small sigmoid network (1216-1266)  -> ``ch03_sine_fit``

Variable names follow the book (``X``, ``y``, ``X_train``, ``y_test``, ``n_features``, ``model``, ``yhat``,
``svr_rbf``, ``reg``). The book splits with ``train_test_split(test_size=0.33)`` and no seed; here the split
uses ``run.seed``, so a run is repeatable. The data path: ``dvc repro download@<dataset>`` writes
``data/raw/<dataset>/<file>.txt`` (the book's companion files) and the tasks read it with
:func:`dltm.data.load_table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import keras
import numpy as np
from keras import layers

from dltm import datasets, runtime
from dltm import params as P
from dltm.data import load_table
from dltm.evaluation import line_png, predicted_vs_actual_png, write_metrics
from dltm.io import atomic_path, write_json
from dltm.params import require
from dltm.tasks import Context, Reference, Task
from dltm.training import (
    MODEL_FILE,
    ClassifierData,
    FitSettings,
    evaluate_classifier,
    load_model,
    make_dataset,
    train_classifier,
)

# ------------------------------------------------------------------------------------------------------------
# 3.2.5 The breakfast prices of 2.3.2 in Keras (lines 888-916)
#
# Dense(1) with a bias, the default SGD (learning rate 0.01), mse, 500 epochs of batch 1; then the price of
# one of each item, [[1, 1, 1]], whose true value is 150 + 50 + 100 = 300.
# ------------------------------------------------------------------------------------------------------------

X = [[2, 5, 3], [1, 4, 7], [2, 3, 5], [3, 6, 9], [7, 4, 1]]
y = [850, 1050, 950, 1650, 1350]
X2 = [[1, 1, 1]]
y2 = [300]


def regression_data(x_train, y_train, x_test, y_test, **info) -> ClassifierData:
    """Float32 arrays in the container the shared training loop takes (no classes: a regression)."""
    f = np.float32
    return ClassifierData(np.asarray(x_train, f), np.asarray(y_train, f), np.asarray(x_test, f),
                          np.asarray(y_test, f), class_names=[], info=info)


def build_breakfast(data: ClassifierData) -> keras.Model:
    model = keras.Sequential(name="breakfast")
    model.add(keras.Input(shape=(3,)))
    model.add(layers.Dense(1))
    return model


def train_breakfast_keras(ctx: Context) -> dict[str, Any]:
    fit = FitSettings.from_params(ctx.params, ctx.task.id)
    return train_classifier(ctx, regression_data(X, y, X2, y2), build_breakfast, fit, validate=False,
                            loss="mse", metrics=[])


def evaluate_breakfast_keras(ctx: Context) -> dict[str, Any]:
    model = load_model(ctx)
    kernel, bias = (np.asarray(w, dtype=np.float64).ravel() for w in model.get_weights())
    price = float(model.predict(np.asarray(X2, np.float32), verbose=0).ravel()[0])
    metrics = {
        "prediction": price, "abs_error": abs(price - y2[0]),
        "train_mse": float(model.evaluate(np.asarray(X, np.float32), np.asarray(y, np.float32), verbose=0)),
        "weight_side_dish": float(kernel[0]), "weight_bun": float(kernel[1]), "weight_drink": float(kernel[2]),
        "bias": float(bias[0]),
    }
    write_json(ctx.eval_dir / "weights.json", {"X2": X2, "prediction": price, "weights": kernel.tolist(),
                                               "bias": float(bias[0])})  # the book's print(model.get_weights())
    # [[1, 1, 1]] is no meal of the training data: a held-out query; the weights are no split measurement
    return write_metrics(ctx, metrics, keep=["train_mse", "weight_side_dish", "weight_bun", "weight_drink", "bias"])


# ------------------------------------------------------------------------------------------------------------
# 3.3.1 / 3.3.2 Classifying UCI tables with an MLP (lines 918-1116)
#
# read_csv(header=None); X = all columns but the last as float32; y = LabelEncoder().fit_transform(last);
# train_test_split(test_size=0.33); Dense(10, relu, he_normal) -> Dense(8, relu, he_normal) -> output.
# ------------------------------------------------------------------------------------------------------------

TABLES = {"ionosphere": ("ionosphere.txt", 34), "iris": ("iris.txt", 4), "housing": ("housing.txt", 13)}


def read_table(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    name, n_features = TABLES[ctx.task.dataset]
    return load_table(datasets.require(ctx.task.dataset, ctx.root / "data" / "raw") / name, n_features)


def split(ctx: Context, X, y):
    """The book's ``train_test_split(X, y, test_size=0.33)``, seeded with run.seed."""
    from sklearn.model_selection import train_test_split

    test_size = require(ctx.params, "test_size", float, ctx.task.id)
    return train_test_split(X, y, test_size=test_size, random_state=ctx.run.seed, shuffle=True)


def table_classifier_data(ctx: Context) -> ClassifierData:
    from sklearn.preprocessing import LabelEncoder

    X, labels = read_table(ctx)
    encoder = LabelEncoder()
    y = encoder.fit_transform(labels).astype(np.int32)
    X_train, X_test, y_train, y_test = split(ctx, X, y)
    return ClassifierData(X_train, y_train, X_test, y_test, class_names=[str(c) for c in encoder.classes_],
                          info={"n_features": int(X.shape[1])})


def build_mlp(data: ClassifierData) -> keras.Model:
    """Dense(10, relu, he_normal) -> Dense(8, relu, he_normal) -> sigmoid(1) or softmax(classes)."""
    n_features = data.info["n_features"]
    model = keras.Sequential(name="mlp")
    model.add(keras.Input(shape=(n_features,)))
    model.add(layers.Dense(10, activation="relu", kernel_initializer="he_normal"))
    model.add(layers.Dense(8, activation="relu", kernel_initializer="he_normal"))
    if data.binary:
        model.add(layers.Dense(1, activation="sigmoid"))
    else:
        model.add(layers.Dense(len(data.class_names), activation="softmax"))
    return model


def train_table_mlp(ctx: Context) -> dict[str, Any]:
    fit = FitSettings.from_params(ctx.params, ctx.task.id)
    return train_classifier(ctx, table_classifier_data(ctx), build_mlp, fit)


def evaluate_ionosphere_mlp(ctx: Context) -> dict[str, Any]:
    return evaluate_classifier(ctx, table_classifier_data(ctx))


def evaluate_iris_mlp(ctx: Context) -> dict[str, Any]:
    """Test accuracy, then the book's last step: ``model.predict([row])`` for one flower, ``argmax``."""
    data = table_classifier_data(ctx)
    row = [float(v) for v in require(ctx.params, "flower", list, ctx.task.id)]

    def predict_one(model: keras.Model) -> dict[str, float]:
        yhat = model.predict(np.asarray([row], np.float32), verbose=0)[0]
        k = int(np.argmax(yhat))
        write_json(ctx.eval_dir / "flower.json", {"row": row, "probabilities": dict(
            zip(data.class_names, map(float, yhat), strict=True)), "predicted": data.class_names[k]})
        ctx.tracker.log_artifact(ctx.eval_dir / "flower.json", "samples")
        return {"flower_class": float(k), "flower_probability": float(yhat[k])}

    return evaluate_classifier(ctx, data, extra=predict_one)


# ------------------------------------------------------------------------------------------------------------
# 3.3.3 Regression on Boston housing (lines 1118-1214)
#
# The book: the MLP above with a linear output and mse, SVR(rbf, C=100, gamma=0.1, epsilon=0.1) and
# LinearRegression, all on the raw features, compared by test MSE and a 1x3 predicted-vs-actual picture.
# The book warns the comparison is untuned; the "scaled" models are the fair version: StandardScaler fitted
# on the training split, SVR's C/gamma/epsilon chosen by 5-fold grid search on the training split, and the
# NN trained longer with early stopping on a held-out slice of the training split.
# ------------------------------------------------------------------------------------------------------------


def housing_split(ctx: Context):
    X, medv = read_table(ctx)
    try:
        target = medv.astype(np.float32)
    except ValueError:
        raise ValueError(f"{ctx.task.dataset}: the MEDV column is not numeric") from None
    return split(ctx, X, target)


def build_regressor(data: ClassifierData) -> keras.Model:
    """The book's regression MLP: Dense(10, relu, he_normal) -> Dense(8, relu, he_normal) -> Dense(1)."""
    model = keras.Sequential(name="mlp_regression")
    model.add(keras.Input(shape=(data.info["n_features"],)))
    model.add(layers.Dense(10, activation="relu", kernel_initializer="he_normal"))
    model.add(layers.Dense(8, activation="relu", kernel_initializer="he_normal"))
    model.add(layers.Dense(1))
    return model


def dump(obj: Any, path: Path) -> None:
    with atomic_path(path, suffix=".joblib") as tmp:
        joblib.dump(obj, tmp)


def train_boston_regression(ctx: Context) -> dict[str, Any]:
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    p, where = ctx.params, ctx.task.id
    X_train, X_test, y_train, y_test = housing_split(ctx)
    n = ctx.run.cap_train(len(X_train))
    X_train, y_train = X_train[:n], y_train[:n]
    fit = FitSettings.from_params(p, where)
    info = train_classifier(ctx, regression_data(X_train, y_train, X_test, y_test, n_features=X_train.shape[1]),
                            build_regressor, fit, loss="mse", metrics=[], model_dir=ctx.model_dir / "nn")
    svr = require(p, "svr", dict, where)
    svr_rbf = SVR(kernel="rbf", C=svr["C"], gamma=svr["gamma"], epsilon=svr["epsilon"]).fit(X_train, y_train)
    reg = LinearRegression().fit(X_train, y_train)

    scaler = StandardScaler().fit(X_train)
    Xs_train, Xs_test = scaler.transform(X_train), scaler.transform(X_test)
    scaled_fit = FitSettings.from_params(require(p, "scaled_nn", dict, where), f"{where}.scaled_nn")
    scaled_info = train_classifier(
        ctx, regression_data(Xs_train, y_train, Xs_test, y_test, n_features=X_train.shape[1]), build_regressor,
        scaled_fit, loss="mse", metrics=[], model_dir=ctx.model_dir / "nn_scaled",
        curves_dir=ctx.train_dir / "scaled")
    grid = {k: list(v) for k, v in require(p, "svr_grid", dict, where).items()}
    search = GridSearchCV(SVR(kernel="rbf"), grid, cv=5, scoring="neg_mean_squared_error").fit(Xs_train, y_train)
    reg_scaled = LinearRegression().fit(Xs_train, y_train)
    for name, obj in (("svr", svr_rbf), ("lr", reg), ("scaler", scaler), ("svr_scaled", search.best_estimator_),
                      ("lr_scaled", reg_scaled)):
        dump(obj, ctx.model_dir / f"{name}.joblib")
    best = {k: float(v) for k, v in search.best_params_.items()}
    ctx.tracker.log_params({"svr_scaled_best": best})
    return {**info, "scaled_nn_epochs": scaled_info["epochs"], "svr_scaled_best": best}


def evaluate_boston_regression(ctx: Context) -> dict[str, Any]:
    from sklearn.metrics import mean_squared_error

    runtime.seed_everything(ctx.run.seed)
    _, X_test, _, y_test = housing_split(ctx)
    n = ctx.run.cap_eval(len(X_test))
    X_test, y_test = X_test[:n], y_test[:n]
    d = ctx.model_dir
    scaler = joblib.load(d / "scaler.joblib")
    Xs_test = scaler.transform(X_test)
    predictions = {
        "nn": keras.models.load_model(d / "nn" / MODEL_FILE).predict(X_test, verbose=0).ravel(),
        "svr": joblib.load(d / "svr.joblib").predict(X_test),
        "lr": joblib.load(d / "lr.joblib").predict(X_test),
        "nn_scaled": keras.models.load_model(d / "nn_scaled" / MODEL_FILE).predict(Xs_test, verbose=0).ravel(),
        "svr_scaled": joblib.load(d / "svr_scaled.joblib").predict(Xs_test),
        "lr_scaled": joblib.load(d / "lr_scaled.joblib").predict(Xs_test),
    }
    metrics: dict[str, Any] = {f"mse_{k}": float(mean_squared_error(y_test, v)) for k, v in predictions.items()}
    metrics["n_examples"] = int(n)
    titles = {"nn": "NN", "svr": "SVR", "lr": "LM"}
    pngs = [
        predicted_vs_actual_png({titles[k]: (predictions[k], y_test) for k in titles},
                                ctx.eval_dir / "predicted_vs_actual.png", "Boston housing, the book's models"),
        predicted_vs_actual_png({titles[k] + " (scaled)": (predictions[f"{k}_scaled"], y_test) for k in titles},
                                ctx.eval_dir / "predicted_vs_actual_scaled.png",
                                "Boston housing, standardized features and tuned models"),
    ]
    write_metrics(ctx, metrics, keep=["n_examples"])
    for png in pngs:
        ctx.tracker.log_artifact(png, "plots")
    return metrics


# ------------------------------------------------------------------------------------------------------------
# 3.3.4 Curve fitting (lines 1216-1266)
#
# x = arange(0, 6.4, 0.1); y2 = sin(x) + N(0, 0.1); Dense(10, sigmoid) -> Dense(10, sigmoid) -> Dense(1),
# Nadam(learning_rate=0.02), mse, 1000 epochs of batch 10; the book evaluates on the training points.
# ------------------------------------------------------------------------------------------------------------


def sine_data(seed: int, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.arange(0, 6.4, 0.1)
    y = np.sin(x)
    s = np.random.RandomState(seed).normal(0, noise, len(x))
    return x, y, y + s


def build_sine(data: ClassifierData) -> keras.Model:
    model = keras.Sequential(name="sine_fit")
    model.add(keras.Input(shape=(1,)))
    model.add(layers.Dense(10, activation="sigmoid"))
    model.add(layers.Dense(10, activation="sigmoid"))
    model.add(layers.Dense(1))
    return model


def train_sine_fit(ctx: Context) -> dict[str, Any]:
    x, _, y2 = sine_data(ctx.run.seed, require(ctx.params, "noise", float, ctx.task.id))
    fit = FitSettings.from_params(ctx.params, ctx.task.id)
    return train_classifier(ctx, regression_data(x[:, None], y2, x[:, None], y2), build_sine, fit,
                            validate=False, loss="mse", metrics=[])


def evaluate_sine_fit(ctx: Context) -> dict[str, Any]:
    noise = require(ctx.params, "noise", float, ctx.task.id)
    x, y, y2 = sine_data(ctx.run.seed, noise)
    model = load_model(ctx)
    y3 = model.predict(make_dataset(x[:, None].astype(np.float32), y2, 64), verbose=0).ravel()
    metrics = {
        "mse": float(np.mean((y3 - y2) ** 2)),          # the book's model.evaluate(x, y2)
        "mse_to_sine": float(np.mean((y3 - y) ** 2)),   # how close the fit is to the noise-free curve
        "noise_variance": float(np.mean((y2 - y) ** 2)),
    }
    png = line_png({"sin": (x, y), "noise": (x, y2), "fitted": (x, y3)}, ctx.eval_dir / "sine_fit.png",
                   f"Fitting sin(x) + N(0, {noise}) (mse to sin {metrics['mse_to_sine']:.4f})", "x", "y",
                   hlines=[0.0])
    ctx.tracker.log_artifact(png, "plots")  # the fit is measured on its own training points, as the book's
    return write_metrics(ctx, metrics, split="train", keep=["noise_variance"])


_FIT = ("optimizer", "learning_rate", "epochs", "batch_size")
PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch03_breakfast_keras": P.keys(*_FIT),
    "ch03_ionosphere_mlp": P.keys("test_size", *_FIT),
    "ch03_iris_mlp": P.keys("test_size", *_FIT, flower=P.List(P.Float(), min_items=4)),
    "ch03_boston_regression": P.keys(
        "test_size", *_FIT,
        svr=P.Section(C=P.Float(0.0, low_open=True), gamma=P.Float(0.0, low_open=True), epsilon=P.Float(0.0)),
        scaled_nn=P.Section(**P.keys(*_FIT, "validation_split", "early_stopping_patience")),
        svr_grid=P.Section(C=P.List(P.Float(0.0, low_open=True)), gamma=P.List(P.Float(0.0, low_open=True)),
                           epsilon=P.List(P.Float(0.0)))),
    "ch03_sine_fit": P.keys(*_FIT, noise=P.Float(0.0)),
}

TASKS = (
    Task("ch03_breakfast_keras", "3.2.5 (lines 888-916)", "Breakfast prices with Keras Dense(1) and SGD", None,
         "test_prediction", train_breakfast_keras, evaluate_breakfast_keras,
         Reference(300.0, "book 3.2.5: the true price of [[1, 1, 1]] is 150 + 50 + 100"),
         notes="price predicted for one of each item; weights and bias are in the metrics file",
         also=("weight_side_dish", "weight_bun", "weight_drink", "bias")),
    Task("ch03_ionosphere_mlp", "3.3.1 (lines 918-1054)", "MLP on UCI Ionosphere", "ionosphere",
         "test_accuracy", train_table_mlp, evaluate_ionosphere_mlp,
         Reference(None, "the book prints no number"),
         notes="test accuracy on the book's 33% split (seeded with run.seed)"),
    Task("ch03_iris_mlp", "3.3.2 (lines 1056-1116)", "MLP on UCI Iris, and one flower", "iris",
         "test_accuracy", train_table_mlp, evaluate_iris_mlp,
         Reference(None, "the book prints no number"),
         notes="test accuracy on the book's 33% split; flower_class is the predicted class of "
               "[5.1, 3.5, 1.4, 0.2] (0 = Iris-setosa)",
         also=("flower_class", "flower_probability")),
    Task("ch03_boston_regression", "3.3.3 (lines 1118-1214)", "Boston housing: NN vs SVR vs LinearRegression",
         "housing", "test_mse_nn", train_boston_regression, evaluate_boston_regression,
         Reference(None, "the book prints no number and calls its comparison untuned"),
         notes="test MSE of the book's NN on raw features; *_scaled are the standardized, tuned models",
         also=("test_mse_svr", "test_mse_lr", "test_mse_nn_scaled", "test_mse_svr_scaled", "test_mse_lr_scaled")),
    Task("ch03_sine_fit", "3.3.4 (lines 1216-1266)", "A 1-10-10-1 sigmoid network fits a noisy sine", None,
         "train_mse_to_sine", train_sine_fit, evaluate_sine_fit,
         Reference(None, "the book shows only the picture (fig 3.6)"),
         notes="MSE between the fitted curve and the noise-free sine on the 64 training points",
         also=("train_mse", "noise_variance")),
)
