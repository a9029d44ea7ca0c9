"""Checkers of the exercises of notebook 02_tuning (hyperparameter tuning with keras-tuner).

Each runs in seconds on tiny data (a few hundred images, one epoch, two trials, in a temporary folder) and
says what is wrong and what to do when it fails.
"""
from __future__ import annotations

import tempfile

import numpy as np

from mlcourse import data
from mlcourse.checks._common import _passed
from mlcourse.session import quiet_import, quiet_tensorflow, silenced
from mlcourse.tuning import hyperband_brackets

__all__ = ["check_hypermodel_tuner", "check_hyperband_brackets", "check_retrain_best"]

#: Exercise 2.1's search space: name -> (keras-tuner class name, what the notebook asks for).
HYPERMODEL_SPACE = {
    "filters": ("Int", {"min_value": 16, "max_value": 64, "step": 16}),
    "dense_units": ("Choice", {"values": [32, 64, 128]}),
    "dropout": ("Float", {"min_value": 0.0, "max_value": 0.5, "step": 0.1}),
    "learning_rate": ("Float", {"min_value": 1e-4, "max_value": 1e-2, "sampling": "log"}),
}


def _tiny_images(n: int = 200, n_val: int = 100):

    ds = data.load_fashion_mnist(source="embedded")
    return ds.x_train[:n], ds.y_train[:n], ds.x_train[n:n + n_val], ds.y_train[n:n + n_val]


def _quiet():

    quiet_tensorflow()
    return silenced()


#: Two values of each hyperparameter that must give two different models.
_PROBE_VALUES = {"filters": (16, 64), "dense_units": (32, 128), "dropout": (0.2, 0.4), "learning_rate": (1e-4, 1e-2)}


def _strip_names(obj):
    if isinstance(obj, dict):
        return {k: _strip_names(v) for k, v in obj.items() if k not in ("name", "build_config", "compile_config")}
    if isinstance(obj, list):
        return [_strip_names(v) for v in obj]
    return obj


def _fingerprint(model) -> str:
    """The model's architecture and optimizer settings, without the layer names that differ between builds."""
    import json

    opt = model.optimizer.get_config() if model.optimizer is not None else {}
    opt = {k: v for k, v in opt.items() if k != "name"}
    return json.dumps([_strip_names(model.get_config()), opt], sort_keys=True, default=str)


def _check_each_hyperparameter_is_used(hypermodel, hp) -> None:
    """Build the model with two values of each hyperparameter (the others fixed): the models must differ."""
    import keras_tuner as kt

    for name, (low, high) in _PROBE_VALUES.items():
        prints = []
        for value in (low, high):
            probe = kt.HyperParameters.from_config(hp.get_config())
            probe.values[name] = value
            prints.append(_fingerprint(hypermodel(probe)))
        assert prints[0] != prints[1], (
            f"{name!r} is declared but building with {name}={low} and {name}={high} gives the same model and "
            f"optimizer: it does not change the model. Pass the value hp returns to the layer or optimizer "
            f"(e.g. Dropout(dropout), Adam(learning_rate=learning_rate)), not a constant.")


def check_hypermodel_tuner(hypermodel, make_tuner) -> None:
    """Exercise 2.1: ``hypermodel(hp)`` declares :data:`HYPERMODEL_SPACE` and returns a compiled Keras 3 model;
    ``make_tuner(directory, max_trials)`` returns a ``kt.RandomSearch`` on it maximising ``val_accuracy``.
    Runs two one-epoch trials on 200 images in a temporary folder.

    Lesson: 02_tuning § ✏️ Exercise 2.1: write a hypermodel and its tuner.
    """
    keras = quiet_import("keras")
    import keras_tuner as kt

    x, y, xv, yv = _tiny_images()
    hp = kt.HyperParameters()
    model = hypermodel(hp)
    assert isinstance(model, keras.Model), (
        f"hypermodel(hp) returned {type(model).__name__}; return a Keras 3 model (import keras, not tf_keras: "
        "keras-tuner only accepts Keras 3).")
    assert model.optimizer is not None and getattr(model, "compiled", True), (
        "hypermodel(hp) must return a *compiled* model: call model.compile(optimizer=keras.optimizers.Adam("
        "learning_rate), loss='sparse_categorical_crossentropy', metrics=['accuracy']).")
    declared = {p.name: p for p in hp.space}
    missing = sorted(set(HYPERMODEL_SPACE) - set(declared))
    assert not missing, f"hypermodel does not declare {missing}; declare each with hp.Int/hp.Choice/hp.Float."
    for name, (cls, want) in HYPERMODEL_SPACE.items():
        got = declared[name]
        assert type(got).__name__ == cls, f"{name!r} is hp.{type(got).__name__}; use hp.{cls} as the exercise asks."
        for attr, value in want.items():
            have = getattr(got, attr, None)
            ok = have == value if not isinstance(value, float) else have is not None and np.isclose(have, value)
            if attr == "values":
                ok = list(have) == list(value)
            assert ok, f"{name!r}: {attr}={have!r}, expected {value!r}."
    assert model.input_shape[1:3] == (28, 28) and model.output_shape[-1] == 10, (
        f"the model maps {model.input_shape} to {model.output_shape}; it should take (28, 28) images and output "
        "10 class probabilities.")
    _check_each_hyperparameter_is_used(hypermodel, hp)
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        tuner = make_tuner(tmp, 2)
        assert isinstance(tuner, kt.RandomSearch), (
            f"make_tuner returned {type(tuner).__name__}; return kt.RandomSearch(hypermodel, ...).")
        obj = tuner.oracle.objective
        assert obj.name == "val_accuracy" and obj.direction == "max", (
            f"the objective is {obj.name} ({obj.direction}); use objective='val_accuracy' (maximised).")
        assert tuner.oracle.max_trials == 2, f"max_trials is {tuner.oracle.max_trials}; pass max_trials through."
        tuner.search(x, y, validation_data=(xv, yv), epochs=1, batch_size=64, verbose=0)
        done = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
        assert len(done) == 2, (f"{len(done)} of 2 trials completed; statuses: "
                                f"{[t.status for t in tuner.oracle.trials.values()]}. Does the model train?")
        best = tuner.get_best_hyperparameters(1)[0].values
        assert set(HYPERMODEL_SPACE) <= set(best), f"the best trial's values {best} miss some hyperparameters."
    _passed("2.1", "the search space has the right types and ranges; RandomSearch ran 2 trials on val_accuracy.")


def check_hyperband_brackets(fn) -> None:
    """Exercise 2.3: ``fn(max_epochs, factor)`` returns ``[(bracket, round, trials, epochs), ...]`` in run order,
    the same brackets as keras-tuner's Hyperband (compared with :func:`mlcourse.tuning.hyperband_brackets`).

    Lesson: 02_tuning § ✏️ Exercise 2.3: Hyperband's brackets.
    """

    for max_epochs, factor in [(9, 3), (2, 3), (4, 3), (27, 3), (10, 2), (1, 3)]:
        want = [tuple(int(v) for v in r) for r in
                hyperband_brackets(max_epochs, factor)[["bracket", "round", "trials", "epochs"]].values]
        got = [tuple(int(v) for v in r) for r in fn(max_epochs, factor)]
        assert len(got) == len(want), (
            f"max_epochs={max_epochs}, factor={factor}: you gave {len(got)} rounds, expected {len(want)}. "
            "There are as many brackets as times max_epochs can be divided by factor and stay >= 1; bracket s "
            "has s + 1 rounds.")
        for g, w in zip(got, want):
            assert g == w, (f"max_epochs={max_epochs}, factor={factor}: round {g} should be {w} "
                            "(bracket, round, trials, epochs). Start with the highest bracket; trials = "
                            "ceil(ceil(1 + log_f(max_epochs)) / (s + 1) * f ** (s - r)), epochs = "
                            "ceil(max_epochs / f ** (s - r)); use math.ceil, not round.")
    _passed("2.3", "the brackets match keras-tuner's Hyperband for six (max_epochs, factor) pairs.")


def _tiny_hypermodel(hp):
    keras = quiet_import("keras")

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(hp.Choice("units", [4, 32]), activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-3, 1e-2])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def check_retrain_best(fn) -> None:
    """Exercise 2.2: ``fn(tuner, x, y, epochs) -> (values, model)``: the best trial's hyperparameter values (a dict)
    and a **fresh** model built from them and trained ``epochs`` epochs on ``(x, y)``.

    Lesson: 02_tuning § ✏️ Exercise 2.2: retrain the best trial.
    """
    import keras_tuner as kt

    x, y, xv, yv = _tiny_images()
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        tuner = kt.RandomSearch(_tiny_hypermodel, objective="val_accuracy", max_trials=2, seed=1, directory=tmp,
                                project_name="check")
        tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
        want = tuner.oracle.get_best_trials(1)[0].hyperparameters.values
        saved = tuner.get_best_models(1)[0].get_weights()
        epochs = 1
        out = fn(tuner, x, y, epochs)
    assert isinstance(out, tuple) and len(out) == 2, "return a pair: (best values as a dict, retrained model)."
    values, model = out
    if isinstance(values, kt.HyperParameters):  # a HyperParameters object is accepted too
        values = values.values
    assert dict(values) == dict(want), (
        f"you returned {dict(values)}; the best trial has {want}. Use tuner.get_best_hyperparameters(1)[0].")
    assert model.count_params() == _tiny_hypermodel(kt.HyperParameters.from_config(
        tuner.get_best_hyperparameters(1)[0].get_config())).count_params(), (
        "the model's size does not match the best hyperparameters: build it with tuner.hypermodel.build(best_hp).")
    steps = int(model.optimizer.iterations.numpy()) if model.optimizer is not None else 0
    history = getattr(getattr(model, "history", None), "history", None) or {}
    assert steps > 0 and len(history.get("loss", [])) == 1, (
        f"the model you returned took {steps} optimizer steps and its last fit ran "
        f"{len(history.get('loss', []))} epochs; asked for 1. Build a fresh model with "
        "tuner.hypermodel.build(best_hp) and fit it for `epochs` epochs on (x, y): a model from "
        "get_best_models() was trained during the search, not on the data you are given.")
    asked = int((getattr(model.history, "params", None) or {}).get("steps") or 0) * epochs
    assert asked == 0 or steps == asked, (
        f"the model took {steps} optimizer steps; {epochs} epoch(s) of {asked // epochs} steps make {asked}. "
        "Build it once and fit it once for `epochs` epochs: it was trained more than asked.")
    got_w = np.concatenate([w.ravel() for w in model.get_weights()])
    saved_w = np.concatenate([w.ravel() for w in saved])
    corr = float(np.corrcoef(got_w, saved_w)[0, 1]) if got_w.shape == saved_w.shape else 0.0
    assert corr < 0.5, (
        f"the model's weights correlate {corr:.2f} with the tuner's saved best model: it continues training "
        "the model from get_best_models(), which saw the search's data. Build a fresh one with "
        "tuner.hypermodel.build(best_hp) and fit it from its initialisation.")
    _passed("2.2", "the best trial's values, and a fresh model of that shape trained for the epochs asked.")
